/**
 * Small `pg` conversations of scratch environments: a value of a user assertion, and the
 * administrative statements of scratch databases. `pg` is loaded lazily.
 */
import type { Client, ClientConfig } from 'pg';
import { OperationError } from '../errors.js';
import { redact } from '../platform/redact.js';

/** The connection fields scratch code needs (a subset of pg.ClientConfig). */
export interface PgConnectConfig {
  /** Host name, IP address, or a Unix socket directory. */
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
  ssl?: unknown;
  connectionTimeoutMillis?: number;
}

async function withClient<T>(
  config: PgConnectConfig,
  database: string,
  timeoutMs: number,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    ...(config as object),
    database,
    connectionTimeoutMillis: config.connectionTimeoutMillis ?? 10_000,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 1000,
    application_name: 'lifeboat drill',
  } as ClientConfig);
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } catch (err) {
    const where = `${config.host}:${config.port}/${database}`;
    throw new OperationError('E_SCRATCH_QUERY', `PostgreSQL at ${where}: ${redact((err as Error).message)}`, {
      cause: err,
    });
  } finally {
    await client.end().catch(() => {});
  }
}

/** First column of the first row of the last statement of `sql` (undefined when there is no row). */
export function pgQueryValue(
  config: PgConnectConfig,
  database: string,
  sql: string,
  timeoutMs: number,
): Promise<unknown> {
  return withClient(config, database, timeoutMs, async (client) => {
    const result = (await client.query({ text: sql, rowMode: 'array' })) as unknown;
    const last = (Array.isArray(result) ? result[result.length - 1] : result) as { rows?: unknown[][] };
    return last?.rows?.[0]?.[0];
  });
}

/** Run statements that return nothing of interest (CREATE/DROP DATABASE …). */
export async function pgExecute(
  config: PgConnectConfig,
  database: string,
  sql: string,
  timeoutMs = 60_000,
): Promise<void> {
  await withClient(config, database, timeoutMs, (client) => client.query(sql));
}

/** A SQL identifier, double-quoted. */
export function pgIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
