import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { backupFiles, restoreTree, verifyRestoredTree } from '../../../src/sources/files/index.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

async function largestPack(repoDir: string): Promise<string> {
  let best = { path: '', size: -1 };
  for (const fan of await readdir(join(repoDir, 'data'))) {
    for (const name of await readdir(join(repoDir, 'data', fan))) {
      const path = join(repoDir, 'data', fan, name);
      const { size } = await stat(path);
      if (size > best.size) best = { path, size };
    }
  }
  return best.path;
}

/** Flip every bit of the byte in the middle of `file`. */
async function flipMiddleByte(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const at = Math.floor((await fh.stat()).size / 2);
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    await fh.write(byte, 0, 1, at);
  } finally {
    await fh.close();
  }
}

describe('restore from a damaged repository', () => {
  let dir: string;
  let t: TestRepo;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-corrupt-'));
    t = await openTestRepo(join(dir, 'repo'));
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fails loudly for the damaged file, names it, and restores the rest', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'big.bin'), randomBytes(4 * 1024 * 1024));
    await writeFile(join(src, 'small.txt'), 'small and intact');
    const { tree } = await backupFiles(
      t.repo,
      { paths: [src], include: [], exclude: [], oneFileSystem: false, xattrs: false },
      { logger: silentLogger },
    );
    await t.repo.flush();

    // The big file is nearly all of the largest data pack: flip a byte in its middle.
    await flipMiddleByte(await largestPack(join(dir, 'repo')));

    const target = join(dir, 'target');
    const result = await restoreTree(t.repo, tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    const rel = src.slice(1);
    expect(result.errors.map((e) => e.path)).toEqual([`${rel}/big.bin`]);
    expect(result.errors[0]!.message).toMatch(/damaged|authentic|integrity/i);
    expect(await readFile(join(target, src, 'small.txt'), 'utf8')).toBe('small and intact');
    expect(await readdir(join(target, src))).toEqual(['small.txt']);
    expect(await verifyRestoredTree(t.repo, tree, target)).toEqual([
      { path: `${rel}/big.bin`, kind: 'missing' },
    ]);
  });

  it('reports a damaged small file written by a worker the same way, and leaves nothing of it', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    // Nearly all of the data pack: a flipped byte in its middle lands in this file's record.
    await writeFile(join(src, 'a.bin'), randomBytes(60 * 1024));
    await writeFile(join(src, 'b.txt'), 'small and intact');
    const { tree } = await backupFiles(
      t.repo,
      { paths: [src], include: [], exclude: [], oneFileSystem: false, xattrs: false },
      { logger: silentLogger },
    );
    await t.repo.flush();
    expect(t.repo.smallFileWriter()).toBeDefined();
    await flipMiddleByte(await largestPack(join(dir, 'repo')));

    const target = join(dir, 'target');
    const result = await restoreTree(t.repo, tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    const rel = src.slice(1);
    expect(result.errors.map((e) => e.path)).toEqual([`${rel}/a.bin`]);
    expect(result.errors[0]!.message).toMatch(/blob [0-9a-f]{64} in pack .* failed authentication/);
    expect(await readdir(join(target, src))).toEqual(['b.txt']);
  });
});
