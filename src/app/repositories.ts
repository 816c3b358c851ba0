import type { LifeboatConfig, RepositoryConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { UsageError } from '../errors.js';
import { registerSecret } from '../platform/redact.js';
import { openRepository, initRepository, type Repository } from '../repository/repository.js';
import { openStorage } from '../storage/registry.js';
import { RetryingStorage } from '../storage/retry.js';
import type { Deps } from './deps.js';

/** The repository section named `name`, or a usage error listing the configured ones. */
export function repositoryConfig(config: LifeboatConfig, name: string): RepositoryConfig {
  const repo = config.repositories[name];
  if (!repo) {
    const known = Object.keys(config.repositories);
    throw new UsageError(`unknown repository '${name}'`, {
      hint: known.length ? `Configured repositories: ${known.join(', ')}.` : 'Add one under `repositories:`.',
    });
  }
  return repo;
}

/** The repositories a job writes to, in order (the first is where backups go). */
export function jobRepositoryNames(config: LifeboatConfig, job: { repositories?: string[] }): string[] {
  return job.repositories?.length ? job.repositories : Object.keys(config.repositories);
}

/**
 * The repository password: the configured secret reference, else
 * $LIFEBOAT_PASSWORD, else a prompt on a terminal.
 */
export async function repositoryPassword(config: LifeboatConfig, name: string, deps: Deps): Promise<string> {
  const repo = repositoryConfig(config, name);
  let password: string | undefined;
  if (repo.password) password = await resolveSecret(repo.password, { env: deps.env });
  else if (deps.env.LIFEBOAT_PASSWORD) password = deps.env.LIFEBOAT_PASSWORD;
  else if (deps.askPassword) password = await deps.askPassword(`password for repository ${name}: `);
  if (!password) {
    throw new UsageError(`no password for repository '${name}'`, {
      hint: 'Set `password: env:NAME` (or file:/path, command:…) on the repository, or export LIFEBOAT_PASSWORD.',
    });
  }
  registerSecret(password);
  return password;
}

async function storageFor(config: LifeboatConfig, name: string, create: boolean, deps: Deps) {
  const repo = repositoryConfig(config, name);
  const storage = await openStorage(repo.url, {
    create,
    ...(repo.s3 ? { s3: await s3Options(repo.s3, deps) } : {}),
  });
  return new RetryingStorage(storage);
}

/** S3 settings of a repository with their secret references resolved. */
async function s3Options(s3: NonNullable<RepositoryConfig['s3']>, deps: Deps) {
  const resolve = (ref: typeof s3.accessKeyId, what: string) =>
    ref === undefined ? undefined : resolveSecret(ref, { env: deps.env, what });
  const accessKeyId = await resolve(s3.accessKeyId, 'accessKeyId');
  const secretAccessKey = await resolve(s3.secretAccessKey, 'secretAccessKey');
  return {
    ...(s3.region ? { region: s3.region } : {}),
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    ...(s3.forcePathStyle !== undefined ? { forcePathStyle: s3.forcePathStyle } : {}),
    ...(accessKeyId ? { accessKeyId } : {}),
    ...(secretAccessKey ? { secretAccessKey } : {}),
    ...(s3.objectLockMode ? { objectLockMode: s3.objectLockMode } : {}),
  };
}

/** Open the configured repository `name` (exit 10 if missing, 12 on a wrong password). */
export async function openConfiguredRepository(
  config: LifeboatConfig,
  name: string,
  deps: Deps,
): Promise<Repository> {
  const storage = await storageFor(config, name, false, deps);
  const password = await repositoryPassword(config, name, deps);
  const repo = repositoryConfig(config, name);
  return openRepository(storage, password, {
    clock: deps.clock,
    host: deps.host,
    user: deps.user,
    logger: deps.logger,
    ...(repo.packSize ? { packSize: repo.packSize } : {}),
  });
}

/** Create the configured repository `name` (refuses when one already exists there). */
export async function initConfiguredRepository(
  config: LifeboatConfig,
  name: string,
  deps: Deps,
): Promise<Repository> {
  const storage = await storageFor(config, name, true, deps);
  const password = await repositoryPassword(config, name, deps);
  const repo = repositoryConfig(config, name);
  return initRepository(storage, password, {
    clock: deps.clock,
    host: deps.host,
    user: deps.user,
    logger: deps.logger,
    ...(repo.packSize ? { packSize: repo.packSize } : {}),
  });
}
