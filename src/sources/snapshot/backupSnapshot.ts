/**
 * The snapshot job: remove leftovers of earlier crashed runs, take a
 * read-only snapshot at a quiesced moment, let the app's files machinery
 * back up the snapshot directory as if it were the source path, then remove
 * the snapshot — or keep it as a local restore point. The snapshot is removed
 * on success, failure, exception and SIGINT/SIGTERM (registerCleanup).
 */
import { isAbsolute } from 'node:path';
import { InterruptedError, LifeboatError, UsageError } from '../../errors.js';
import { registerCleanup } from '../../platform/cleanup.js';
import { systemClock, type Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { Repo } from '../../repository/api.js';
import type { BlobId } from '../../repository/tree.js';
import { pruneLocalSnapshotsWith } from './localSnapshots.js';
import { snapshotName } from './naming.js';
import { createProvider } from './providers/index.js';
import { atQuiescedMoment } from './quiesce.js';
import type { ProviderContext, SnapshotHandle, SnapshotJobSpec } from './types.js';

/** Extra input for the app's backupTree. */
export interface BackupTreeHints {
  /** Gitignore-style patterns (absolute display paths) of provider artefacts inside the source, to exclude. */
  exclude: string[];
  repo: Repo;
  signal?: AbortSignal;
}

/** What the app's files machinery returns for the snapshot directory. */
export interface BackupTreeResult {
  tree: BlobId;
  stats: object;
  warnings: string[];
  partial: boolean;
  fingerprint: object;
}

/**
 * Back up directory `dir` (the snapshot) recording its paths as
 * `displayPath` (the job's source), so excludes, metadata, the incremental
 * cache and restore behave as for a files job.
 */
export type BackupTreeFn<R extends BackupTreeResult> = (
  dir: string,
  displayPath: string,
  hints: BackupTreeHints,
) => Promise<R>;

export interface SnapshotBackupOptions<R extends BackupTreeResult> {
  logger: Logger;
  backupTree: BackupTreeFn<R>;
  clock?: Clock;
  signal?: AbortSignal;
  /** Environment of provider tools and quiesce commands. */
  env?: NodeJS.ProcessEnv;
  /** Timeout of each provider command in ms (default 120 s). */
  commandTimeoutMs?: number;
  /** Where LVM snapshots are mounted (default /run/lifeboat/snapshots). */
  mountRoot?: string;
}

export interface SnapshotInfo {
  provider: SnapshotJobSpec['provider'];
  name: string;
  id: string;
  /** ISO-8601 time the snapshot was taken. */
  createdAt: string;
  /** Kept on the machine as a local restore point (keepLocal). */
  keptLocally: boolean;
}

export type SnapshotBackupResult<R extends BackupTreeResult> = Omit<R, 'fingerprint'> & {
  fingerprint: R['fingerprint'] & { snapshot: { provider: string; name: string; createdAt: string } };
  snapshot: SnapshotInfo;
  /** Snapshots of earlier crashed runs that were removed first. */
  leftoversRemoved: string[];
  /** Local restore points removed because more than keepLocal were kept. */
  prunedLocal: string[];
  /** Problems removing or keeping the snapshot after a successful backup (the next run cleans up). */
  cleanupWarnings: string[];
};

const JOB_NAME = /^[a-z0-9][a-z0-9._-]*$/i;

/** Reject specs the providers cannot run, with the reason. */
export function validateSnapshotSpec(spec: SnapshotJobSpec): void {
  if (!JOB_NAME.test(spec.job))
    throw new UsageError(`job name ${JSON.stringify(spec.job)} is not valid for snapshot names`);
  if (!isAbsolute(spec.source)) {
    throw new UsageError(`snapshot source ${spec.source} is not an absolute path`, {
      hint: 'Give the mount point or subvolume path the snapshot stands for, e.g. /srv/data.',
    });
  }
  const keep = spec.keepLocal ?? 0;
  if (!Number.isInteger(keep) || keep < 0) throw new UsageError(`keepLocal must be 0 or more, got ${keep}`);
  if (spec.quiesce?.fsfreeze && spec.provider === 'btrfs') {
    throw new UsageError('quiesce.fsfreeze cannot be used with provider btrfs', {
      hint: 'A btrfs snapshot of a frozen filesystem blocks until it is thawed; btrfs snapshots are atomic, so remove fsfreeze.',
    });
  }
  if (spec.quiesce?.fsfreeze && spec.provider === 'zfs') {
    throw new UsageError('quiesce.fsfreeze cannot be used with provider zfs', {
      hint: 'ZFS does not support fsfreeze; zfs snapshot is atomic, so remove fsfreeze.',
    });
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  throw signal.reason instanceof Error ? signal.reason : new InterruptedError('abort');
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Run a snapshot job; see the file comment. The caller commits the returned tree as a snapshot. */
export async function backupSnapshot<R extends BackupTreeResult>(
  repo: Repo,
  spec: SnapshotJobSpec,
  opts: SnapshotBackupOptions<R>,
): Promise<SnapshotBackupResult<R>> {
  validateSnapshotSpec(spec);
  const { logger, signal } = opts;
  const ctx: ProviderContext = {
    logger,
    env: opts.env,
    timeoutMs: opts.commandTimeoutMs,
    mountRoot: opts.mountRoot,
  };
  const provider = createProvider(spec.provider, ctx);
  await provider.check(spec);

  const leftoversRemoved: string[] = [];
  for (const leftover of await provider.findLeftovers(spec)) {
    logger.warn(`removing snapshot ${leftover.id}, left over by an interrupted run`);
    await provider.remove(spec, leftover);
    leftoversRemoved.push(leftover.name);
  }
  throwIfAborted(signal);

  const name = snapshotName(spec.job, (opts.clock ?? systemClock).now());
  const planned = await provider.handleFor(spec, name);
  // Registered before the snapshot exists: an interrupt during creation must still remove it.
  const unregister = registerCleanup(`snapshot ${planned.id}`, () => provider.remove(spec, planned));
  let handle: SnapshotHandle;
  let result: R;
  try {
    handle = await provider.create(spec, name, (take) =>
      atQuiescedMoment(spec.quiesce, spec.source, { logger, env: opts.env }, take),
    );
    logger.info(`snapshot ${handle.id} taken`);
    throwIfAborted(signal);
    const hints: BackupTreeHints = { exclude: await provider.excludes(spec), repo, signal };
    try {
      result = await opts.backupTree(handle.path, spec.source, hints);
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      // Read errors from an overflowed LVM snapshot are explained by the overflow.
      const overflow = await provider.verifyIntact(spec, handle).then(
        () => undefined,
        (e: unknown) => e,
      );
      throw overflow instanceof LifeboatError && overflow.code === 'E_SNAPSHOT_OVERFLOW' ? overflow : err;
    }
    await provider.verifyIntact(spec, handle);
  } catch (err) {
    try {
      await provider.remove(spec, planned);
      unregister();
    } catch (removeErr) {
      logger.error(`could not remove snapshot ${planned.id}: ${message(removeErr)}; the next run removes it`);
    }
    throw err;
  }

  const cleanupWarnings: string[] = [];
  const prunedLocal: string[] = [];
  let keptLocally = false;
  let step = '';
  try {
    if ((spec.keepLocal ?? 0) > 0) {
      step = `keeping snapshot ${handle.id} as a local restore point`;
      await provider.keep(spec, handle);
      keptLocally = true;
    } else {
      step = `removing snapshot ${handle.id}`;
      await provider.remove(spec, handle);
    }
    unregister();
    // Also with keepLocal 0: restore points kept under an earlier, larger setting go.
    step = 'pruning local snapshots';
    prunedLocal.push(
      ...(await pruneLocalSnapshotsWith(provider, spec, spec.keepLocal ?? 0)).map((s) => s.name),
    );
  } catch (err) {
    const warning = `${step} failed: ${message(err)}; the next run cleans up`;
    logger.error(warning);
    cleanupWarnings.push(warning);
  }

  const createdAt = new Date(handle.createdAt).toISOString();
  return {
    ...result,
    fingerprint: { ...result.fingerprint, snapshot: { provider: spec.provider, name, createdAt } },
    snapshot: { provider: spec.provider, name, id: handle.id, createdAt, keptLocally },
    leftoversRemoved,
    prunedLocal,
    cleanupWarnings,
  } as SnapshotBackupResult<R>;
}
