/**
 * Choosing a local restore point for a repository snapshot of a snapshot
 * job: the kept snapshot that snapshot was backed up from, when it is on
 * this machine and intact (provider check, then localCheck.ts). Any reason
 * not to use it is an answer ("why not"), never a failure of the restore:
 * the caller then restores from the repository.
 */
import { monotonicMs } from '../../platform/clock.js';
import type { Repo, SnapshotEntry } from '../../repository/api.js';
import { checkLocalAgainstTree, type LocalTreeCheck } from './localCheck.js';
import { keptHandles } from './localSnapshots.js';
import { keptName } from './naming.js';
import { createProvider } from './providers/index.js';
import type { OpenedSnapshot, ProviderContext, SnapshotJobSpec } from './types.js';

export interface LocalChoiceInput {
  /** The job (quiesce is not needed). */
  spec: SnapshotJobSpec;
  /** The job's `paths` relative to the source; empty: the whole source. */
  paths: readonly string[];
  repo: Pick<Repo, 'loadTree'>;
  /** The repository snapshot to restore. */
  snapshot: Pick<SnapshotEntry, 'tree' | 'endedAt' | 'host' | 'fingerprint'>;
  /** This machine's name as recorded in snapshots. */
  host: string;
  ctx: ProviderContext;
  signal?: AbortSignal;
}

export interface LocalCandidate {
  name: string;
  provider: SnapshotJobSpec['provider'];
  path: string;
  createdAt: string;
}

export type LocalChoice =
  | {
      use: true;
      local: LocalCandidate;
      /** Open for reading at `opened.path`; the caller closes it. */
      opened: OpenedSnapshot;
      check: LocalTreeCheck;
    }
  | { use: false; reason: string; local?: LocalCandidate; check?: LocalTreeCheck };

/** The name of the filesystem snapshot a repository snapshot was made from, if it records one. */
export function backupNameOf(snapshot: Pick<SnapshotEntry, 'fingerprint'>): string | undefined {
  const recorded = (snapshot.fingerprint as { snapshot?: { name?: unknown } }).snapshot?.name;
  return typeof recorded === 'string' ? recorded : undefined;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** See the file comment. */
export async function chooseLocalSnapshot(input: LocalChoiceInput): Promise<LocalChoice> {
  const { spec, snapshot } = input;
  const backupName = backupNameOf(snapshot);
  if (!backupName) {
    return {
      use: false,
      reason: 'the repository snapshot does not record which filesystem snapshot it was made from',
    };
  }
  if (snapshot.host !== input.host) {
    return {
      use: false,
      reason: `the restore point was taken on host ${snapshot.host}, not on this machine`,
    };
  }
  const provider = createProvider(spec.provider, input.ctx);
  let kept;
  try {
    kept = await keptHandles(provider, spec);
  } catch (err) {
    return { use: false, reason: `the local snapshots cannot be listed: ${message(err)}` };
  }
  const handle = kept.find((h) => h.name === keptName(backupName));
  if (!handle) {
    return {
      use: false,
      reason:
        kept.length === 0 && (spec.keepLocal ?? 0) === 0
          ? 'the job keeps no local snapshots (keepLocal: 0)'
          : `local snapshot ${keptName(backupName)} is not on this machine (pruned or deleted)`,
    };
  }
  const local: LocalCandidate = {
    name: handle.name,
    provider: handle.provider,
    path: handle.path,
    createdAt: new Date(handle.createdAt).toISOString(),
  };
  const problem = await provider.localProblem(spec, handle).catch((err: unknown) => message(err));
  if (problem !== undefined)
    return { use: false, reason: `local snapshot ${handle.name}: ${problem}`, local };

  let opened: OpenedSnapshot;
  try {
    opened = await provider.open(spec, handle);
  } catch (err) {
    return { use: false, reason: `local snapshot ${handle.name} cannot be opened: ${message(err)}`, local };
  }
  const t0 = monotonicMs();
  let check: LocalTreeCheck;
  try {
    check = await checkLocalAgainstTree(input.repo, snapshot.tree, {
      root: opened.path,
      source: spec.source,
      paths: input.paths,
      notChangedAfterMs: Date.parse(snapshot.endedAt),
      ...(input.signal ? { signal: input.signal } : {}),
    });
  } catch (err) {
    await opened.close().catch(() => undefined);
    if (input.signal?.aborted) throw err;
    const failed: LocalTreeCheck = {
      ok: false,
      problem: message(err),
      entries: 0,
      durationMs: monotonicMs() - t0,
    };
    return {
      use: false,
      reason: `local snapshot ${handle.name} could not be checked: ${message(err)}`,
      local,
      check: failed,
    };
  }
  if (!check.ok) {
    await opened.close().catch(() => undefined);
    return {
      use: false,
      reason: `local snapshot ${handle.name} differs from the backup: ${check.problem ?? 'unknown difference'}`,
      local,
      check,
    };
  }
  return { use: true, local, opened, check };
}
