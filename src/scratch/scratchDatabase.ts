/**
 * Scratch databases on a server the job names for drills (`drill.scratch: existing` with
 * `drill.server`): each restored database gets a fresh name `lifeboat_drill_<id>` (with a
 * suffix when the snapshot holds several), written to the state file before it exists and
 * dropped afterwards — also after a crash, by `lifeboat drill cleanup`.
 */
import { OperationError } from '../errors.js';
import { mysqlExecute, mysqlIdent, mysqlQueryValue, type MysqlConnectConfig } from './mysqlQuery.js';
import { pgExecute, pgIdent, pgQueryValue, type PgConnectConfig } from './pgQuery.js';
import { ScratchTracker } from './scratchState.js';
import { TrackedScratch } from './trackedScratch.js';
import type { ReleaseContext } from './releaseResource.js';
import type { ScratchBaseOptions, ScratchDatabaseServer } from './types.js';

/** The database names a scratch environment hands out. */
export function scratchDatabaseName(id: string, index: number): string {
  return index === 0 ? `lifeboat_drill_${id}` : `lifeboat_drill_${id}_${index + 1}`;
}

export interface ScratchDatabaseOptions extends ScratchBaseOptions {
  /** `postgres://user@host:5432/` for messages, never a password. */
  describe: string;
}

/** Drop a scratch PostgreSQL database, disconnecting whoever is still in it. */
export async function dropPostgresScratchDatabase(config: PgConnectConfig, name: string): Promise<void> {
  const admin = config.database ?? 'postgres';
  await pgExecute(config, admin, `DROP DATABASE IF EXISTS ${pgIdent(name)} WITH (FORCE)`).catch(
    async (err) => {
      // Servers before 13 have no WITH (FORCE): end the sessions, then drop.
      if (!/syntax error/i.test((err as Error).message)) throw err;
      await pgExecute(
        config,
        admin,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name.replace(/'/g, "''")}'`,
      );
      await pgExecute(config, admin, `DROP DATABASE IF EXISTS ${pgIdent(name)}`);
    },
  );
}

/** Drop a scratch MySQL/MariaDB database. */
export async function dropMysqlScratchDatabase(config: MysqlConnectConfig, name: string): Promise<void> {
  await mysqlExecute(config, `DROP DATABASE IF EXISTS ${mysqlIdent(name)}`);
}

abstract class ScratchDatabaseBase extends TrackedScratch implements ScratchDatabaseServer {
  abstract readonly engine: 'postgres' | 'mysql';
  private readonly names = new Map<string, string>();

  constructor(
    tracker: ScratchTracker,
    private readonly job: string,
    onInterrupt?: () => void,
  ) {
    super(tracker, onInterrupt);
  }

  async databaseFor(source: string): Promise<string> {
    let name = this.names.get(source);
    if (name === undefined) {
      name = scratchDatabaseName(this.id, this.names.size);
      await this.track({ type: 'database', engine: this.engine, job: this.job, name });
      this.names.set(source, name);
    }
    return name;
  }

  abstract queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown>;
  abstract clientEnv(database: string): Record<string, string>;
  protected abstract drop(name: string): Promise<void>;

  protected override releaseContext(): ReleaseContext {
    return { dropDatabase: (r) => this.drop(r.name) };
  }
}

/** Scratch databases on a configured PostgreSQL server. */
export class ScratchPostgresDatabase extends ScratchDatabaseBase {
  readonly kind = 'scratch-postgres' as const;
  readonly engine = 'postgres' as const;

  private constructor(
    tracker: ScratchTracker,
    job: string,
    private readonly server: PgConnectConfig,
    onInterrupt?: () => void,
  ) {
    super(tracker, job, onInterrupt);
  }

  /** Check the server answers and may create databases, then hand out scratch names. */
  static async create(
    server: PgConnectConfig,
    opts: ScratchDatabaseOptions,
  ): Promise<ScratchPostgresDatabase> {
    const tracker = await ScratchTracker.create(opts.stateDir, {
      kind: 'scratch-postgres',
      job: opts.job,
      createdAt: opts.now,
      ...(opts.runId ? { runId: opts.runId } : {}),
    });
    const env = new ScratchPostgresDatabase(tracker, opts.job, server, opts.onInterrupt);
    await env.provision(async () => {
      const may = await pgQueryValue(
        server,
        server.database ?? 'postgres',
        'SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user',
        30_000,
      );
      if (may !== true) {
        throw new OperationError(
          'E_SCRATCH_PRIVILEGE',
          `the drill server ${opts.describe} does not let ${server.user} create databases`,
          {
            hint: `ALTER ROLE ${server.user} CREATEDB on that server, or use an ephemeral drill server (drill.scratch: ephemeral).`,
          },
        );
      }
      env.description = `scratch databases lifeboat_drill_${env.id}… on ${opts.describe}`;
    });
    return env;
  }

  queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown> {
    return pgQueryValue(this.server, database, sql, timeoutMs);
  }

  clientEnv(database: string): Record<string, string> {
    return {
      PGHOST: this.server.host,
      PGPORT: String(this.server.port),
      PGUSER: this.server.user,
      ...(this.server.password !== undefined ? { PGPASSWORD: this.server.password } : {}),
      PGDATABASE: database,
    };
  }

  protected drop(name: string): Promise<void> {
    return dropPostgresScratchDatabase(this.server, name);
  }
}

/** Scratch databases on a configured MySQL/MariaDB server. */
export class ScratchMysqlDatabase extends ScratchDatabaseBase {
  readonly kind = 'scratch-mysql' as const;
  readonly engine = 'mysql' as const;

  private constructor(
    tracker: ScratchTracker,
    job: string,
    private readonly server: MysqlConnectConfig,
    onInterrupt?: () => void,
  ) {
    super(tracker, job, onInterrupt);
  }

  /** Check the server answers, then hand out scratch names. */
  static async create(
    server: MysqlConnectConfig,
    opts: ScratchDatabaseOptions,
  ): Promise<ScratchMysqlDatabase> {
    const tracker = await ScratchTracker.create(opts.stateDir, {
      kind: 'scratch-mysql',
      job: opts.job,
      createdAt: opts.now,
      ...(opts.runId ? { runId: opts.runId } : {}),
    });
    const env = new ScratchMysqlDatabase(tracker, opts.job, server, opts.onInterrupt);
    await env.provision(async () => {
      await mysqlQueryValue(server, undefined, 'SELECT 1', 30_000);
      env.description = `scratch databases lifeboat_drill_${env.id}… on ${opts.describe}`;
    });
    return env;
  }

  queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown> {
    return mysqlQueryValue(this.server, database, sql, timeoutMs);
  }

  clientEnv(database: string): Record<string, string> {
    return {
      ...(this.server.socketPath ? { MYSQL_UNIX_PORT: this.server.socketPath } : {}),
      ...(this.server.host ? { MYSQL_HOST: this.server.host } : {}),
      ...(this.server.port ? { MYSQL_TCP_PORT: String(this.server.port) } : {}),
      ...(this.server.password !== undefined ? { MYSQL_PWD: this.server.password } : {}),
      LIFEBOAT_DRILL_USER: this.server.user,
      LIFEBOAT_DRILL_DATABASE: database,
    };
  }

  protected drop(name: string): Promise<void> {
    return dropMysqlScratchDatabase(this.server, name);
  }
}
