/**
 * Local restore points: with `keepLocal: N` the N newest snapshots whose
 * backup succeeded stay on the machine (named `<name>.kept`). The app lists
 * them next to repository snapshots (location `local`) and restores from
 * one by opening it and copying from its path.
 */
import { OperationError } from '../../errors.js';
import { KEPT_SUFFIX } from './naming.js';
import { createProvider } from './providers/index.js';
import type {
  OpenedSnapshot,
  ProviderContext,
  SnapshotHandle,
  SnapshotJobSpec,
  SnapshotProvider,
} from './types.js';

export interface LocalSnapshot {
  job: string;
  provider: SnapshotJobSpec['provider'];
  name: string;
  /** Provider-level ID (subvolume path, vg/lv, dataset@name). */
  id: string;
  /** ISO-8601 creation time. */
  createdAt: string;
  /** Where its files are (for LVM: where lifeboat mounts it while it is read). */
  path: string;
  /** The name the snapshot had during its backup, as the repository snapshot records it. */
  backupName: string;
  location: 'local';
  /** Why the provider considers it unusable (gone, writable, overflowed); set when checked and not fine. */
  problem?: string;
}

function toLocalSnapshot(spec: SnapshotJobSpec, h: SnapshotHandle): LocalSnapshot {
  return {
    job: spec.job,
    provider: h.provider,
    name: h.name,
    id: h.id,
    createdAt: new Date(h.createdAt).toISOString(),
    path: h.path,
    backupName: h.name.endsWith(KEPT_SUFFIX) ? h.name.slice(0, -KEPT_SUFFIX.length) : h.name,
    location: 'local',
  };
}

/** The kept snapshots of a job, newest first. */
export async function keptHandles(
  provider: SnapshotProvider,
  spec: SnapshotJobSpec,
): Promise<SnapshotHandle[]> {
  return (await provider.list(spec)).filter((h) => h.kept).sort((a, b) => b.createdAt - a.createdAt);
}

/** Local restore points of a job, newest first; with `check`, each carries the provider's `problem`. */
export async function listLocalSnapshots(
  spec: SnapshotJobSpec,
  ctx: ProviderContext,
  opts: { check?: boolean } = {},
): Promise<LocalSnapshot[]> {
  const provider = createProvider(spec.provider, ctx);
  const out: LocalSnapshot[] = [];
  for (const h of await keptHandles(provider, spec)) {
    const local = toLocalSnapshot(spec, h);
    const problem = opts.check ? await provider.localProblem(spec, h) : undefined;
    out.push(problem === undefined ? local : { ...local, problem });
  }
  return out;
}

/** Remove all but the `keep` newest local restore points; returns the removed ones. */
export async function pruneLocalSnapshotsWith(
  provider: SnapshotProvider,
  spec: SnapshotJobSpec,
  keep: number,
): Promise<LocalSnapshot[]> {
  if (!Number.isInteger(keep) || keep < 0)
    throw new RangeError(`keep must be a non-negative integer, got ${keep}`);
  const removed: LocalSnapshot[] = [];
  for (const h of (await keptHandles(provider, spec)).slice(keep)) {
    await provider.remove(spec, h);
    removed.push(toLocalSnapshot(spec, h));
  }
  return removed;
}

/** Remove all but the `keep` newest local restore points of a job. */
export async function pruneLocalSnapshots(
  spec: SnapshotJobSpec,
  keep: number,
  ctx: ProviderContext,
): Promise<LocalSnapshot[]> {
  return pruneLocalSnapshotsWith(createProvider(spec.provider, ctx), spec, keep);
}

/**
 * Open a local restore point (`latest`, or its name) for reading. Its files
 * are at `path` and stand for the job's source (`displayPath`); call close().
 */
export async function openLocalSnapshot(
  spec: SnapshotJobSpec,
  ref: string,
  ctx: ProviderContext,
): Promise<OpenedSnapshot & { snapshot: LocalSnapshot; displayPath: string }> {
  const provider = createProvider(spec.provider, ctx);
  const kept = await keptHandles(provider, spec);
  const handle = ref === 'latest' ? kept[0] : kept.find((h) => h.name === ref || h.id === ref);
  if (!handle) {
    throw new OperationError('E_LOCAL_SNAPSHOT_NOT_FOUND', `job ${spec.job} has no local snapshot ${ref}`, {
      hint: kept.length
        ? `Local snapshots: ${kept.map((h) => h.name).join(', ')}.`
        : 'The job keeps none (keepLocal: 0), or none was taken yet; restore from a repository instead.',
    });
  }
  const opened = await provider.open(spec, handle);
  return { ...opened, snapshot: toLocalSnapshot(spec, handle), displayPath: spec.source };
}
