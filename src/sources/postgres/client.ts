/**
 * `pg` clients for backup and restore, and the translation of driver errors
 * into LifeboatErrors that say which server, which database and what to do.
 * `pg` is loaded lazily so that `lifeboat --help` does not pay for it.
 */
import type { Client } from 'pg';
import { AccessDeniedError, LifeboatError, OperationError } from '../../errors.js';
import { redact } from '../../platform/redact.js';
import { describePgTarget, pgClientConfig, type PgTarget } from './connection.js';

export type PgClient = Client;

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOENT',
  'EAI_AGAIN',
]);

/** Translate an error from `pg` into a LifeboatError about `what` (e.g. `backing up database shop`). */
export function pgError(
  err: unknown,
  target: PgTarget,
  database: string | undefined,
  what: string,
): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const e = err as { code?: string; message?: string };
  const where = describePgTarget(target, database);
  const message = redact(e.message ?? String(err));
  const code = e.code ?? '';
  if (
    UNREACHABLE.has(code) ||
    /timeout expired|Connection terminated due to connection timeout/i.test(message)
  ) {
    return new OperationError(
      'E_DB_UNREACHABLE',
      `cannot connect to PostgreSQL at ${where} while ${what}: ${message}`,
      {
        hint: 'Check that the server is running and that host, port or socketDir in the job connection are right.',
        cause: err,
      },
    );
  }
  if (code === '28P01' || code === '28000') {
    return new AccessDeniedError(
      `PostgreSQL rejected user ${target.user} at ${where} while ${what}: ${message}`,
      {
        hint: 'Check the user and the password reference in the job connection, and pg_hba.conf on the server.',
        cause: err,
      },
    );
  }
  if (code === '3D000') {
    return new OperationError(
      'E_DB_NOT_FOUND',
      `database does not exist at ${where} while ${what}: ${message}`,
      {
        hint: 'Check the database names of the job (or create the database, or pass --create to restore).',
        cause: err,
      },
    );
  }
  if (code === '42501') {
    return new AccessDeniedError(`permission denied at ${where} while ${what}: ${message}`, {
      hint:
        'The backup user must be able to read every table: GRANT SELECT on the tables (or GRANT pg_read_all_data ' +
        'TO the user), or back up as the owner.',
      cause: err,
    });
  }
  return new OperationError('E_DB_QUERY', `PostgreSQL error at ${where} while ${what}: ${message}`, {
    hint: code ? `SQLSTATE ${code}; see the server log for details.` : 'See the server log for details.',
    cause: err,
  });
}

/** Open a client to `database` (default: the target's database, else `postgres`). */
export async function connectPg(
  target: PgTarget,
  database: string | undefined,
  what: string,
): Promise<PgClient> {
  const { default: pg } = await import('pg');
  const config = await pgClientConfig(target, database);
  const client = new pg.Client(config);
  // A server restart while a backup runs must surface as a query error, not an uncaught 'error' event.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw pgError(err, target, config.database, what);
  }
  return client;
}

/** Close a client, ignoring errors (the connection may already be gone). */
export async function closePg(client: PgClient | undefined): Promise<void> {
  if (client) await client.end().catch(() => {});
}
