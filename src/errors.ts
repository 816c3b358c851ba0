/**
 * The single error hierarchy of lifeboat. Every failure a user can meet is a
 * LifeboatError with a stable code, the exit code it maps to, and a hint that
 * says what to do next. Only src/cli/main.ts turns these into exit codes.
 */

/** Exit codes, documented in docs/exit-codes.md. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  partial: 3,
  policyBreach: 4,
  repositoryMissing: 10,
  repositoryLocked: 11,
  accessDenied: 12,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface LifeboatErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Structured details for --json output (never secrets). */
  details?: Record<string, unknown>;
}

export class LifeboatError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, exitCode: ExitCodeValue, message: string, opts: LifeboatErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = opts.hint;
    this.details = opts.details;
  }
}

/** Wrong flags or arguments on the command line. */
export class UsageError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_USAGE', ExitCode.usage, message, opts);
  }
}

/** One problem found in a configuration file. */
export interface ConfigIssue {
  /** Dotted path inside the document, e.g. `jobs.web.schedule`. */
  path: string;
  message: string;
  hint?: string;
  line?: number;
  column?: number;
}

/** The configuration is missing, unreadable or invalid; carries every issue found. */
export class ConfigError extends LifeboatError {
  readonly file: string | undefined;
  readonly issues: ConfigIssue[];

  constructor(
    message: string,
    file: string | undefined,
    issues: ConfigIssue[] = [],
    opts?: LifeboatErrorOptions,
  ) {
    super('E_CONFIG', ExitCode.usage, message, opts);
    this.file = file;
    this.issues = issues;
  }
}

export class RepositoryMissingError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_REPO_MISSING', ExitCode.repositoryMissing, message, opts);
  }
}

export class RepositoryLockedError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_REPO_LOCKED', ExitCode.repositoryLocked, message, opts);
  }
}

export class AccessDeniedError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_ACCESS_DENIED', ExitCode.accessDenied, message, opts);
  }
}

/** Data in the repository failed authentication or does not parse: never restored silently. */
export class IntegrityError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_INTEGRITY', ExitCode.internal, message, opts);
  }
}

/** A policy target was missed or a drill/verification failed. */
export class PolicyBreachError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_POLICY_BREACH', ExitCode.policyBreach, message, opts);
  }
}

/** An external tool or the operating system failed in a way the user must act on. */
export class OperationError extends LifeboatError {
  constructor(code: string, message: string, opts?: LifeboatErrorOptions) {
    super(code, ExitCode.internal, message, opts);
  }
}

export class InterruptedError extends LifeboatError {
  constructor(signal: string) {
    super('E_INTERRUPTED', ExitCode.interrupted, `interrupted by ${signal}`, {
      hint: 'Nothing half-written was committed; run the command again to finish.',
    });
  }
}

/** Narrow an unknown thrown value to a NodeJS errno exception. */
export function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

/** Of two exit codes, the one that should win when a command did several things (first wins a tie). */
export function worseExitCode(current: number, next: number): number {
  const severity = (code: number) =>
    code === 0 ? 0 : code === ExitCode.partial ? 1 : code === ExitCode.policyBreach ? 2 : 3;
  return severity(next) > severity(current) ? next : current;
}
