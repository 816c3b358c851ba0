import type { LifeboatConfig, SnapshotJob } from '../../config/schema.js';
import { UsageError } from '../../errors.js';
import type { Repository } from '../../repository/repository.js';
import { mysqlQuiesce, type MysqlConnectionSpec } from '../../sources/mysql/index.js';
import { postgresQuiesce, type PgConnectionSpec } from '../../sources/postgres/index.js';
import { backupSnapshot, type DatabaseQuiesce, type SnapshotJobSpec } from '../../sources/snapshot/index.js';
import { resolveConnection } from './databases.js';
import { backupTreeOfFiles } from './files.js';
import type { SourceContext, SourceOutcome } from './types.js';

/** The snapshot job as the sources layer needs it, with secrets resolved and the database quiesce bound. */
export async function snapshotSpec(
  config: LifeboatConfig,
  name: string,
  job: SnapshotJob,
  env: NodeJS.ProcessEnv,
): Promise<SnapshotJobSpec> {
  if (!job.source) {
    throw new UsageError(`job '${name}': set \`source\` to the path the snapshot stands for`, {
      hint:
        job.provider === 'btrfs'
          ? 'For btrfs, source is the subvolume to snapshot, e.g. /srv/data.'
          : 'For lvm and zfs, source is where the volume or dataset is mounted, e.g. /srv/data.',
    });
  }
  const spec: SnapshotJobSpec = {
    job: name,
    provider: job.provider,
    source: job.source,
    keepLocal: job.keepLocal,
    ...(job.lvm ? { lvm: job.lvm } : {}),
    ...(job.zfs ? { zfs: job.zfs } : {}),
  };
  if (job.quiesce) {
    spec.quiesce = {
      before: job.quiesce.before,
      after: job.quiesce.after,
      fsfreeze: job.quiesce.fsfreeze,
      ...(job.quiesce.database ? { database: await databaseQuiesce(config, job.quiesce.database, env) } : {}),
    };
  }
  return spec;
}

async function databaseQuiesce(
  config: LifeboatConfig,
  jobName: string,
  env: NodeJS.ProcessEnv,
): Promise<DatabaseQuiesce> {
  const db = config.jobs[jobName];
  if (db?.kind === 'postgres') {
    return postgresQuiesce((await resolveConnection(db.connection, env)) as PgConnectionSpec);
  }
  if (db?.kind === 'mysql') {
    return mysqlQuiesce((await resolveConnection(db.connection, env)) as MysqlConnectionSpec);
  }
  throw new UsageError(`quiesce.database names '${jobName}', which is not a postgres or mysql job`);
}

/** `kind: snapshot` — a consistent filesystem snapshot, backed up with the files machinery. */
export async function backupSnapshotJob(
  repo: Repository,
  job: SnapshotJob,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  const spec = await snapshotSpec(ctx.config, ctx.jobName, job, ctx.deps.env);
  const source = spec.source;
  const subPaths = job.paths.length ? job.paths.map((p) => `${source}/${p}`) : [source];
  const result = await backupSnapshot(repo, spec, {
    logger: ctx.deps.logger,
    clock: ctx.deps.clock,
    ...(ctx.deps.signal ? { signal: ctx.deps.signal } : {}),
    backupTree: (dir, displayPath, hints) =>
      backupTreeOfFiles(
        repo,
        {
          paths: subPaths,
          include: [],
          exclude: [...job.exclude, ...hints.exclude.map((p) => p.replace(/^\//, ''))],
          oneFileSystem: true,
          xattrs: false,
          readFrom: { physical: dir, logical: displayPath },
        },
        ctx,
      ),
  });
  const warnings = [...result.warnings, ...result.cleanupWarnings];
  return { ...result, paths: [source], warnings, fingerprint: { ...result.fingerprint } };
}
