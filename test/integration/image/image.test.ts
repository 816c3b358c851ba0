/**
 * The image job end to end on real things: an ext4 filesystem in a sparse
 * image file on a loop device, the real repository engine on local storage,
 * restores to a new image file and to a loop device, checked with e2fsck and
 * a read-only mount. Needs root, loop devices and e2fsprogs; skips without
 * them, fails under LIFEBOAT_TEST_REQUIRE=all.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IntegrityError } from '../../../src/errors.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { run, runChecked } from '../../../src/platform/exec.js';
import { silentLogger } from '../../../src/platform/logger.js';
import type { SnapshotRecord } from '../../../src/repository/api.js';
import { initRepository, type Repository } from '../../../src/repository/repository.js';
import { LocalStorage } from '../../../src/storage/local.js';
import {
  backupImage,
  DEFAULT_IMAGE_BLOCK_SIZE,
  restoreImage,
  type ImageBackupResult,
} from '../../../src/sources/image/index.js';
import { LoopFixtures, describeWith, probeExt4 } from '../../helpers/loop.js';

const MiB = 1024 * 1024;
const IMAGE_SIZE = 256 * MiB;
const BS = DEFAULT_IMAGE_BLOCK_SIZE;
const facility = await probeExt4();
const fx = new LoopFixtures();
const repos: Repository[] = [];

let dir: string;
let image: string;
let loop: string;
let mnt: string;
let repoDir: string;
let repo: Repository;
/** What the filesystem in the image holds: relative path → SHA-256. */
const expected = new Map<string, string>();
const snapshots: Array<{ id: string; result: ImageBackupResult }> = [];

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function newRepo(name: string): Promise<{ repo: Repository; root: string }> {
  const root = join(dir, name);
  const storage = await LocalStorage.create(pathToFileURL(root).href);
  const r = await initRepository(storage, 'image test password', {
    clock: new FakeClock(Date.parse('2025-03-01T00:00:00Z')),
    host: 'image-test',
    kdf: { N: 1024, r: 8, p: 1 },
    compressionWorkers: 1,
  });
  repos.push(r);
  return { repo: r, root };
}

