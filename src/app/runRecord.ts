import { InterruptedError, LifeboatError } from '../errors.js';
import { redact } from '../platform/redact.js';
import type { JournalError, JournalOutcome } from '../repository/journal.js';

/** A failure as recorded in results and the journal: code, redacted message, hint. */
export function describeFailure(err: unknown): JournalError {
  if (err instanceof LifeboatError) {
    return { code: err.code, message: redact(err.message), ...(err.hint ? { hint: redact(err.hint) } : {}) };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'E_INTERNAL', message: redact(message) };
}

/** The journal outcome of a run that threw. */
export function failureOutcome(err: unknown): JournalOutcome {
  return err instanceof InterruptedError || (err instanceof Error && err.name === 'AbortError')
    ? 'interrupted'
    : 'failure';
}

/** ISO-8601 text of a clock reading. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
