import type { LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { restoreTree, type OverwriteMode, type RestoreResult } from '../sources/files/index.js';
import { monotonicMs } from '../platform/clock.js';
import type { Deps, ProgressListener } from './deps.js';
import { locateSnapshot } from './snapshots.js';

export interface RestoreFilesOptions {
  job: string;
  /** `latest`, a snapshot ID or unique prefix. */
  snapshot: string;
  /** Newest snapshot at or before this time instead of `snapshot`. */
  atMs?: number;
  repository?: string;
  target: string;
  include: string[];
  overwrite: OverwriteMode;
  dryRun: boolean;
  onProgress?: ProgressListener;
}

export interface RestoreFilesResult extends RestoreResult {
  job: string;
  repository: string;
  snapshotId: string;
  snapshotTime: string;
  target: string;
  dryRun: boolean;
  durationMs: number;
}

/** Restore a file-tree snapshot of a job into a directory (never outside it). */
export async function restoreFiles(
  config: LifeboatConfig,
  opts: RestoreFilesOptions,
  deps: Deps,
): Promise<RestoreFilesResult> {
  const job = config.jobs[opts.job];
  if (!job)
    throw new UsageError(`unknown job '${opts.job}'`, {
      hint: `Configured jobs: ${Object.keys(config.jobs).join(', ')}.`,
    });
  const located = await locateSnapshot(
    config,
    {
      ref: opts.snapshot,
      job: opts.job,
      ...(opts.repository ? { repository: opts.repository } : {}),
      ...(opts.atMs !== undefined ? { atMs: opts.atMs } : {}),
    },
    deps,
  );
  const { repo, snapshot } = located;
  const t0 = monotonicMs();
  try {
    deps.logger.info(
      `restoring snapshot ${snapshot.id.slice(0, 12)} of ${opts.job} from repository ${located.repositoryName}`,
    );
    const lock = await repo.lock({ exclusive: false, purpose: `restore of ${opts.job}` });
    try {
      const result = await restoreTree(repo, snapshot.tree, opts.target, {
        include: opts.include,
        overwrite: opts.overwrite,
        dryRun: opts.dryRun,
        logger: deps.logger,
        ...(deps.signal ? { signal: deps.signal } : {}),
        onProgress: (p) =>
          opts.onProgress?.({
            job: opts.job,
            phase: 'restore',
            ...p,
            totalBytes: snapshot.stats.bytes,
            totalFiles: snapshot.stats.files,
          }),
      });
      return {
        ...result,
        job: opts.job,
        repository: located.repositoryName,
        snapshotId: snapshot.id,
        snapshotTime: snapshot.endedAt,
        target: opts.target,
        dryRun: opts.dryRun,
        durationMs: monotonicMs() - t0,
      };
    } finally {
      await lock.release();
    }
  } finally {
    await repo.close();
  }
}
