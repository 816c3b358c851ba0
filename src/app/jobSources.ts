import type { JobConfig } from '../config/schema.js';
import type { Repository } from '../repository/repository.js';
import { backupMysqlJob, backupPostgresJob } from './kinds/databases.js';
import { backupFilesJob } from './kinds/files.js';
import { backupImageJob } from './kinds/image.js';
import { backupSnapshotJob } from './kinds/snapshot.js';
import type { SourceContext, SourceOutcome } from './kinds/types.js';

export type { SourceContext, SourceOutcome } from './kinds/types.js';

/** Run the backup half of a job's source into `repo`; nothing is committed here. */
export function backupSource(repo: Repository, job: JobConfig, ctx: SourceContext): Promise<SourceOutcome> {
  switch (job.kind) {
    case 'files':
      return backupFilesJob(repo, job, ctx);
    case 'postgres':
      return backupPostgresJob(repo, job, ctx);
    case 'mysql':
      return backupMysqlJob(repo, job, ctx);
    case 'snapshot':
      return backupSnapshotJob(repo, job, ctx);
    case 'image':
      return backupImageJob(repo, job, ctx);
  }
}
