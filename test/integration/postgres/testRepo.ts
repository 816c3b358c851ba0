/**
 * The repository the database integration tests write to: the real engine
 * (encrypted, packed, indexed) on local storage in a temp dir. `commit`
 * saves a snapshot like the backup use case does, closes the repository and
 * reopens it, so restores read only what really reached the disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import type { DatabaseBackupResult } from '../../../src/sources/database/results.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { T0, testOptions } from '../../unit/repository/helpers.js';

const PASSWORD = 'database test repository';

export interface TestRepo {
  repo: Repository;
  /** Save the backup as a snapshot, reopen the repository from disk, and return the snapshot entry. */
  commit(job: string, kind: 'postgres' | 'mysql', backup: DatabaseBackupResult): Promise<SnapshotEntry>;
  dispose(): Promise<void>;
}

/** A fresh, empty repository in its own temp dir. */
export async function openTestRepo(): Promise<TestRepo> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-dbrepo-'));
  const url = pathToFileURL(join(dir, 'repo')).href;
  const options = testOptions({ compressionWorkers: 1 });
  const handle: TestRepo = {
    repo: await initRepository(await LocalStorage.create(url), PASSWORD, options),
    async commit(job, kind, backup) {
      const id = await handle.repo.saveSnapshot({
        v: 1,
        job,
        kind,
        host: 'test-host',
        startedAt: new Date(T0).toISOString(),
        endedAt: new Date(T0 + 1000).toISOString(),
        tree: backup.tree,
        paths: backup.paths,
        tags: [],
        partial: false,
        fingerprint: backup.fingerprint,
        stats: backup.stats,
        toolVersion: 'test',
      });
      await handle.repo.close();
      handle.repo = await openRepository(LocalStorage.fromUrl(url), PASSWORD, options);
      return handle.repo.findSnapshot(id);
    },
    async dispose() {
      await handle.repo.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
