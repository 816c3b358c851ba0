import type { ImageJob } from '../../config/schema.js';
import type { Repository } from '../../repository/repository.js';
import { backupImage } from '../../sources/image/index.js';
import type { SourceContext, SourceOutcome } from './types.js';

/** `kind: image` — fixed-size blocks of a device or image file; zero blocks are recorded, not stored. */
export async function backupImageJob(
  repo: Repository,
  job: ImageJob,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  const result = await backupImage(
    repo,
    { device: job.device, blockSize: job.blockSize },
    {
      logger: ctx.deps.logger,
      ...(ctx.deps.signal ? { signal: ctx.deps.signal } : {}),
      onProgress: (p) => ctx.onProgress?.({ job: ctx.jobName, phase: 'backup', ...p }),
    },
  );
  return {
    tree: result.tree,
    paths: [job.device],
    fingerprint: { ...result.fingerprint },
    stats: {
      files: result.stats.files,
      dirs: result.stats.dirs,
      bytes: result.stats.bytes,
      addedBytes: result.stats.addedBytes,
      blobs: result.stats.blobs,
    },
    warnings: result.warnings,
    // An image forced while mounted, or changed while read, may be inconsistent: say so.
    partial: result.warnings.length > 0,
  };
}
