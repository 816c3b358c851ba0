/**
 * Test access to the machine's PostgreSQL server (trust auth on 127.0.0.1) and
 * uniquely named throwaway databases. When the server is unreachable the
 * suites skip with a message, unless LIFEBOAT_TEST_REQUIRE=all, where they fail.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../../src/platform/logger.js';
import type { PostgresRestoreOptions } from '../../../src/sources/postgres/restore.js';

export const PG = {
  host: process.env.LIFEBOAT_TEST_PG_HOST ?? '127.0.0.1',
  port: Number(process.env.LIFEBOAT_TEST_PG_PORT ?? 5432),
  user: process.env.LIFEBOAT_TEST_PG_USER ?? 'postgres',
};

export const requireAll = process.env.LIFEBOAT_TEST_REQUIRE === 'all';

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ ...PG, database: 'postgres', connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

const problem = await probe();
/** True when the suites must run (server up, or required). */
export const pgRunnable = problem === undefined || requireAll;
if (problem !== undefined) {
  const msg = `PostgreSQL at ${PG.host}:${PG.port} is unreachable (${problem})`;
  if (requireAll) console.error(`${msg}: failing because LIFEBOAT_TEST_REQUIRE=all`);
  else
    console.warn(
      `${msg}: skipping PostgreSQL integration tests (set LIFEBOAT_TEST_REQUIRE=all to fail instead)`,
    );
}

/** Fail loudly in beforeAll when the server is required but down. */
export function assertPgUp(): void {
  if (problem !== undefined)
    throw new Error(`PostgreSQL at ${PG.host}:${PG.port} is unreachable: ${problem}`);
}

/** A unique database (or role) name with the given prefix. */
export function uniqueName(prefix = 'lb_test'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Run SQL in a database of the test server (one connection per call). */
export async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(
  database: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ ...PG, database });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** Databases and roles created by a suite, dropped by `dropAll`. */
export class PgScratch {
  readonly databases: string[] = [];
  readonly roles: string[] = [];

  /** Create a database with a unique name (or the given one) and remember it. */
  async createDatabase(name = uniqueName()): Promise<string> {
    await sql('postgres', `CREATE DATABASE ${quoteIdent(name)}`);
    this.databases.push(name);
    return name;
  }

  /** Remember a database created elsewhere (e.g. by a restore). */
  track(name: string): string {
    this.databases.push(name);
    return name;
  }

  async createRole(name = uniqueName('lb_role'), options = 'LOGIN'): Promise<string> {
    await sql('postgres', `CREATE ROLE ${quoteIdent(name)} ${options}`);
    this.roles.push(name);
    return name;
  }

  async dropAll(): Promise<void> {
    for (const db of this.databases.splice(0)) {
      await sql('postgres', `DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`).catch(() => {});
    }
    for (const role of this.roles.splice(0)) {
      // Privileges granted in databases already dropped went with them.
      await sql('postgres', `DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => {});
    }
  }
}

/** A restore into a new database, streamed, verified, default sessions: what most tests ask of restorePostgres. */
export const restoreDefaults: Omit<PostgresRestoreOptions, 'into'> = {
  create: true,
  clean: false,
  globals: false,
  force: false,
  dryRun: false,
};

/** A logger that keeps the debug lines (which tell how a restore went about its work) and drops the rest. */
export function debugLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { lines, logger: { debug: (m) => lines.push(m), info() {}, warn() {}, error() {} } };
}
