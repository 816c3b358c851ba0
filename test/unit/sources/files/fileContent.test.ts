/**
 * storeFileContent on real files and the real repository engine (memory
 * storage): the large-file path (shared read slabs, zero runs by length,
 * hash of the data chunks on a worker) must give exactly the refs of the
 * plain path and of chunking the file's bytes in one piece, and the digest
 * of the data chunks (contentDigest.ts) computed from that chunking.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { appendFile, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Chunker } from '../../../../src/repository/api.js';
import { initRepository, type Repository } from '../../../../src/repository/repository.js';
import type { ContentRef } from '../../../../src/repository/tree.js';
import { MemoryStorage } from '../../../../src/storage/memory.js';
import { Semaphore } from '../../../../src/sources/files/semaphore.js';
import {
  SMALL_FILE,
  storeFileContent,
  storeSmallFile,
  SYNC_READ_MAX,
} from '../../../../src/sources/files/fileContent.js';
import { HoleMap, sparseDataRanges, SPARSE_MIN_HOLES } from '../../../../src/sources/files/holes.js';
import { isAllZero, pushZero } from '../../../../src/sources/files/zeroRuns.js';
import { pseudoRandom, testOptions, textLike } from '../../repository/helpers.js';

const MiB = 1024 * 1024;
let dir: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-filecontent-'));
  repo = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

/** Write `parts` at their offsets into a file of `size` bytes; the gaps stay holes. */
async function sparseFile(name: string, size: number, parts: [number, Buffer][]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, size);
  const fh = await open(path, 'r+');
  for (const [at, bytes] of parts) await fh.write(bytes, 0, bytes.length, at);
  await fh.close();
  return path;
}

async function store(path: string, chunker: Chunker) {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    return await storeFileContent(repo, fh, size, { chunker, blobSlots: new Semaphore(8) });
  } finally {
    await fh.close();
  }
}

/** The refs computed independently: the whole file chunked in one piece, IDs on the calling thread. */
async function expectedRefs(bytes: Buffer): Promise<ContentRef[]> {
  const refs: ContentRef[] = [];
  for await (const chunk of repo.chunker().chunks(
    (async function* () {
      yield bytes;
    })(),
  )) {
    if (isAllZero(chunk)) pushZero(refs, chunk.length);
    else refs.push(repo.blobId(chunk));
  }
  return refs;
}

/** SHA-256 of the whole content, for the plain and small-file paths. */
const wholeDigest = (bytes: Buffer) => ({
  hex: createHash('sha256').update(bytes).digest('hex'),
  dataOnly: false,
});

/**
 * The digest the large-file path must record, computed independently: the
 * SHA-256 of the chunks that are not all zeros (the file cut in one piece);
 * `dataOnly` when any chunk is all zeros (else it equals the whole-file hash).
 */
async function expectedLargeDigest(bytes: Buffer): Promise<{ hex: string; dataOnly: boolean }> {
  const hash = createHash('sha256');
  let dataOnly = false;
  for await (const chunk of repo.chunker().chunks(
    (async function* () {
      yield bytes;
    })(),
  )) {
    if (isAllZero(chunk)) dataOnly = true;
    else hash.update(chunk);
  }
  return { hex: hash.digest('hex'), dataOnly };
}

/** The repository's chunker without its fast path. */
const plainChunker = (): Chunker => {
  const c = repo.chunker();
  return { chunks: (input) => c.chunks(input) };
};

describe('storeFileContent of large files', () => {
  it('stores data, holes and zero stretches with the refs and hash of the plain path', async () => {
    const size = 19 * MiB + 12345;
    const path = await sparseFile('mixed', size, [
      [0, textLike(2 * MiB + 100, 'head')],
      [2 * MiB + 100, Buffer.alloc(150_000)], // zeros written as data, not block aligned
      [2 * MiB + 150_100, pseudoRandom(MiB, 'noise')],
      // 3.3 MiB to 15 MiB: a hole
      [15 * MiB + 5, textLike(300_000, 'island')],
      [16 * MiB, pseudoRandom(3 * MiB + 12345, 'tail')],
    ]);
    const bytes = await readAll(path);
    const fast = await store(path, repo.chunker());
    const plain = await store(path, plainChunker());
    const refs = await expectedRefs(bytes);
    expect(fast.content).toEqual(refs);
    expect(plain.content).toEqual(refs);
    expect(fast.digest).toEqual(await expectedLargeDigest(bytes));
    expect(fast.digest.dataOnly).toBe(true);
    expect(plain.digest).toEqual(wholeDigest(bytes));
    expect(fast.size).toBe(size);
    expect(fast.content.some((r) => typeof r !== 'string' && r.zero >= MiB)).toBe(true);
    // The first run stored every blob; the second found them all.
    expect(fast.newBlobs).toBe(new Set(refs.filter((r) => typeof r === 'string')).size);
    expect(plain.newBlobs).toBe(0);
    // And the stored blobs give the file back.
    await repo.flush();
    const back: Buffer[] = [];
    for (const r of fast.content)
      back.push(typeof r === 'string' ? Buffer.from(await repo.loadBlob(r)) : Buffer.alloc(r.zero));
    expect(Buffer.concat(back).equals(bytes)).toBe(true);
  });

  it('stores a file that is one hole as zero runs only, without blobs', async () => {
    const size = 9 * MiB + 1;
    const path = await sparseFile('hole', size, []);
    const fast = await store(path, repo.chunker());
    expect(fast.content).toEqual([{ zero: size }]);
    expect(fast.newBlobs).toBe(0);
    expect(repo.writeStats().blobs).toBe(0);
    // No data chunk at all: the digest of nothing.
    expect(fast.digest).toEqual({ hex: createHash('sha256').digest('hex'), dataOnly: true });
  });

  it('gives the same result when the file is just above the small-file limit', async () => {
    const path = await sparseFile('edge', SMALL_FILE, [[0, textLike(SMALL_FILE, 'edge')]]);
    const bytes = await readAll(path);
    const fast = await store(path, repo.chunker());
    expect(fast.content).toEqual(await expectedRefs(bytes));
    // No zero runs: the data chunks are the whole content.
    expect(fast.digest).toEqual(wholeDigest(bytes));
  });
});

