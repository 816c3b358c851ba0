/**
 * The image job on plain image files with the in-memory test double of the
 * repository (no root needed): block layout, zero runs, dedup, sparse
 * restore, verification and every refusal that does not need a device.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntegrityError, InterruptedError, UsageError } from '../../../../src/errors.js';
import { silentLogger } from '../../../../src/platform/logger.js';
import { backupImage, restoreImage, type ImageProgress } from '../../../../src/sources/image/index.js';
import { ImageRefusedError } from '../../../../src/sources/image/imageErrors.js';
import type { Tree } from '../../../../src/repository/tree.js';
import { FakeRepo } from '../../../helpers/fakeRepo.js';

const KiB = 1024;
const BS = 64 * KiB;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-image-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An image file: `layout` lists per block 'z' (zeros), 'r' (random) or a fill byte. */
async function makeImage(
  name: string,
  layout: Array<'z' | 'r' | number>,
  tail = 0,
): Promise<{ path: string; data: Buffer }> {
  const parts = layout.map((b) =>
    b === 'z' ? Buffer.alloc(BS) : b === 'r' ? randomBytes(BS) : Buffer.alloc(BS, b),
  );
  if (tail > 0) parts.push(randomBytes(tail));
  const data = Buffer.concat(parts);
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, data };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const opts = { logger: silentLogger };

describe('backupImage', () => {
  it('stores data blocks, records zero runs merged, and hashes the whole image', async () => {
    const { path, data } = await makeImage('disk.img', ['r', 'z', 'z', 7, 'z', 'r'], 1000);
    const repo = new FakeRepo();
    const progress: ImageProgress[] = [];
    const result = await backupImage(
      repo,
      { device: path, blockSize: BS },
      { ...opts, onProgress: (p) => progress.push(p) },
    );

    expect(result.fingerprint).toEqual({
      sha256: sha(data),
      size: data.length,
      blockSize: BS,
      zeroBlocks: 3,
      storedBlocks: 4,
      sourceType: 'file',
    });
    const content = result.node.content!;
    expect(content).toHaveLength(6);
    expect(content[1]).toEqual({ zero: 2 * BS });
    expect(content[3]).toEqual({ zero: BS });
    expect(typeof content[5]).toBe('string');
    expect(result.node).toMatchObject({
      name: 'disk.img',
      type: 'file',
      size: data.length,
      sha256: sha(data),
    });
    expect(result.stats).toMatchObject({
      files: 1,
      dirs: 0,
      bytes: data.length,
      blobs: 4,
      addedBytes: 3 * BS + 1000,
    });
    expect(progress.at(-1)).toMatchObject({ files: 1, bytes: data.length, totalBytes: data.length });

    const tree = await repo.loadTree(result.tree);
    expect(tree.nodes).toEqual([result.node]);
  });

  it('stores nothing new for an unchanged image and only the changed block after a small change', async () => {
    const { path, data } = await makeImage('disk.img', ['r', 'r', 'z', 'r', 'r', 'r']);
    const repo = new FakeRepo();
    const first = await backupImage(repo, { device: path, blockSize: BS }, opts);
    const again = await backupImage(repo, { device: path, blockSize: BS }, opts);
    expect(again.stats.addedBytes).toBe(0);
    expect(again.tree).toBe(first.tree);

    data.write('changed', 4 * BS + 100);
    await writeFile(path, data);
    const third = await backupImage(repo, { device: path, blockSize: BS }, opts);
    expect(third.stats.blobs).toBe(1);
    expect(third.stats.addedBytes).toBe(BS);
  });

  it('gives a sparse image file the same snapshot as the same bytes written out, with or without its extent map', async () => {
    const layout: Array<'z' | 'r'> = ['r', 'z', 'z', 'z', 'r', 'z', 'z', 'r'];
    const { path: densePath, data } = await makeImage('dense.img', layout, 1000);
    const sparsePath = join(dir, 'sparse.img');
    const fh = await open(sparsePath, 'w');
    await fh.truncate(data.length);
    for (let i = 0; i < layout.length; i++) {
      if (layout[i] === 'r') await fh.write(data, i * BS, BS, i * BS);
    }
    await fh.write(data, layout.length * BS, 1000, layout.length * BS);
    await fh.close();
    expect((await stat(sparsePath)).blocks * 512).toBeLessThan(data.length);

    const dense = await backupImage(new FakeRepo(), { device: densePath, blockSize: BS }, opts);
    const sparse = await backupImage(new FakeRepo(), { device: sparsePath, blockSize: BS }, opts);
    const noMap = await backupImage(
      new FakeRepo(),
      { device: sparsePath, blockSize: BS },
      { ...opts, env: { PATH: join(dir, 'no-filefrag-here') } },
    );
    for (const r of [sparse, noMap]) {
      expect(r.fingerprint).toEqual({ ...dense.fingerprint, sourceType: 'file' });
      expect(r.node.content).toEqual(dense.node.content);
    }
    expect(dense.fingerprint.sha256).toBe(sha(data));
  });

  it('keeps saves bounded by the concurrency option', async () => {
    const { path } = await makeImage(
      'disk.img',
      Array.from({ length: 24 }, () => 'r' as const),
    );
    const repo = new FakeRepo({ saveDelayMs: 3 });
    await backupImage(repo, { device: path, blockSize: BS }, { ...opts, concurrency: 3 });
    expect(repo.maxInFlight).toBeGreaterThan(1);
    expect(repo.maxInFlight).toBeLessThanOrEqual(3);
  });

  it('handles an empty image', async () => {
    const { path } = await makeImage('empty.img', []);
    const repo = new FakeRepo();
    const result = await backupImage(repo, { device: path, blockSize: BS }, opts);
    expect(result.fingerprint).toMatchObject({
      size: 0,
      zeroBlocks: 0,
      storedBlocks: 0,
      sha256: sha(Buffer.alloc(0)),
    });
    const target = join(dir, 'out.img');
    await restoreImage(repo, result.tree, target);
    expect((await stat(target)).size).toBe(0);
  });

  it('rejects unusable block sizes and sources that are not files or devices', async () => {
    const { path } = await makeImage('disk.img', ['r']);
    const repo = new FakeRepo();
    await expect(backupImage(repo, { device: path, blockSize: 1000 }, opts)).rejects.toBeInstanceOf(
      UsageError,
    );
    await expect(backupImage(repo, { device: dir, blockSize: BS }, opts)).rejects.toThrow(
      /neither a block device nor a regular file/,
    );
    await expect(backupImage(repo, { device: join(dir, 'nope'), blockSize: BS }, opts)).rejects.toMatchObject(
      {
        code: 'E_IMAGE_SOURCE_MISSING',
      },
    );
  });

  it('stops when aborted', async () => {
    const { path } = await makeImage('disk.img', ['r', 'r', 'r']);
    const ac = new AbortController();
    ac.abort(new InterruptedError('SIGINT'));
    await expect(
      backupImage(new FakeRepo(), { device: path, blockSize: BS }, { ...opts, signal: ac.signal }),
    ).rejects.toBeInstanceOf(InterruptedError);
  });
});

