/**
 * The repository used by the files integration tests: the real engine
 * (src/repository/repository.ts) on real local storage, created fresh under
 * the test's temp dir, with cheap scrypt parameters so tests stay fast.
 */
import { FakeClock } from '../../../src/platform/clock.js';
import type { Repo } from '../../../src/repository/api.js';
import { initRepository, type Repository } from '../../../src/repository/repository.js';
import { LocalStorage } from '../../../src/storage/local.js';

export interface TestRepo {
  repo: Repository;
  close(): Promise<void>;
}

/** Create a repository at `dir` (a path that does not exist yet). */
export async function openTestRepo(dir: string): Promise<TestRepo> {
  const storage = await LocalStorage.create(dir);
  const repo = await initRepository(storage, 'test password', {
    clock: new FakeClock(Date.parse('2025-01-31T12:00:00Z')),
    host: 'files-test',
    kdf: { N: 1024, r: 8, p: 1 },
    compressionWorkers: 1,
  });
  return { repo, close: () => repo.close() };
}

/**
 * Save a tree blob exactly as given, bypassing saveTree's validation: how a
 * hostile or damaged repository would present itself to restore.
 */
export async function saveRawTree(repo: Repo, nodes: unknown[]): Promise<string> {
  return (await repo.saveBlob('tree', Buffer.from(JSON.stringify({ nodes }), 'utf8'))).id;
}