/** filefrag (e2fsprogs) maps holes; without it a sparse file is read in full (covered above). */
const hasFilefrag = (() => {
  try {
    execFileSync('filefrag', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('storeFileContent of a changed large file (chunks as parts, copied only when new)', () => {
  it('stores only the changed chunks, and they read back as the file', async () => {
    const size = 14 * MiB + 999;
    const original = textLike(size, 'before');
    const path = join(dir, 'changed');
    await writeFile(path, original);
    const first = await store(path, repo.chunker());
    // Two edits far apart: the chunks around them are new, the rest dedup (and are never copied).
    const edited = Buffer.from(original);
    pseudoRandom(5000, 'edit1').copy(edited, 3 * MiB);
    pseudoRandom(5000, 'edit2').copy(edited, 11 * MiB + 17);
    await writeFile(path, edited);
    const second = await store(path, repo.chunker());
    expect(second.content).toEqual(await expectedRefs(edited));
    // Hashed from the slabs while they are recycled: any slab reused too early would change it.
    expect(second.digest).toEqual(await expectedLargeDigest(edited));
    expect(second.newBlobs).toBeGreaterThanOrEqual(2);
    expect(second.newBlobs).toBeLessThan(first.newBlobs / 2);
    await repo.flush();
    const back: Buffer[] = [];
    for (const r of second.content)
      back.push(typeof r === 'string' ? Buffer.from(await repo.loadBlob(r)) : Buffer.alloc(r.zero));
    expect(Buffer.concat(back).equals(edited)).toBe(true);
  });

  it('gives the same refs through a repository without saveChunkParts (copying cutter)', async () => {
    const path = await sparseFile('plainrepo', 6 * MiB + 3, [[0, textLike(6 * MiB + 3, 'plainrepo')]]);
    const bytes = await readAll(path);
    const withoutParts = new Proxy(repo, {
      get: (target, key) => (key === 'saveChunkParts' ? undefined : Reflect.get(target, key, target)),
    });
    const fh = await open(path, 'r');
    try {
      const result = await storeFileContent(withoutParts, fh, bytes.length, {
        chunker: repo.chunker(),
        blobSlots: new Semaphore(8),
      });
      expect(result.content).toEqual(await expectedRefs(bytes));
    } finally {
      await fh.close();
    }
  });
});

describe('storeFileContent of sparse files (holes mapped, not read)', () => {
  it('HoleMap finds holes between, before and after data ranges', () => {
    const map = new HoleMap([
      [4096, 8192],
      [MiB, 2 * MiB],
    ]);
    expect(map.isHole(0, 4096)).toBe(true);
    expect(map.isHole(0, 4097)).toBe(false);
    expect(map.isHole(8192, MiB)).toBe(true);
    expect(map.isHole(MiB - 1, MiB + 1)).toBe(false);
    expect(map.isHole(2 * MiB, 3 * MiB)).toBe(true);
    expect(map.isHole(5000, 6000)).toBe(false); // asked out of order
    expect(new HoleMap([]).isHole(0, MiB)).toBe(true);
  });

  it('reads a file without enough holes in full (no map)', async () => {
    const path = await sparseFile('dense', 8 * MiB, [[0, pseudoRandom(8 * MiB, 'dense')]]);
    const fh = await open(path, 'r');
    try {
      expect(await sparseDataRanges(fh, 8 * MiB)).toBeUndefined();
    } finally {
      await fh.close();
    }
  });

  it.skipIf(!hasFilefrag)('skips the holes, with the refs and hash of reading every byte', async () => {
    const size = 3 * SPARSE_MIN_HOLES + 4321;
    const path = await sparseFile('image', size, [
      [0, textLike(MiB + 77, 'boot')],
      [20 * MiB + 4096, pseudoRandom(2 * MiB, 'middle')],
      [size - 5000, pseudoRandom(5000, 'end')],
    ]);
    const bytes = await readAll(path);
    const fh = await open(path, 'r');
    let read = 0;
    // Counts what is really read from the file.
    const counting = new Proxy(fh, {
      get(target, prop) {
        if (prop === 'read')
          return async (buf: Buffer, offset: number, length: number, position: number) => {
            const result = await target.read(buf, offset, length, position);
            read += result.bytesRead;
            return result;
          };
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    let fast;
    try {
      expect(await sparseDataRanges(fh, size)).toBeDefined();
      fast = await storeFileContent(repo, counting, size, {
        chunker: repo.chunker(),
        blobSlots: new Semaphore(8),
      });
    } finally {
      await fh.close();
    }
    expect(fast.content).toEqual(await expectedRefs(bytes));
    expect(fast.digest).toEqual(await expectedLargeDigest(bytes));
    expect(fast.digest.dataOnly).toBe(true);
    expect(fast.size).toBe(size);
    expect(read).toBeLessThan(8 * MiB); // about 4 MiB of data in 1 MiB pieces, not the 48 MiB file
    expect(read).toBeGreaterThan(3 * MiB);
  });
});

describe('storeFileContent of a file that ends in a hole', () => {
  it.skipIf(!hasFilefrag)('gives the refs and hash of reading every byte', async () => {
    const size = 2 * SPARSE_MIN_HOLES + 12_345; // the last hole piece is short and ends the file
    const path = await sparseFile('trailing-hole', size, [[3 * MiB, pseudoRandom(MiB + 3, 'lone')]]);
    const bytes = await readAll(path);
    const got = await store(path, repo.chunker());
    expect(got.content).toEqual(await expectedRefs(bytes));
    expect(got.digest).toEqual(await expectedLargeDigest(bytes));
    expect(got.size).toBe(size);
  });
});

describe('storeSmallFile (one synchronous read into a shared scratch buffer)', () => {
  async function storeSmall(path: string, size: number, chunker: Chunker = repo.chunker()) {
    const fd = openSync(path, 'r');
    try {
      return await storeSmallFile(repo, fd, size, { chunker, blobSlots: new Semaphore(8) });
    } finally {
      closeSync(fd);
    }
  }

  it('gives the refs and hash of the plain path, also for many files at once', async () => {
    const files: [string, number, [number, Buffer][]][] = [
      ['empty', 0, []],
      ['one', 1, [[0, Buffer.from('x')]]],
      ['zeros', 70_000, []],
      [
        'mixed',
        SYNC_READ_MAX - 1,
        [
          [0, textLike(100_000, 'a')],
          [180_000, pseudoRandom(SYNC_READ_MAX - 180_001, 'b')],
        ],
      ],
      ['noise', 200_000, [[0, pseudoRandom(200_000, 'c')]]],
    ];
    const paths = await Promise.all(files.map(([name, size, parts]) => sparseFile(name, size, parts)));
    // All at once: each must finish with the scratch buffer before the next one reads into it.
    const small = await Promise.all(paths.map((path, i) => storeSmall(path, files[i]![1])));
    for (const [i, path] of paths.entries()) {
      const bytes = await readAll(path);
      const got = small[i]!;
      expect(got.content).toEqual(await expectedRefs(bytes));
      expect(got.digest).toEqual(wholeDigest(bytes));
      expect(got.size).toBe(bytes.length);
      const plain = await store(path, plainChunker());
      expect(plain.content).toEqual(got.content);
      const viaPlainChunker = await storeSmall(path, bytes.length, plainChunker());
      expect(viaPlainChunker.content).toEqual(got.content);
      expect(viaPlainChunker.digest).toEqual(got.digest);
    }
    expect(small[2]!.content).toEqual([{ zero: 70_000 }]);
    await repo.flush();
    const noise = small[4]!;
    const back: Buffer[] = [];
    for (const r of noise.content)
      back.push(typeof r === 'string' ? Buffer.from(await repo.loadBlob(r)) : Buffer.alloc(r.zero));
    expect(Buffer.concat(back).equals(await readAll(paths[4]!))).toBe(true);
  });

  it('reads one byte past the listed size, so a file that grew shows a different size', async () => {
    const path = await sparseFile('grew', 1000, [[0, textLike(1000, 'g')]]);
    await appendFile(path, 'more');
    const got = await storeSmall(path, 1000);
    expect(got.size).toBe(1001);
  });

  it('refuses a size that does not fit the scratch buffer', async () => {
    const path = await sparseFile('big', 10, []);
    await expect(storeSmall(path, SYNC_READ_MAX)).rejects.toThrow(RangeError);
  });
});

async function readAll(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
