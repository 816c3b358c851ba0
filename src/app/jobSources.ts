import type { JobConfig } from '../config/schema.js';
import type { Repository } from '../repository/repository.js';
import type { SourceContext, SourceOutcome } from './kinds/types.js';

export type { SourceContext, SourceOutcome } from './kinds/types.js';

/**
 * Run the backup half of a job's source into `repo`; nothing is committed here.
 * Each kind is imported when a job of that kind runs: a files backup does not load
 * the database, image and snapshot machinery.
 */
export async function backupSource(
  repo: Repository,
  job: JobConfig,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  switch (job.kind) {
    case 'files':
      return (await import('./kinds/files.js')).backupFilesJob(repo, job, ctx);
    case 'postgres':
      return (await import('./kinds/databases.js')).backupPostgresJob(repo, job, ctx);
    case 'mysql':
      return (await import('./kinds/databases.js')).backupMysqlJob(repo, job, ctx);
    case 'snapshot':
      return (await import('./kinds/snapshot.js')).backupSnapshotJob(repo, job, ctx);
    case 'image':
      return (await import('./kinds/image.js')).backupImageJob(repo, job, ctx);
  }
}
