/**
 * SmallFileStore on real files and the real repository engine (memory
 * storage): the workers read, hash, identify and seal small files in batches;
 * each file's verdict must be what reading it on the calling thread gives.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initRepository, type Repository } from '../../../src/repository/repository.js';
import { SmallFileStore, type SmallFileStored } from '../../../src/repository/smallFiles.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { pseudoRandom, testOptions, textLike } from './helpers.js';

const FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
let dir: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-smallfiles-'));
  repo = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

function storeOf(r: Repository): SmallFileStore {
  const store = r.smallFileStore(FLAGS);
  if (!store) throw new Error('expected a small-file store');
  return store;
}

async function file(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function ok(result: SmallFileStored): Extract<SmallFileStored, { ok: true }> {
  if (!result.ok) throw new Error(`expected a read, got ${result.stage}: ${result.error.message}`);
  return result;
}

describe('SmallFileStore', () => {
  it('stores files of many batches with the IDs, hashes and status of a read here', async () => {
    const store = storeOf(repo);
    const contents = Array.from({ length: 150 }, (_, i) =>
      i % 3 === 0 ? pseudoRandom(1 + i * 997, `r${i}`) : textLike(1 + i * 1531, `t${i}`),
    );
    const paths = await Promise.all(contents.map((bytes, i) => file(`f${i}`, bytes)));
    const results = await Promise.all(paths.map((p, i) => store.store(Buffer.from(p), contents[i]!.length)));
    await repo.flush();
    for (const [i, result] of results.entries()) {
      const read = ok(result);
      const bytes = contents[i]!;
      expect(read.size).toBe(bytes.length);
      expect(read.sha256).toBe(sha(bytes));
      expect(read.content).toEqual([repo.blobId(bytes)]);
      expect(read.stored).toBe(true);
      expect(read.stat.ino).toBe((await stat(paths[i]!, { bigint: true })).ino);
      expect(Buffer.from(await repo.loadBlob(repo.blobId(bytes))).equals(bytes)).toBe(true);
    }
    expect(repo.writeStats().blobs).toBe(150);
  });

  it('stores equal content once, and nothing for empty or all-zero files', async () => {
    const store = storeOf(repo);
    const same = textLike(5000, 'same');
    const [a, b, empty, zeros] = await Promise.all([
      file('a', same),
      file('b', same),
      file('empty', Buffer.alloc(0)),
      file('zeros', Buffer.alloc(70_000)),
    ]);
    const [ra, rb, re, rz] = await Promise.all([
      store.store(Buffer.from(a), 5000),
      store.store(Buffer.from(b), 5000),
      store.store(Buffer.from(empty), 0),
      store.store(Buffer.from(zeros), 70_000),
    ]);
    expect([ok(ra).stored, ok(rb).stored]).toEqual([true, false]);
    expect(ok(rb).content).toEqual([repo.blobId(same)]);
    expect(ok(re).content).toEqual([]);
    expect(ok(re).sha256).toBe(sha(Buffer.alloc(0)));
    expect(ok(rz).content).toEqual([{ zero: 70_000 }]);
    expect(ok(rz).stored).toBe(false);
    expect(repo.writeStats().blobs).toBe(1);
    // A later batch finds the blob in the repository.
    const again = ok(await store.store(Buffer.from(a), 5000));
    expect(again.stored).toBe(false);
  });

  it('reads one byte past the listed size, so a file that grew shows it', async () => {
    const store = storeOf(repo);
    const path = await file('grew', textLike(9000, 'grew'));
    const read = ok(await store.store(Buffer.from(path), 4000));
    expect(read.size).toBe(4001);
    expect(read.stat.size).toBe(9000n);
  });

  it('reports the step that failed: a missing file, a symlink, a directory, a fifo', async () => {
    const store = storeOf(repo);
    await symlink('/etc/hostname', join(dir, 'link'));
    await mkdir(join(dir, 'sub'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const [missing, link, sub, fifo, good] = await Promise.all([
      store.store(Buffer.from(join(dir, 'missing')), 10),
      store.store(Buffer.from(join(dir, 'link')), 10),
      store.store(Buffer.from(join(dir, 'sub')), 10),
      store.store(Buffer.from(join(dir, 'fifo')), 10),
      store.store(Buffer.from(await file('good', textLike(100, 'good'))), 100),
    ]);
    const failed = (r: SmallFileStored) => (r.ok ? 'ok' : `${r.stage} ${r.error.code}`);
    expect(failed(missing)).toBe('open ENOENT');
    expect(failed(link)).toBe('open ELOOP');
    expect(failed(sub)).toBe('read EISDIR');
    // Opened without blocking (no writer); a positioned read of a pipe fails.
    expect(failed(fifo)).toBe('read ESPIPE');
    expect(ok(good).size).toBe(100);
  });

  it('refuses a size that is not small, and is not offered for a chunker that could cut a small file', async () => {
    expect(() => storeOf(repo).store(Buffer.from('/x'), SmallFileStore.MAX_SIZE)).toThrow(RangeError);
    const fine = await initRepository(
      new MemoryStorage(),
      'pw',
      testOptions({ compressionWorkers: 1, chunker: { minSize: 4096, avgSize: 16384, maxSize: 65536 } }),
    );
    const inline = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 0 }));
    try {
      expect(fine.smallFileStore(FLAGS)).toBeUndefined();
      expect(inline.smallFileStore(FLAGS)).toBeUndefined();
    } finally {
      await fine.close();
      await inline.close();
    }
  });
});