/** Bytes of all files under a directory (the repository on disk). */
async function diskBytes(root: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function sha256OfPrefix(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start: 0, end: size - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of each non-zero block of an image. */
async function dataBlockHashes(path: string): Promise<Map<string, number>> {
  const blocks = new Map<string, number>();
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(BS);
  const zero = Buffer.alloc(BS);
  try {
    for (let off = 0; ; off += BS) {
      const { bytesRead } = await fh.read(buf, 0, BS, off);
      if (bytesRead === 0) break;
      const block = buf.subarray(0, bytesRead);
      if (!block.equals(zero.subarray(0, bytesRead))) blocks.set(sha(block), bytesRead);
    }
  } finally {
    await fh.close();
  }
  return blocks;
}

async function writeRandomFile(rel: string, size: number): Promise<void> {
  const data = randomBytes(size);
  await mkdir(join(mnt, rel, '..'), { recursive: true });
  await writeFile(join(mnt, rel), data);
  expected.set(rel, sha(data));
}

/** Compare the files of a mounted filesystem with `expected`. */
async function expectFiles(mountPoint: string): Promise<void> {
  const found = new Map<string, string>();
  for (const entry of await readdir(mountPoint, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const abs = join(entry.parentPath, entry.name);
    const rel = abs.slice(mountPoint.length + 1);
    if (rel.startsWith('lost+found')) continue;
    found.set(rel, sha(await readFile(abs)));
  }
  expect(found).toEqual(expected);
}

function record(result: ImageBackupResult): SnapshotRecord {
  return {
    v: 1,
    job: 'disk',
    kind: 'image',
    host: 'image-test',
    startedAt: '2025-03-01T00:00:00.000Z',
    endedAt: '2025-03-01T00:01:00.000Z',
    tree: result.tree,
    paths: [image],
    tags: [],
    partial: result.warnings.length > 0,
    fingerprint: { ...result.fingerprint },
    stats: result.stats,
    toolVersion: 'test',
  };
}

async function fsckClean(target: string): Promise<void> {
  const r = await run(['e2fsck', '-fn', target]);
  expect(r.code, `e2fsck -fn ${target}: ${r.stdout}\n${r.stderr}`).toBe(0);
}

describeWith(facility, 'image job on ext4 in a loop device (real repository on local storage)', () => {
  beforeAll(async () => {
    dir = await fx.tempDir('lifeboat-image-it-');
    image = await fx.sparseFile(join(dir, 'source.img'), IMAGE_SIZE);
    await fx.mkfs(image, 'ext4');
    loop = await fx.attach(image);
    mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await fx.mount(loop, mnt);
    // ~40 MiB of incompressible files in a few directories, plus small text files.
    for (let i = 0; i < 20; i++) await writeRandomFile(`data/d${i % 4}/file-${i}.bin`, 2 * MiB + i * 4096);
    for (let i = 0; i < 50; i++) {
      const text = Buffer.from(`line ${i}\n`.repeat(200 + i));
      await writeFile(join(mnt, `notes-${i}.txt`), text);
      expected.set(`notes-${i}.txt`, sha(text));
    }
    await fx.unmount(mnt);
    ({ repo, root: repoDir } = await newRepo('repo'));
  });

  afterAll(async () => {
    for (const r of repos.splice(0)) await r.close().catch(() => undefined);
    const problems = await fx.disposeAll();
    expect(problems).toEqual([]);
  });

  it('refuses an image whose filesystem is mounted read-write (by file and by loop device) unless forced', async () => {
    const { repo: scratch } = await newRepo('refusals');
    await fx.mount(loop, mnt);
    try {
      for (const device of [image, loop]) {
        await expect(backupImage(scratch, { device }, { logger: silentLogger })).rejects.toMatchObject({
          code: 'E_IMAGE_SOURCE_MOUNTED',
          message: expect.stringMatching(/mounted read-write at .*mnt.*would be inconsistent/),
        });
      }
      const forced = await backupImage(scratch, { device: loop, force: true }, { logger: silentLogger });
      expect(forced.warnings.join()).toMatch(/forced/);
      // Read-only is consistent: allowed.
      await runChecked(['mount', '-o', 'remount,ro', mnt]);
      const ro = await backupImage(scratch, { device: image }, { logger: silentLogger });
      expect(ro.warnings).toEqual([]);
    } finally {
      await fx.unmount(mnt);
    }
  });

  it('backs up the image: data blocks stored, zero blocks recorded, SHA-256 of the whole image', async () => {
    const before = await diskBytes(repoDir);
    const result = await backupImage(repo, { device: image }, { logger: silentLogger });
    snapshots.push({ id: await repo.saveSnapshot(record(result)), result });
    const { fingerprint, stats } = result;
    expect(fingerprint.sha256).toBe(await sha256OfPrefix(image, IMAGE_SIZE));
    expect(fingerprint.size).toBe(IMAGE_SIZE);
    expect(fingerprint.zeroBlocks + fingerprint.storedBlocks).toBe(IMAGE_SIZE / BS);
    const dataBlocks = await dataBlockHashes(image);
    expect(stats.addedBytes).toBe([...dataBlocks.values()].reduce((a, b) => a + b, 0));
    expect(fingerprint.zeroBlocks).toBeGreaterThan(IMAGE_SIZE / BS / 2);
    const grown = (await diskBytes(repoDir)) - before;
    expect(grown).toBeGreaterThan(40 * MiB);
    expect(grown).toBeLessThan(stats.addedBytes + 4 * MiB);
  });

  it('second backup after changing a few files stores about the changed blocks, not the image', async () => {
    const v1 = await dataBlockHashes(image);
    await fx.mount(loop, mnt);
    // ~1 % of the data: rewrite part of one file, replace another.
    const fh = await open(join(mnt, 'data/d1/file-5.bin'), 'r+');
    const patch = randomBytes(256 * 1024);
    await fh.write(patch, 0, patch.length, 512 * 1024);
    await fh.close();
    expected.set('data/d1/file-5.bin', sha(await readFile(join(mnt, 'data/d1/file-5.bin'))));
    await writeRandomFile('data/d2/file-10.bin', 2 * MiB);
    await fx.unmount(mnt);

    // Independently: the bytes of blocks that are new compared with the first image.
    let changedBytes = 0;
    for (const [hash, length] of await dataBlockHashes(image)) if (!v1.has(hash)) changedBytes += length;

    const before = await diskBytes(repoDir);
    const result = await backupImage(repo, { device: image }, { logger: silentLogger });
    snapshots.push({ id: await repo.saveSnapshot(record(result)), result });
    const grown = (await diskBytes(repoDir)) - before;
    const first = snapshots[0]!.result;

    expect(result.stats.addedBytes).toBe(changedBytes);
    expect(changedBytes).toBeLessThanOrEqual(12 * BS);
    expect(result.stats.addedBytes).toBeLessThan(first.stats.addedBytes / 3);
    expect(grown).toBeLessThan(result.stats.addedBytes + 2 * MiB);
    expect(result.fingerprint.sha256).toBe(await sha256OfPrefix(image, IMAGE_SIZE));
  });

  it('restores to a new sparse image file that fscks clean and mounts with equal files', async () => {
    const { result } = snapshots[1]!;
    const target = join(dir, 'restored.img');
    const restored = await restoreImage(repo, result.tree, target);
    expect(restored).toMatchObject({ kind: 'file', size: IMAGE_SIZE, sha256: result.fingerprint.sha256 });
    const st = await stat(target);
    expect(st.size).toBe(IMAGE_SIZE);
    expect(st.blocks * 512).toBeLessThan(IMAGE_SIZE / 2);
    expect(await sha256OfPrefix(target, IMAGE_SIZE)).toBe(result.fingerprint.sha256);
    await fsckClean(target);

    const dev = await fx.attach(target);
    const view = join(dir, 'view-file');
    await mkdir(view);
    await fx.mount(dev, view, ['ro']);
    try {
      await expectFiles(view);
    } finally {
      await fx.unmount(view);
      await fx.detach(dev);
    }
  });

  it('restores onto a loop device holding old data: zero blocks are written, fsck clean, equal files', async () => {
    const { result } = snapshots[1]!;
    const devImage = await fx.sparseFile(join(dir, 'target-dev.img'), IMAGE_SIZE + 32 * MiB);
    // Old data everywhere the image has zeros would show through if zeros were skipped.
    const fh = await open(devImage, 'r+');
    const junk = Buffer.alloc(8 * MiB, 0xab);
    for (let off = 0; off < IMAGE_SIZE + 32 * MiB; off += 24 * MiB) await fh.write(junk, 0, junk.length, off);
    await fh.close();
    const dev = await fx.attach(devImage);

    await expect(restoreImage(repo, result.tree, dev)).rejects.toMatchObject({
      code: 'E_RESTORE_TARGET_IS_DEVICE',
    });
    const restored = await restoreImage(repo, result.tree, dev, { toDevice: true });
    expect(restored).toMatchObject({ kind: 'blockdev', size: IMAGE_SIZE, sha256: result.fingerprint.sha256 });
    expect(await sha256OfPrefix(dev, IMAGE_SIZE)).toBe(result.fingerprint.sha256);
    await fsckClean(dev);

    const view = join(dir, 'view-dev');
    await mkdir(view);
    await fx.mount(dev, view, ['ro']);
    try {
      await expectFiles(view);
      // A mounted target is refused, read-only or not.
      await expect(restoreImage(repo, result.tree, dev, { toDevice: true })).rejects.toMatchObject({
        code: 'E_RESTORE_TARGET_MOUNTED',
      });
    } finally {
      await fx.unmount(view);
      await fx.detach(dev);
    }
  });

  it('refuses a target device smaller than the image', async () => {
    const { result } = snapshots[1]!;
    const small = await fx.attach(await fx.sparseFile(join(dir, 'small.img'), 64 * MiB));
    try {
      await expect(restoreImage(repo, result.tree, small, { toDevice: true })).rejects.toMatchObject({
        code: 'E_RESTORE_TARGET_TOO_SMALL',
        message: expect.stringContaining(`the image needs ${IMAGE_SIZE}`),
      });
    } finally {
      await fx.detach(small);
    }
  });

  it('fails clearly when a pack holding image blocks is missing, leaving no target behind', async () => {
    const { result } = snapshots[0]!;
    const { repo: damaged, root } = await newRepo('damaged');
    const copy = await backupImage(damaged, { device: image }, { logger: silentLogger });
    await damaged.flush();
    const packs: Array<{ path: string; size: number }> = [];
    for (const e of await readdir(join(root, 'data'), { recursive: true, withFileTypes: true })) {
      if (e.isFile())
        packs.push({ path: join(e.parentPath, e.name), size: (await stat(join(e.parentPath, e.name))).size });
    }
    // The largest pack holds image blocks (the tree is tiny and lives in a pack of its own).
    packs.sort((a, b) => b.size - a.size);
    expect(packs[0]!.size).toBeGreaterThan(MiB);
    await unlink(packs[0]!.path);
    const target = join(dir, 'from-damaged.img');
    const failure = await restoreImage(damaged, copy.tree, target).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(IntegrityError);
    expect(String((failure as Error).message)).toMatch(/data block #\d+ cannot be read: pack .* is missing/);
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
    await expect(stat(`${target}.partial`)).rejects.toThrow(/ENOENT/);
    expect(copy.fingerprint.sha256).not.toBe(result.fingerprint.sha256);
    await rm(root, { recursive: true, force: true });
  });
});
