import type { LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { LockInfo } from '../repository/locks.js';
import type { KeyInfo } from '../repository/keys.js';
import type { RepositoryStats } from '../repository/repository.js';
import type { Deps } from './deps.js';
import { initConfiguredRepository, openConfiguredRepository, repositoryConfig } from './repositories.js';

/** The repository a `repo …` command is about: the named one, or the only configured one. */
export function pickRepository(config: LifeboatConfig, name: string | undefined): string {
  if (name) {
    repositoryConfig(config, name);
    return name;
  }
  const names = Object.keys(config.repositories);
  if (names.length === 1) return names[0]!;
  throw new UsageError('name the repository: several are configured', {
    hint: `Configured repositories: ${names.join(', ')}.`,
  });
}

export interface InitResult {
  repository: string;
  url: string;
  id: string;
  keyId: string;
}

/** Create one configured repository. */
export async function initRepo(config: LifeboatConfig, name: string, deps: Deps): Promise<InitResult> {
  const repo = await initConfiguredRepository(config, name, deps);
  try {
    return { repository: name, url: repo.url, id: repo.id, keyId: repo.keyId };
  } finally {
    await repo.close();
  }
}

/** Run `fn` on an opened configured repository and close it afterwards. */
export async function withRepository<T>(
  config: LifeboatConfig,
  name: string,
  deps: Deps,
  fn: (repo: Awaited<ReturnType<typeof openConfiguredRepository>>) => Promise<T>,
): Promise<T> {
  const repo = await openConfiguredRepository(config, name, deps);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

export interface StatsResult extends RepositoryStats {
  repository: string;
  url: string;
  id: string;
  locks: LockInfo[];
}

/** Figures about a repository for `repo stats`. */
export function repoStats(config: LifeboatConfig, name: string, deps: Deps): Promise<StatsResult> {
  return withRepository(config, name, deps, async (repo) => ({
    repository: name,
    url: repo.url,
    id: repo.id,
    ...(await repo.stats()),
    locks: await repo.listLocks(),
  }));
}

/** Remove stale locks (every lock with `all`). */
export function unlockRepo(
  config: LifeboatConfig,
  name: string,
  all: boolean,
  deps: Deps,
): Promise<{ repository: string; removed: LockInfo[]; remaining: LockInfo[] }> {
  return withRepository(config, name, deps, async (repo) => {
    const removed = await repo.unlock({ force: all });
    return { repository: name, removed, remaining: await repo.listLocks() };
  });
}

export function listRepoKeys(config: LifeboatConfig, name: string, deps: Deps) {
  return withRepository(config, name, deps, async (repo) => ({
    repository: name,
    current: repo.keyId,
    ...(await repo.listKeys()),
  }));
}

export function addRepoKey(
  config: LifeboatConfig,
  name: string,
  newPassword: string,
  deps: Deps,
): Promise<KeyInfo & { repository: string }> {
  return withRepository(config, name, deps, async (repo) => ({
    repository: name,
    ...(await repo.addKey(newPassword)),
  }));
}

export function removeRepoKey(
  config: LifeboatConfig,
  name: string,
  keyId: string,
  deps: Deps,
): Promise<KeyInfo & { repository: string }> {
  return withRepository(config, name, deps, async (repo) => ({
    repository: name,
    ...(await repo.removeKey(keyId)),
  }));
}
