/** Small `mysql2` conversations of scratch environments. `mysql2` is loaded lazily. */
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import { OperationError } from '../errors.js';
import { redact } from '../platform/redact.js';

/** The connection fields scratch code needs (a subset of mysql2's ConnectionOptions). */
export interface MysqlConnectConfig {
  host?: string;
  port?: number;
  socketPath?: string;
  user: string;
  password?: string;
  ssl?: unknown;
  connectTimeout?: number;
}

async function withConnection<T>(
  config: MysqlConnectConfig,
  database: string | undefined,
  fn: (conn: Connection) => Promise<T>,
): Promise<T> {
  const mysql = await import('mysql2/promise');
  let conn: Connection | undefined;
  try {
    conn = await mysql.createConnection({
      ...(config as object),
      ...(database ? { database } : {}),
      connectTimeout: config.connectTimeout ?? 10_000,
      multipleStatements: false,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
    } as ConnectionOptions);
    return await fn(conn);
  } catch (err) {
    const where = config.socketPath ? `[socket ${config.socketPath}]` : `${config.host}:${config.port}`;
    throw new OperationError(
      'E_SCRATCH_QUERY',
      `MySQL/MariaDB at ${where}${database ? `/${database}` : ''}: ${redact((err as Error).message)}`,
      { cause: err },
    );
  } finally {
    await conn?.end().catch(() => {});
  }
}

/** First column of the first row of `sql` (undefined when there is no row). */
export function mysqlQueryValue(
  config: MysqlConnectConfig,
  database: string | undefined,
  sql: string,
  timeoutMs: number,
): Promise<unknown> {
  return withConnection(config, database, async (conn) => {
    const [rows] = await conn.query({ sql, timeout: timeoutMs, rowsAsArray: true });
    return Array.isArray(rows) ? (rows[0] as unknown[] | undefined)?.[0] : undefined;
  });
}

/** Run one statement that returns nothing of interest. */
export async function mysqlExecute(
  config: MysqlConnectConfig,
  sql: string,
  timeoutMs = 60_000,
): Promise<void> {
  await withConnection(config, undefined, (conn) => conn.query({ sql, timeout: timeoutMs }));
}

/** An identifier in backticks. */
export function mysqlIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}
