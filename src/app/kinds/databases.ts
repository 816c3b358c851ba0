import type { MysqlJob, PostgresJob } from '../../config/schema.js';
import { resolveSecret } from '../../config/secrets.js';
import type { Repository } from '../../repository/repository.js';
import { backupMysql, type MysqlConnectionSpec } from '../../sources/mysql/index.js';
import { backupPostgres, type PgConnectionSpec } from '../../sources/postgres/index.js';
import type { DatabaseBackupResult } from '../../sources/database/index.js';
import type { SourceContext, SourceOutcome } from './types.js';

type ConfiguredConnection = PostgresJob['connection'] | MysqlJob['connection'];

/** Resolve the secret references of a connection section (late: only when a command needs them). */
export async function resolveConnection<C extends ConfiguredConnection>(
  connection: C,
  env: NodeJS.ProcessEnv,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(connection)) {
    if (value === undefined) continue;
    out[key] =
      key === 'dsn' || key === 'password' ? await resolveSecret(value as string, { env, what: key }) : value;
  }
  return out;
}

function outcome(result: DatabaseBackupResult): SourceOutcome {
  return {
    tree: result.tree,
    paths: result.paths,
    fingerprint: { ...result.fingerprint },
    stats: {
      files: result.stats.files,
      dirs: result.stats.dirs,
      bytes: result.stats.bytes,
      addedBytes: result.stats.addedBytes,
      blobs: result.stats.blobs,
    },
    warnings: result.warnings,
    // A database dump is all or nothing: warnings (e.g. non-transactional tables) do not make it partial.
    partial: false,
  };
}

/** Progress of a dump, as bytes of the database being streamed. */
function dumpProgress(ctx: SourceContext) {
  return (e: { database: string; bytes: number }) =>
    ctx.onProgress?.({
      job: ctx.jobName,
      phase: 'backup',
      files: 0,
      bytes: e.bytes,
      currentPath: e.database,
    });
}

/** `kind: postgres` — pg_dump streamed into the repository with an exact fingerprint. */
export async function backupPostgresJob(
  repo: Repository,
  job: PostgresJob,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  const connection = (await resolveConnection(job.connection, ctx.deps.env)) as PgConnectionSpec;
  const { databases, globals, checksums } = job;
  const { clock, logger } = ctx.deps;
  const onProgress = dumpProgress(ctx);
  return outcome(
    await backupPostgres(repo, connection, { databases, globals, checksums, clock, logger, onProgress }),
  );
}

/** `kind: mysql` — mariadb-dump/mysqldump streamed into the repository with an exact fingerprint. */
export async function backupMysqlJob(
  repo: Repository,
  job: MysqlJob,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  const connection = (await resolveConnection(job.connection, ctx.deps.env)) as MysqlConnectionSpec;
  const { databases, usersAndGrants, checksums } = job;
  const { clock, logger } = ctx.deps;
  const onProgress = dumpProgress(ctx);
  return outcome(
    await backupMysql(repo, connection, { databases, usersAndGrants, checksums, clock, logger, onProgress }),
  );
}
