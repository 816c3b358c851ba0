import type { FilesJob } from '../../config/schema.js';
import type { Repository } from '../../repository/repository.js';
import { backupFiles, FileCache, type FilesSpec } from '../../sources/files/index.js';
import { fileCachePath, stateDir } from '../stateDir.js';
import type { SourceContext, SourceOutcome } from './types.js';

/**
 * Back up a directory tree with the files machinery; snapshot jobs use it too
 * (with `readFrom` pointing at the filesystem snapshot).
 */
export async function backupTreeOfFiles(
  repo: Repository,
  spec: FilesSpec,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  // backupFiles saves the cache itself; entries are only reused when the repository has their blobs.
  const cache = await FileCache.load(
    fileCachePath(stateDir(ctx.config, ctx.deps.env), repo.id, ctx.jobName),
    repo.id,
    ctx.deps.logger,
  );
  const result = await backupFiles(repo, spec, {
    cache,
    logger: ctx.deps.logger,
    clock: ctx.deps.clock,
    ...(ctx.deps.signal ? { signal: ctx.deps.signal } : {}),
    onProgress: (p) => ctx.onProgress?.({ job: ctx.jobName, phase: 'backup', ...p }),
  });
  return {
    tree: result.tree,
    paths: spec.paths,
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

/** `kind: files` */
export function backupFilesJob(repo: Repository, job: FilesJob, ctx: SourceContext): Promise<SourceOutcome> {
  return backupTreeOfFiles(
    repo,
    {
      paths: job.paths,
      include: job.include,
      exclude: job.exclude,
      oneFileSystem: job.oneFileSystem,
      xattrs: job.xattrs,
    },
    ctx,
  );
}
