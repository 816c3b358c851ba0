import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/platform/logger.js';
import {
  backupFiles,
  restoreTree,
  verifyRestoredTree,
  type FilesSpec,
} from '../../../../src/sources/files/index.js';
import { initRepository } from '../../../../src/repository/repository.js';
import { MemoryStorage } from '../../../../src/storage/memory.js';
import { FakeRepo } from '../../../helpers/fakeRepo.js';
import { pseudoRandom, testOptions } from '../../repository/helpers.js';

const spec = (paths: string[]): FilesSpec => ({
  paths,
  include: [],
  exclude: [],
  oneFileSystem: false,
  xattrs: false,
});

describe('restoreTree with damaged data', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-unit-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fails loudly for a corrupted chunk, naming the file, and restores the others', async () => {
    const src = join(dir, 'src');
    await import('node:fs/promises').then((fs) => fs.mkdir(src));
    const big = randomBytes(300 * 1024);
    await writeFile(join(src, 'damaged.bin'), big);
    await writeFile(join(src, 'fine.txt'), 'fine');
    const repo = new FakeRepo({ chunkSize: 64 * 1024 });
    const { tree } = await backupFiles(repo, spec([src]), { logger: silentLogger });
    // Damage the third chunk of damaged.bin.
    repo.corrupt(repo.blobId(big.subarray(2 * 64 * 1024, 3 * 64 * 1024)));

    const logged: string[] = [];
    const target = join(dir, 'target');
    const result = await restoreTree(repo, tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: { ...silentLogger, error: (m) => void logged.push(m) },
    });
    const rel = `${src.slice(1)}/damaged.bin`;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.path).toBe(rel);
    expect(result.errors[0]!.message).toMatch(/does not match/);
    expect(logged.join()).toContain(rel);
    expect(result.files).toBe(1);
    expect(await readFile(join(target, src, 'fine.txt'), 'utf8')).toBe('fine');
    // No half-written file is left looking restored.
    expect(await readdir(join(target, src))).toEqual(['fine.txt']);
    const mismatches = await verifyRestoredTree(repo, tree, target);
    expect(mismatches).toEqual([{ path: rel, kind: 'missing' }]);
  });

  it('verify reports content, size, type, symlink and extra differences', async () => {
    const src = join(dir, 'src');
    const fs = await import('node:fs/promises');
    await fs.mkdir(src);
    await writeFile(join(src, 'same-size'), 'abcd');
    await writeFile(join(src, 'grows'), 'abcd');
    await writeFile(join(src, 'becomes-dir'), 'x');
    await fs.symlink('target-a', join(src, 'link'));
    const repo = new FakeRepo();
    const { tree } = await backupFiles(repo, spec([src]), { logger: silentLogger });
    const target = join(dir, 'target');
    await restoreTree(repo, tree, target, { overwrite: 'never', dryRun: false, logger: silentLogger });
    const out = join(target, src);
    await writeFile(join(out, 'same-size'), 'abce');
    await writeFile(join(out, 'grows'), 'abcdef');
    await fs.rm(join(out, 'becomes-dir'));
    await fs.mkdir(join(out, 'becomes-dir'));
    await fs.rm(join(out, 'link'));
    await fs.symlink('target-b', join(out, 'link'));
    await writeFile(join(out, 'extra'), 'x');
    const rel = src.slice(1);
    const found = await verifyRestoredTree(repo, tree, target);
    expect(found.map((m) => `${m.kind}:${m.path}`).sort()).toEqual(
      [
        `content:${rel}/same-size`,
        `size:${rel}/grows`,
        `type:${rel}/becomes-dir`,
        `symlink-target:${rel}/link`,
        `extra:${rel}/extra`,
      ].sort(),
    );
  });
});

describe('restoreTree with malformed nodes the repository did not reject', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-malformed-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses nodes without a known type or with a bad time, restoring the rest', async () => {
    const repo = new FakeRepo();
    const { id } = await repo.saveBlob('data', Buffer.from('ok'));
    const good = {
      name: 'good',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtimeNs: '0',
      size: 2,
      content: [id],
    };
    const tree = await repo.saveTree({
      nodes: [
        { ...good, name: 'no-type', type: undefined },
        { ...good, name: 'weird-type', type: 'door' },
        { ...good, name: 'bad-time', mtimeNs: 'yesterday' },
        { ...good, name: 'no-target', type: 'symlink' },
        good,
      ] as never,
    });
    const target = join(dir, 'target');
    const result = await restoreTree(repo, tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    expect(result.errors.map((e) => e.path).sort()).toEqual([
      'bad-time',
      'no-target',
      'no-type',
      'weird-type',
    ]);
    expect(await readdir(target)).toEqual(['good']);
  });
});

describe('restoreTree interruption and progress', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-abort-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports progress and stops with an InterruptedError when aborted', async () => {
    const src = join(dir, 'src');
    await import('node:fs/promises').then((fs) => fs.mkdir(src));
    for (let i = 0; i < 10; i++) await writeFile(join(src, `f${i}`), randomBytes(1000));
    const repo = new FakeRepo();
    const progress: number[] = [];
    const { tree } = await backupFiles(repo, spec([src]), {
      logger: silentLogger,
      onProgress: (p) => void progress.push(p.files),
    });
    expect(progress.at(-1)).toBe(10);

    const restoredProgress: number[] = [];
    const ok = await restoreTree(repo, tree, join(dir, 'ok'), {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
      onProgress: (p) => void restoredProgress.push(p.files),
    });
    expect(ok.files).toBe(10);
    expect(restoredProgress.at(-1)).toBe(10);

    const controller = new AbortController();
    controller.abort();
    await expect(
      restoreTree(repo, tree, join(dir, 'aborted'), {
        overwrite: 'never',
        dryRun: false,
        logger: silentLogger,
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
  });
});

describe('restoreTree of a sparse file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-sparse-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves the holes as holes and restores the same bytes (hashed on a worker, never read back)', async () => {
    const MiB = 1024 * 1024;
    const src = join(dir, 'src');
    await mkdir(src);
    const image = join(src, 'disk.img');
    await writeFile(image, '');
    await truncate(image, 64 * MiB);
    const fh = await open(image, 'r+');
    const block = pseudoRandom(MiB, 'block');
    // The same block three times: the restore writes it to every place when it arrives.
    for (const at of [0, 20 * MiB + 4096, 63 * MiB]) await fh.write(block, 0, MiB, at);
    await fh.write(pseudoRandom(MiB / 2, 'other'), 0, MiB / 2, 40 * MiB);
    await fh.close();
    const repo = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
    try {
      const { tree } = await backupFiles(repo, spec([src]), { logger: silentLogger });
      await repo.flush();
      const target = join(dir, 'target');
      const result = await restoreTree(repo, tree, target, {
        overwrite: 'never',
        dryRun: false,
        logger: silentLogger,
      });
      expect(result.errors).toEqual([]);
      const restored = join(target, image);
      expect((await readFile(restored)).equals(await readFile(image))).toBe(true);
      const [before, after] = [await stat(image), await stat(restored)];
      expect(after.size).toBe(before.size);
      // 3.5 MiB of data in a 64 MiB file: only the data (and what shares a chunk with it) takes blocks.
      expect(after.blocks * 512).toBeLessThan(before.blocks * 512 + 2 * MiB);
      expect(await verifyRestoredTree(repo, tree, target)).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});
