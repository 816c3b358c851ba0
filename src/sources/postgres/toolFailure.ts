/**
 * Errors of pg_dump, pg_dumpall, pg_restore and psql: the tool, what it was
 * doing, where, and the last lines of its (redacted) stderr, classified so
 * that an authentication or permission problem maps to exit code 12.
 */
import { AccessDeniedError, LifeboatError, OperationError } from '../../errors.js';
import { lastLines } from '../../platform/exec.js';
import { redact } from '../../platform/redact.js';
import { describePgTarget, type PgTarget } from './connection.js';

/** Turn a failed pg_dump / pg_dumpall into an error naming the tool, the database and the cause. */
export function pgToolFailure(tool: string, what: string, err: unknown, target: PgTarget): LifeboatError {
  if (err instanceof LifeboatError && err.code === 'E_EXEC_NOT_FOUND') return err;
  const details = (err as { details?: { stderr?: string; exitCode?: number | null } }).details;
  const stderr = redact(details?.stderr ?? (err instanceof Error ? err.message : String(err)));
  const exit =
    /\(exit ([^)]+)\)/.exec(err instanceof Error ? err.message : '')?.[1] ?? String(details?.exitCode ?? '?');
  const where = describePgTarget(target);
  const message = `${tool} failed (exit ${exit}) while ${what} (${where}): ${lastLines(stderr, 4)}`;
  const opts = { cause: err, details: { tool, stderr, exit } };
  if (/permission denied/i.test(stderr)) {
    return new AccessDeniedError(message, {
      ...opts,
      hint: 'Grant the backup user SELECT on every table (e.g. GRANT pg_read_all_data TO the user).',
    });
  }
  if (/password authentication failed|no pg_hba\.conf entry|authentication failed/i.test(stderr)) {
    return new AccessDeniedError(message, {
      ...opts,
      hint: 'Check the user and password of the job connection.',
    });
  }
  if (/connection refused|could not connect|could not translate host name|timeout expired/i.test(stderr)) {
    return new OperationError('E_DB_UNREACHABLE', message, {
      ...opts,
      hint: 'Check that the server is running and reachable from this host.',
    });
  }
  return new OperationError('E_PG_DUMP_FAILED', message, {
    ...opts,
    hint: 'Nothing was committed for this run; fix the cause and run the backup again.',
  });
}
