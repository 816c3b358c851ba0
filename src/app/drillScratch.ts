/**
 * Bridging a job's configuration to its scratch environment: where scratch goes, and how
 * to reach the server of `drill.scratch: existing` (its DSN is a secret reference,
 * resolved only here and never written to the state file — leftovers are found again
 * through the job's configuration).
 */
import type { JobConfig, LifeboatConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { UsageError } from '../errors.js';
import {
  dropMysqlScratchDatabase,
  dropPostgresScratchDatabase,
  type MysqlConnectConfig,
  type PgConnectConfig,
  type ScratchResource,
} from '../scratch/index.js';
import { describeMysqlTarget, mysql2Config, resolveMysqlConnection } from '../sources/mysql/connection.js';
import { describePgTarget, pgClientConfig, resolvePgConnection } from '../sources/postgres/connection.js';
import type { Deps } from './deps.js';

/** The drill server of a database job with `drill.scratch: existing`, resolved. */
export interface DrillServer {
  dsn: string;
  /** For messages: no password. */
  describe: string;
  postgres?: PgConnectConfig;
  mysql?: MysqlConnectConfig;
}

/** Resolve the job's `drill.server`; undefined unless the job drills on an existing server. */
export async function drillServerOf(job: JobConfig, deps: Deps): Promise<DrillServer | undefined> {
  if (job.kind !== 'postgres' && job.kind !== 'mysql') return undefined;
  if (job.drill?.scratch !== 'existing') return undefined;
  if (!job.drill.server) {
    throw new UsageError(`job '${job.name}' has drill.scratch: existing but no drill.server`, {
      hint: 'Add drill.server: env:DRILL_DSN (a server lifeboat may create databases on).',
    });
  }
  const dsn = await resolveSecret(job.drill.server, { env: deps.env, what: `jobs.${job.name}.drill.server` });
  if (job.kind === 'postgres') {
    const target = resolvePgConnection({ dsn });
    const config = await pgClientConfig(target);
    return {
      dsn,
      describe: describePgTarget(target, ''),
      postgres: {
        host: config.host,
        port: config.port,
        user: config.user,
        ...(config.password !== undefined ? { password: config.password } : {}),
        ...(target.database ? { database: target.database } : {}),
        ssl: config.ssl,
        connectionTimeoutMillis: config.connectionTimeoutMillis,
      },
    };
  }
  const target = resolveMysqlConnection({ dsn });
  const config = await mysql2Config(target);
  return {
    dsn,
    describe: describeMysqlTarget(target, ''),
    mysql: {
      ...(config.socketPath ? { socketPath: config.socketPath } : { host: config.host!, port: config.port! }),
      user: config.user,
      ...(config.password !== undefined ? { password: config.password } : {}),
      ...(config.ssl ? { ssl: config.ssl } : {}),
      connectTimeout: config.connectTimeout,
    },
  };
}

/** Drop a scratch database left by a crashed drill, reaching its server through the job's configuration. */
export async function dropLeftoverDatabase(
  config: LifeboatConfig,
  resource: Extract<ScratchResource, { type: 'database' }>,
  deps: Deps,
): Promise<void> {
  const job = config.jobs[resource.job];
  if (!job) {
    throw new Error(
      `job ${resource.job} is no longer configured; drop database ${resource.name} on its drill server by hand`,
    );
  }
  const server = await drillServerOf(job, deps);
  if (server?.postgres && resource.engine === 'postgres') {
    await dropPostgresScratchDatabase(server.postgres, resource.name);
  } else if (server?.mysql && resource.engine === 'mysql') {
    await dropMysqlScratchDatabase(server.mysql, resource.name);
  } else {
    throw new Error(
      `job ${resource.job} no longer drills on an existing ${resource.engine} server; drop database ${resource.name} by hand`,
    );
  }
}