describe('restoreImage to a file', () => {
  it('restores a sparse, identical file and leaves no .partial behind', async () => {
    const blocks: Array<'z' | 'r'> = Array.from({ length: 64 }, (_, i) => (i % 16 === 0 ? 'r' : 'z'));
    const { path, data } = await makeImage('disk.img', blocks, 123);
    const repo = new FakeRepo();
    const { tree } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    const target = join(dir, 'restored.img');
    const result = await restoreImage(repo, tree, target);
    expect(result).toMatchObject({
      kind: 'file',
      size: data.length,
      sha256: sha(data),
      bytesWritten: 4 * BS + 123,
    });
    const restored = await readFile(target);
    expect(restored.equals(data)).toBe(true);
    const st = await stat(target);
    expect(st.mode & 0o777).toBe(0o600);
    // Holes: allocated space is far below the logical size (4 data blocks of 64).
    expect(st.blocks * 512).toBeLessThan(data.length / 4);
    expect(await readdir(dir)).toEqual(['disk.img', 'restored.img']);
  });

  it('refuses an existing target unless forced', async () => {
    const { path, data } = await makeImage('disk.img', ['r', 'z']);
    const repo = new FakeRepo();
    const { tree } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    const target = join(dir, 'existing.img');
    await writeFile(target, 'precious');
    await expect(restoreImage(repo, tree, target)).rejects.toMatchObject({ code: 'E_RESTORE_TARGET_EXISTS' });
    expect(await readFile(target, 'utf8')).toBe('precious');
    await restoreImage(repo, tree, target, { force: true });
    expect((await readFile(target)).equals(data)).toBe(true);
  });

  it('refuses --to-device for a file target', async () => {
    const { path } = await makeImage('disk.img', ['r']);
    const repo = new FakeRepo();
    const { tree } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    await expect(restoreImage(repo, tree, join(dir, 'x.img'), { toDevice: true })).rejects.toBeInstanceOf(
      ImageRefusedError,
    );
  });

  it('fails clearly before writing anything when a block is missing from the repository', async () => {
    const { path } = await makeImage('disk.img', ['r', 'r', 'r']);
    const repo = new FakeRepo();
    const { tree, node } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    repo.forget(node.content![1] as string);
    const target = join(dir, 'restored.img');
    await expect(restoreImage(repo, tree, target)).rejects.toThrow(/incomplete: data block #1 .* missing/);
    await expect(restoreImage(repo, tree, target)).rejects.toBeInstanceOf(IntegrityError);
    expect(await readdir(dir)).toEqual(['disk.img']);
  });

  it('fails on a corrupted block and on a truncated or wrongly hashed image, leaving no target', async () => {
    const { path } = await makeImage('disk.img', ['r', 'r', 'r']);
    const repo = new FakeRepo();
    const { tree, node } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    const target = join(dir, 'restored.img');

    const corrupt = new FakeRepo();
    for (const [id, blob] of repo.blobs) corrupt.blobs.set(id, { ...blob, data: Buffer.from(blob.data) });
    corrupt.corrupt(node.content![2] as string);
    await expect(restoreImage(corrupt, tree, target)).rejects.toThrow(/data block #2 cannot be read/);

    // A tree whose content lost its last block: the recorded size cannot be reached.
    const truncated: Tree = { nodes: [{ ...node, content: node.content!.slice(0, 2) }] };
    await expect(restoreImage(repo, await repo.saveTree(truncated), target)).rejects.toThrow(
      /truncated: its blocks hold/,
    );

    const wrongSha: Tree = { nodes: [{ ...node, sha256: '0'.repeat(64) }] };
    await expect(restoreImage(repo, await repo.saveTree(wrongSha), target)).rejects.toThrow(
      /SHA-256 .* recorded/,
    );

    const notImage: Tree = {
      nodes: [
        { ...node, name: 'a' },
        { ...node, name: 'b' },
      ],
    };
    await expect(restoreImage(repo, await repo.saveTree(notImage), target)).rejects.toThrow(
      /does not hold a disk image/,
    );

    expect(await readdir(dir)).toEqual(['disk.img']);
  });

  it('replaces a stale .partial from an interrupted restore', async () => {
    const { path, data } = await makeImage('disk.img', ['r']);
    const repo = new FakeRepo();
    const { tree } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    const target = join(dir, 'restored.img');
    await writeFile(`${target}.partial`, 'left over');
    await restoreImage(repo, tree, target);
    expect((await readFile(target)).equals(data)).toBe(true);
    expect(await readdir(dir)).toEqual(['disk.img', 'restored.img']);
  });

  it('reports a source that changed while it was read', async () => {
    const { path } = await makeImage(
      'disk.img',
      Array.from({ length: 16 }, () => 'r' as const),
    );
    const repo = new FakeRepo({ saveDelayMs: 2 });
    let touched = false;
    const result = await backupImage(
      repo,
      { device: path, blockSize: BS },
      {
        ...opts,
        concurrency: 1,
        onProgress: (p) => {
          if (!touched && p.bytes >= 4 * BS) {
            touched = true;
            void open(path, 'r+').then(async (fh) => {
              await fh.write(Buffer.from('x'), 0, 1, 10 * BS);
              await fh.close();
            });
          }
        },
      },
    );
    expect(result.warnings.join()).toMatch(/changed while it was read/);
  });

  it('restores into a directory that exists only when it exists', async () => {
    const { path } = await makeImage('disk.img', ['r']);
    const repo = new FakeRepo();
    const { tree } = await backupImage(repo, { device: path, blockSize: BS }, opts);
    await expect(restoreImage(repo, tree, join(dir, 'no', 'such', 'dir.img'))).rejects.toThrow(/ENOENT/);
    await mkdir(join(dir, 'sub'));
    await restoreImage(repo, tree, join(dir, 'sub', 'ok.img'));
  });
});
