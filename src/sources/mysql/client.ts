/**
 * `mysql2` connections for backup and restore, and the translation of driver
 * errors into LifeboatErrors that say which server, which database and what
 * to do. `mysql2` is loaded lazily so that `lifeboat --help` stays fast.
 */
import type { Connection } from 'mysql2/promise';
import { AccessDeniedError, LifeboatError, OperationError } from '../../errors.js';
import { redact } from '../../platform/redact.js';
import { describeMysqlTarget, mysql2Config, type MysqlTarget } from './connection.js';

export type MysqlConnection = Connection;

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOENT',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
]);
const ACCESS = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_TABLEACCESS_DENIED_ERROR',
  'ER_COLUMNACCESS_DENIED_ERROR',
  'ER_SPECIFIC_ACCESS_DENIED_ERROR',
  'ER_PROCACCESS_DENIED_ERROR',
]);

/** Translate an error from `mysql2` into a LifeboatError about `what`. */
export function mysqlError(
  err: unknown,
  target: MysqlTarget,
  database: string | undefined,
  what: string,
): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const e = err as { code?: string; message?: string };
  const where = describeMysqlTarget(target, database);
  const message = redact(e.message ?? String(err));
  const code = e.code ?? '';
  if (UNREACHABLE.has(code)) {
    return new OperationError(
      'E_DB_UNREACHABLE',
      `cannot connect to MySQL/MariaDB at ${where} while ${what}: ${message || code}`,
      {
        hint: 'Check that the server is running and that host, port or socket in the job connection are right.',
        cause: err,
      },
    );
  }
  if (code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' && /RELOAD/i.test(message)) {
    return new AccessDeniedError(
      `user ${target.user} may not lock the server for a consistent snapshot at ${where}: ${message}`,
      {
        hint: `The backup briefly blocks commits to align its fingerprint with the dump: GRANT RELOAD ON *.* TO the backup user.`,
        cause: err,
      },
    );
  }
  if (ACCESS.has(code)) {
    return new AccessDeniedError(`MySQL/MariaDB denied access at ${where} while ${what}: ${message}`, {
      hint: 'Check the user and the password reference in the job connection, and the user’s grants (SELECT, SHOW VIEW, TRIGGER, EVENT, RELOAD).',
      cause: err,
    });
  }
  if (code === 'ER_BAD_DB_ERROR') {
    return new OperationError(
      'E_DB_NOT_FOUND',
      `database does not exist at ${where} while ${what}: ${message}`,
      {
        hint: 'Check the database names of the job (or pass --create to restore).',
        cause: err,
      },
    );
  }
  return new OperationError('E_DB_QUERY', `MySQL/MariaDB error at ${where} while ${what}: ${message}`, {
    hint: code ? `Error ${code}; see the server log for details.` : 'See the server log for details.',
    cause: err,
  });
}

/** Open a connection (to `database` when given). */
export async function connectMysql(
  target: MysqlTarget,
  database: string | undefined,
  what: string,
): Promise<MysqlConnection> {
  const mysql = await import('mysql2/promise');
  const config = await mysql2Config(target, database);
  try {
    const conn = await mysql.createConnection(config);
    // A dropped connection must surface as a query error, not as an uncaught 'error' event.
    conn.on('error', () => {});
    return conn;
  } catch (err) {
    throw mysqlError(err, target, database, what);
  }
}

/** Close a connection, ignoring errors (it may already be gone). */
export async function closeMysql(conn: MysqlConnection | undefined): Promise<void> {
  if (!conn) return;
  await conn.end().catch(() => conn.destroy());
}

/** Run a query and return its rows. */
export async function rows<T>(conn: MysqlConnection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [result] = await conn.query(sql, params);
  return result as T[];
}
