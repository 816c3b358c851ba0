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
