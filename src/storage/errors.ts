import { LifeboatError, ExitCode, type LifeboatErrorOptions } from '../errors.js';

/** The object does not exist. */
export class StorageNotFoundError extends LifeboatError {
  constructor(
    readonly url: string,
    readonly key: string,
    opts?: LifeboatErrorOptions,
  ) {
    super('E_STORAGE_NOT_FOUND', ExitCode.repositoryMissing, `object ${key} not found in ${url}`, opts);
  }
}

/** put() with ifNoneMatch found an existing object. */
export class StorageConflictError extends LifeboatError {
  constructor(
    readonly url: string,
    readonly key: string,
    opts?: LifeboatErrorOptions,
  ) {
    super('E_STORAGE_CONFLICT', ExitCode.internal, `object ${key} already exists in ${url}`, opts);
  }
}

/** A transient or permanent failure talking to the storage. `retryable` guides the retry wrapper. */
export class StorageIoError extends LifeboatError {
  constructor(
    message: string,
    readonly retryable: boolean,
    opts?: LifeboatErrorOptions,
  ) {
    super('E_STORAGE_IO', ExitCode.internal, message, opts);
  }
}

/** A key or list prefix that is not a safe `/`-separated relative name (empty segment, `..`, NUL, …). */
export class InvalidKeyError extends LifeboatError {
  constructor(
    readonly key: string,
    readonly reason: string,
    opts?: LifeboatErrorOptions,
  ) {
    super('E_STORAGE_KEY', ExitCode.internal, `invalid storage key ${describeKey(key)}: ${reason}`, {
      hint: 'Storage keys are relative names such as data/ab/abcdef; a key like this one points to corrupted or hostile repository contents.',
      ...opts,
    });
  }
}

/** The storage refuses writes because it was opened read-only. */
export class StorageReadOnlyError extends LifeboatError {
  constructor(
    readonly url: string,
    readonly operation: string,
    opts?: LifeboatErrorOptions,
  ) {
    super('E_STORAGE_READONLY', ExitCode.accessDenied, `cannot ${operation}: ${url} is opened read-only`, {
      hint: 'This command only reads the repository; use a command that is allowed to change it.',
      ...opts,
    });
  }
}

/** A storage URL scheme or option this build cannot serve (yet). */
export class StorageUnsupportedError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_STORAGE_UNSUPPORTED', ExitCode.usage, message, opts);
  }
}

/** Quote a key for a message: escapes control characters and shortens very long keys. */
function describeKey(key: string): string {
  const shown = key.length > 120 ? `${key.slice(0, 117)}...` : key;
  return JSON.stringify(shown);
}
