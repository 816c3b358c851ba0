/**
 * Errors of mariadb-dump/mysqldump and mariadb/mysql: what was being done,
 * where, and the last lines of the (redacted) stderr, classified so that an
 * authentication or permission problem maps to exit code 12.
 */
import { AccessDeniedError, LifeboatError, OperationError } from '../../errors.js';
import { lastLines } from '../../platform/exec.js';
import { redact } from '../../platform/redact.js';
import { describeMysqlTarget, type MysqlTarget } from './connection.js';

/** Turn a failed tool run into an error naming the tool, the work and the cause. */
export function mysqlToolFailure(
  role: 'dump' | 'client',
  what: string,
  err: unknown,
  target: MysqlTarget,
): LifeboatError {
  if (err instanceof LifeboatError && err.code === 'E_EXEC_NOT_FOUND') return err;
  const details = (err as { details?: { stderr?: string; command?: string } }).details;
  const stderr = redact(details?.stderr ?? (err instanceof Error ? err.message : String(err)));
  const exit = /\(exit ([^)]+)\)/.exec(err instanceof Error ? err.message : '')?.[1] ?? '?';
  const tool =
    /^(\S*?)(mariadb-dump|mysqldump|mariadb|mysql)\b/.exec(details?.command ?? '')?.[2] ??
    (role === 'dump' ? 'mariadb-dump' : 'mariadb');
  const message = `${tool} failed (exit ${exit}) while ${what} (${describeMysqlTarget(target)}): ${lastLines(stderr, 4)}`;
  const opts = { cause: err, details: { tool, stderr, exit } };
  if (/Access denied|command denied|\(1044\)|\(1045\)|\(1142\)|\(1227\)/i.test(stderr)) {
    return new AccessDeniedError(message, {
      ...opts,
      hint: 'Check the user, password and grants of the job connection (SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD).',
    });
  }
  if (/Can't connect|Unknown MySQL server host|Lost connection|Connection refused/i.test(stderr)) {
    return new OperationError('E_DB_UNREACHABLE', message, {
      ...opts,
      hint: 'Check that the server is running and reachable from this host.',
    });
  }
  return new OperationError(role === 'dump' ? 'E_MYSQL_DUMP_FAILED' : 'E_MYSQL_RESTORE_FAILED', message, {
    ...opts,
    hint:
      role === 'dump'
        ? 'Nothing was committed for this run; fix the cause and run the backup again.'
        : 'The target may be partly restored; fix the cause and restore again with --clean.',
  });
}
