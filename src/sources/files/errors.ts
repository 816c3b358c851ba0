/** Errors of the files job kind that a user must act on. */
import { ExitCode, LifeboatError, type LifeboatErrorOptions } from '../../errors.js';

/** A configured source path is missing or not accessible; raised before anything is written. */
export class SourcePathError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_SOURCE_PATH', ExitCode.usage, message, opts);
  }
}

/** The restore target cannot be used as asked (not empty, not a directory). */
export class RestoreTargetError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_RESTORE_TARGET', ExitCode.usage, message, opts);
  }
}

/** A path asked for does not exist in the snapshot. */
export class SnapshotPathError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_SNAPSHOT_PATH', ExitCode.usage, message, opts);
  }
}
