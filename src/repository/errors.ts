/**
 * Errors specific to the repository engine. General ones (missing repository,
 * locked, access denied, integrity) live in src/errors.ts and are reused here.
 */
import { ExitCode, LifeboatError, type LifeboatErrorOptions } from '../errors.js';

/** `repo init` found an existing repository at the location. */
export class RepositoryExistsError extends LifeboatError {
  constructor(url: string, opts?: LifeboatErrorOptions) {
    super('E_REPO_EXISTS', ExitCode.usage, `a lifeboat repository already exists at ${url}`, {
      hint: 'Use the existing repository with its password, or choose an empty location for a new one.',
      ...opts,
    });
  }
}

/** Something is stored at the location, but it is not a lifeboat repository. */
export class NotARepositoryError extends LifeboatError {
  constructor(url: string, reason: string, opts?: LifeboatErrorOptions) {
    super(
      'E_NOT_A_REPOSITORY',
      ExitCode.repositoryMissing,
      `${url} is not a lifeboat repository: ${reason}`,
      {
        hint: 'Check the repository URL in the configuration; `lifeboat repo init` creates a repository in an empty location.',
        ...opts,
      },
    );
  }
}

/** The repository was written by a newer lifeboat with a format this one cannot read. */
export class UnsupportedFormatError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_FORMAT_VERSION', ExitCode.usage, message, {
      hint: 'Upgrade lifeboat to a version that supports this repository format.',
      ...opts,
    });
  }
}

/** A snapshot reference (ID, prefix, `latest`) matched nothing. */
export class SnapshotNotFoundError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_SNAPSHOT_NOT_FOUND', ExitCode.usage, message, opts);
  }
}

/** A caller handed the engine something that breaks the format's rules (a bug in the caller). */
export class InvalidRepositoryInputError extends LifeboatError {
  constructor(message: string, opts?: LifeboatErrorOptions) {
    super('E_REPO_INPUT', ExitCode.internal, message, opts);
  }
}
