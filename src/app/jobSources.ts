import type { JobConfig, LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { BlobId } from '../repository/tree.js';
import { backupFiles, FileCache } from '../sources/files/index.js';
import type { Deps, ProgressListener } from './deps.js';
import { fileCachePath, stateDir } from './stateDir.js';

/** What any job kind's backup hands back before the snapshot is committed. */
export interface SourceOutcome {
  tree: BlobId;
  /** The sources as the user named them (paths, databases, device). */
  paths: string[];
  fingerprint: Record<string, unknown>;
  stats: { files: number; dirs: number; bytes: number; addedBytes: number; blobs: number };
  warnings: string[];
  partial: boolean;
}

export interface SourceContext {
  config: LifeboatConfig;
  jobName: string;
  deps: Deps;
  onProgress?: ProgressListener;
}

/** Run the backup half of a job's source into `repo`; nothing is committed here. */
export async function backupSource(
  repo: Repository,
  job: JobConfig,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  switch (job.kind) {
    case 'files':
      return backupFilesJob(repo, job, ctx);
    default:
      throw new UsageError(`job '${ctx.jobName}': backups of kind '${job.kind}' are not available yet`, {
        hint: 'This lifeboat version backs up `files` jobs.',
      });
  }
}

async function backupFilesJob(
  repo: Repository,
  job: Extract<JobConfig, { kind: 'files' }>,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  // backupFiles saves the cache itself; entries are only reused when the repository has their blobs.
  const cache = await FileCache.load(
    fileCachePath(stateDir(ctx.config, ctx.deps.env), repo.id, ctx.jobName),
    repo.id,
    ctx.deps.logger,
  );
  const result = await backupFiles(
    repo,
    {
      paths: job.paths,
      include: job.include ?? [],
      exclude: job.exclude ?? [],
      oneFileSystem: job.oneFileSystem ?? false,
      xattrs: job.xattrs ?? false,
    },
    {
      cache,
      logger: ctx.deps.logger,
      clock: ctx.deps.clock,
      ...(ctx.deps.signal ? { signal: ctx.deps.signal } : {}),
      onProgress: (p) => ctx.onProgress?.({ job: ctx.jobName, phase: 'backup', ...p }),
    },
  );
  return {
    tree: result.tree,
    paths: job.paths,
    fingerprint: { ...result.fingerprint },
    stats: {
      files: result.stats.files,
      dirs: result.stats.dirs,
      bytes: result.stats.bytes,
      addedBytes: result.stats.addedBytes,
      blobs: result.stats.newBlobs,
    },
    warnings: result.warnings,
    partial: result.partial,
  };
}
