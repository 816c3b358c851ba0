import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { backupFiles, FileCache, type FilesSpec } from '../../../src/sources/files/index.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

// Far enough in the future that no test file counts as "just modified" (see the cache's racy window).
const clock = new FakeClock(Date.parse('2100-01-01T00:00:00Z'));

describe('incremental cache with the repository', () => {
  let dir: string;
  let src: string;
  let cachePath: string;
  let t: TestRepo;
  const spec = (): FilesSpec => ({
    paths: [src],
    include: [],
    exclude: [],
    oneFileSystem: false,
    xattrs: false,
  });

  async function backup(): Promise<{ tree: string; reads: string[] }> {
    const reads: string[] = [];
    const result = await backupFiles(t.repo, spec(), {
      logger: silentLogger,
      clock,
      cache: await FileCache.load(cachePath, t.repo.id, silentLogger),
      hooks: { onRead: (p) => void reads.push(p) },
    });
    expect(result.partial).toBe(false);
    return { tree: result.tree, reads };
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-cache-it-'));
    t = await openTestRepo(join(dir, 'repo'));
    src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await mkdir(join(dir, 'state'));
    cachePath = join(dir, 'state', 'files.cache');
    await writeFile(join(src, 'one'), randomBytes(2 * 1024 * 1024));
    await writeFile(join(src, 'two'), 'small');
    await writeFile(join(src, 'sub', 'three'), randomBytes(10_000));
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('skips unchanged files, and a corrupt or missing cache gives the identical snapshot', async () => {
    const first = await backup();
    expect(first.reads).toHaveLength(3);

    const second = await backup();
    expect(second.reads).toEqual([]);
    expect(second.tree).toBe(first.tree);

    const text = await readFile(cachePath);
    const at = Math.floor(text.length / 2);
    text[at] = text[at]! ^ 0x01;
    await writeFile(cachePath, text);
    const afterCorruption = await backup();
    expect(afterCorruption.reads).toHaveLength(3);
    expect(afterCorruption.tree).toBe(first.tree);

    await rm(cachePath);
    const afterLoss = await backup();
    expect(afterLoss.reads).toHaveLength(3);
    expect(afterLoss.tree).toBe(first.tree);
  });
});
