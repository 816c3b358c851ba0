import { ExitCode, InterruptedError, LifeboatError, type ExitCodeValue } from '../errors.js';
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

/** A failure as shown in command results: the journal fields plus the exit code it maps to. */
export interface FailureSummary extends JournalError {
  exitCode: ExitCodeValue;
}

/** Describe a failure for a command result (redacted), keeping its exit code. */
export function summarizeFailure(err: unknown): FailureSummary {
  return {
    ...describeFailure(err),
    exitCode: err instanceof LifeboatError ? err.exitCode : ExitCode.internal,
  };
}

/** The exit code a recorded failure maps to (docs/exit-codes.md). */
export function exitCodeOfFailure(error: JournalError): number {
  switch (error.code) {
    case 'E_REPO_MISSING':
    case 'E_NOT_A_REPOSITORY':
      return ExitCode.repositoryMissing;
    case 'E_REPO_LOCKED':
      return ExitCode.repositoryLocked;
    case 'E_ACCESS_DENIED':
      return ExitCode.accessDenied;
    case 'E_POLICY_BREACH':
      return ExitCode.policyBreach;
    case 'E_INTERRUPTED':
      return ExitCode.interrupted;
    case 'E_CONFIG':
    case 'E_USAGE':
      return ExitCode.usage;
    default:
      return ExitCode.internal;
  }
}
