import { afterEach, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupFiles, FileCache, listTree, restoreTree } from '../../../src/sources/files/index.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { openTestRepo } from './testRepo.js';

// Snapshot jobs read a filesystem snapshot but record the live path: `readFrom`.
let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('backupFiles with readFrom', () => {
  it('records the snapshot directory under the live path, applies filters and the cache by that path', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-readfrom-'));
    const live = join(dir, 'live', 'data');
    const snap = join(dir, 'snaps', 'lifeboat-data-1');
    await mkdir(join(snap, 'cache'), { recursive: true });
    await writeFile(join(snap, 'keep.txt'), 'from the snapshot\n');
    await writeFile(join(snap, 'cache', 'skip.tmp'), 'x');
    await mkdir(live, { recursive: true });
    await writeFile(join(live, 'keep.txt'), 'live content that must not be read\n');

    const { repo, close } = await openTestRepo(join(dir, 'repo'));
    try {
      const cache = await FileCache.load(join(dir, 'state', 'cache'), repo.id, silentLogger);
      const spec = {
        paths: [live],
        include: [],
        exclude: [`${live.slice(1)}/cache/`],
        oneFileSystem: false,
        xattrs: false,
        readFrom: { physical: snap, logical: live },
      };
      const first = await backupFiles(repo, spec, { logger: silentLogger, cache });
      const paths: string[] = [];
      for await (const e of listTree(repo, first.tree, '', { recursive: true })) paths.push(e.path);
      expect(paths).toContain(`${live.slice(1)}/keep.txt`);
      expect(paths.some((p) => p.includes('lifeboat-data-1'))).toBe(false);
      expect(paths.some((p) => p.includes('skip.tmp'))).toBe(false);

      const target = join(dir, 'restore');
      const restored = await restoreTree(repo, first.tree, target, {
        overwrite: 'never',
        dryRun: false,
        logger: silentLogger,
      });
      expect(restored.errors).toEqual([]);
      expect(await readFile(join(target, live, 'keep.txt'), 'utf8')).toBe('from the snapshot\n');

      // A later snapshot at another directory is recorded the same way.
      const snap2 = join(dir, 'snaps', 'lifeboat-data-2');
      await cp(snap, snap2, { recursive: true, preserveTimestamps: true });
      const reads: string[] = [];
      const cache2 = await FileCache.load(join(dir, 'state', 'cache'), repo.id, silentLogger);
      const second = await backupFiles(
        repo,
        { ...spec, readFrom: { physical: snap2, logical: live } },
        { logger: silentLogger, cache: cache2, hooks: { onRead: (p) => reads.push(p) } },
      );
      // Different inode and ctime in the copy: read again, but recorded under the same paths.
      const paths2: string[] = [];
      for await (const e of listTree(repo, second.tree, '', { recursive: true })) paths2.push(e.path);
      expect(paths2).toEqual(paths);
      expect(reads.every((p) => p.startsWith(snap2))).toBe(true);
    } finally {
      await close();
    }
  });
});
