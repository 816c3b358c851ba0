/**
 * Test access to the machine's MariaDB server (root without password on
 * 127.0.0.1) and uniquely named throwaway databases and accounts. When the
 * server is unreachable the suites skip with a message, unless
 * LIFEBOAT_TEST_REQUIRE=all, where they fail.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

export const MY = {
  host: process.env.LIFEBOAT_TEST_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.LIFEBOAT_TEST_MYSQL_PORT ?? 3306),
  user: process.env.LIFEBOAT_TEST_MYSQL_USER ?? 'root',
};

export const requireAll = process.env.LIFEBOAT_TEST_REQUIRE === 'all';

async function probe(): Promise<string | undefined> {
  try {
    const conn = await mysql.createConnection({ ...MY, connectTimeout: 3000 });
    await conn.query('SELECT 1');
    await conn.end();
    return undefined;
  } catch (err) {
    return (err as Error).message || String((err as { code?: string }).code);
  }
}

const problem = await probe();
/** True when the suites must run (server up, or required). */
export const myRunnable = problem === undefined || requireAll;
if (problem !== undefined) {
  const msg = `MariaDB/MySQL at ${MY.host}:${MY.port} is unreachable (${problem})`;
  if (requireAll) console.error(`${msg}: failing because LIFEBOAT_TEST_REQUIRE=all`);
  else
    console.warn(`${msg}: skipping MySQL integration tests (set LIFEBOAT_TEST_REQUIRE=all to fail instead)`);
}

/** Fail loudly in beforeAll when the server is required but down. */
export function assertMyUp(): void {
  if (problem !== undefined)
    throw new Error(`MariaDB/MySQL at ${MY.host}:${MY.port} is unreachable: ${problem}`);
}

export function uniqueName(prefix = 'lb_test'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export function ident(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** Run SQL (several statements allowed) as root, optionally in a database. */
export async function sql<T = Record<string, unknown>>(
  database: string | undefined,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const conn = await mysql.createConnection({ ...MY, database, multipleStatements: true, dateStrings: true });
  try {
    const [result] = await conn.query(text, params);
    return result as T[];
  } finally {
    await conn.end();
  }
}

/** Databases and accounts created by a suite, dropped by `dropAll`. */
export class MyScratch {
  readonly databases: string[] = [];
  readonly accounts: string[] = [];

  async createDatabase(name = uniqueName()): Promise<string> {
    await sql(undefined, `CREATE DATABASE ${ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    this.databases.push(name);
    return name;
  }

  track(name: string): string {
    this.databases.push(name);
    return name;
  }

  /** Create user@127.0.0.1 with a password; returns the user name. */
  async createUser(password: string, name = uniqueName('lb_u')): Promise<string> {
    await sql(undefined, `CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [name, password]);
    this.accounts.push(`${name}`);
    return name;
  }

  trackUser(name: string): void {
    this.accounts.push(name);
  }

  async dropAll(): Promise<void> {
    for (const db of this.databases.splice(0))
      await sql(undefined, `DROP DATABASE IF EXISTS ${ident(db)}`).catch(() => {});
    for (const u of this.accounts.splice(0))
      await sql(undefined, `DROP USER IF EXISTS ?@'127.0.0.1'`, [u]).catch(() => {});
  }
}
