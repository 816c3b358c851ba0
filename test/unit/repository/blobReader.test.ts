import { afterEach, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/errors.js';
import { openStoredBlob, verifyStoredBlob, type StoredBlobRef } from '../../../src/repository/blobReader.js';
import {
  associatedData,
  computeBlobId,
  generateMasterKey,
  seal,
  type MasterKey,
} from '../../../src/repository/crypto.js';
import { INLINE_LIMIT, WorkerPool, zstdCompressSync } from '../../../src/repository/workerPool.js';
import { flipByte, pseudoRandom, textLike } from './helpers.js';

const master = generateMasterKey();
const pools: WorkerPool[] = [];
const pool = (workers: number, keys: Partial<MasterKey> = master) => {
  const p = new WorkerPool({
    level: 3,
    workers,
    ...(keys.encryption ? { sealKey: keys.encryption } : {}),
    ...(keys.blobId ? { blobIdKey: keys.blobId } : {}),
  });
  pools.push(p);
  return p;
};
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

/** A stored record of `plain` as the repository writes it, with the index entry that locates it. */
function storedBlob(
  plain: Buffer,
  opts: { compress?: boolean; id?: string; payload?: Buffer } = {},
): { record: Buffer; ref: StoredBlobRef } {
  const id = opts.id ?? computeBlobId(master.blobId, plain);
  const compress = opts.compress ?? true;
  const payload = opts.payload ?? (compress ? zstdCompressSync(plain, 3) : plain);
  const record = seal(master.encryption, payload, associatedData.blob('data', id));
  return {
    record,
    ref: {
      id,
      type: 'data',
      compression: compress ? 'zstd' : 'none',
      length: record.length,
      rawLength: plain.length,
    },
  };
}

/** A copy that owns its whole ArrayBuffer, so that open() may move it. */
const owned = (bytes: Buffer) => {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
};

const open = (p: WorkerPool, record: Buffer, ref: StoredBlobRef, take = false) =>
  openStoredBlob(master, p, record, ref, 'data/ab/abcd', 'file:///repo', take);
const verify = (p: WorkerPool, record: Buffer, ref: StoredBlobRef, take = false) =>
  verifyStoredBlob(master, p, record, ref, 'data/ab/abcd', 'file:///repo', take);

// Large blobs go through the worker threads (with workers > 0), small ones stay on the calling thread.
const SIZES = [1000, INLINE_LIMIT * 4, 3 * 1024 * 1024];

describe('openStoredBlob', () => {
  it.each([0, 1, 2])('opens compressed and stored blobs of every size (%i workers)', async (workers) => {
    const p = pool(workers);
    for (const size of SIZES) {
      for (const compress of [true, false]) {
        const plain = compress ? textLike(size, `t${size}`) : pseudoRandom(size, `r${size}`);
        const { record, ref } = storedBlob(plain, { compress });
        expect((await open(p, record, ref)).equals(plain)).toBe(true);
        expect((await open(p, owned(record), ref, true)).equals(plain)).toBe(true);
      }
    }
  });

  it('opens on a worker, moving a record it may take and copying one it may not', async () => {
    const p = pool(2);
    const plain = textLike(INLINE_LIMIT * 8, 'move');
    const { record, ref } = storedBlob(plain);
    const mine = owned(record);
    expect((await open(p, mine, ref, true)).equals(plain)).toBe(true);
    expect(mine.buffer.byteLength).toBe(0); // detached: it moved to the worker
    const kept = owned(record);
    expect((await open(p, kept, ref, false)).equals(plain)).toBe(true);
    expect(kept.equals(record)).toBe(true);
    // Many at once on two workers: every result is its own blob's.
    const blobs = Array.from({ length: 12 }, (_, i) => textLike(INLINE_LIMIT * (2 + i), `many${i}`));
    const opened = await Promise.all(
      blobs.map((b) => {
        const { record: r, ref: f } = storedBlob(b);
        return open(p, owned(r), f, true);
      }),
    );
    opened.forEach((o, i) => expect(o.equals(blobs[i]!)).toBe(true));
  });

  it.each([0, 2])('verifies without handing the plaintext back (%i workers)', async (workers) => {
    const p = pool(workers);
    // Large then small, right then wrong: a worker reuses one buffer for what it only verifies.
    const sizes = [3 * 1024 * 1024, INLINE_LIMIT * 4, 1000, 2 * 1024 * 1024, INLINE_LIMIT * 2];
    for (const size of sizes) {
      for (const compress of [true, false]) {
        const plain = compress ? textLike(size, `v${size}`) : pseudoRandom(size, `v${size}`);
        const { record, ref } = storedBlob(plain, { compress });
        await expect(verify(p, owned(record), ref, true)).resolves.toBeUndefined();
        const other = storedBlob(plain, { compress, id: 'dd'.repeat(32) });
        await expect(verify(p, other.record, other.ref)).rejects.toThrow(/does not match its ID$/);
      }
    }
  });

  it('opens on the calling thread with keys the workers do not hold', async () => {
    const p = pool(2, { encryption: master.encryption }); // no blob-ID key for the workers
    const plain = textLike(INLINE_LIMIT * 8, 'inline');
    const { record, ref } = storedBlob(plain);
    const mine = owned(record);
    expect((await open(p, mine, ref, true)).equals(plain)).toBe(true);
    expect(mine.equals(record)).toBe(true); // not moved
  });

  describe.each([0, 2])('names the failed check in an IntegrityError (%i workers)', (workers) => {
    const expectFailure = async (record: Buffer, ref: StoredBlobRef, pattern: RegExp) => {
      for (const [check, take] of [
        [open, false],
        [open, true],
        [verify, true],
      ] as const) {
        const err = await check(pool(workers), take ? owned(record) : record, ref, take).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(IntegrityError);
        expect((err as Error).message).toMatch(
          new RegExp(`^blob ${ref.id} in pack data/ab/abcd of file:///repo `),
        );
        expect((err as Error).message).toMatch(pattern);
        expect((err as IntegrityError).details).toEqual({ blob: ref.id, pack: 'data/ab/abcd' });
      }
    };

    it.each(SIZES)('a tampered record (%i bytes)', async (size) => {
      const { record, ref } = storedBlob(textLike(size, 'tamper'));
      flipByte(record, record.length >> 1);
      await expectFailure(record, ref, /failed authentication \(damaged or modified\)$/);
    });

    it.each(SIZES)('a record sealed for another ID (%i bytes)', async (size) => {
      const { record, ref } = storedBlob(textLike(size, 'aad'));
      await expectFailure(record, { ...ref, id: 'ff'.repeat(32) }, /failed authentication/);
    });

    it.each(SIZES)('an authentic blob whose content is not its ID (%i bytes)', async (size) => {
      const { record, ref } = storedBlob(textLike(size, 'wrong id'), { id: 'ee'.repeat(32) });
      await expectFailure(record, ref, /does not match its ID$/);
    });

    it.each(SIZES)('an authentic payload that is no zstd frame (%i bytes)', async (size) => {
      const plain = pseudoRandom(size, 'not zstd');
      const { record, ref } = storedBlob(plain, { compress: true, payload: plain });
      await expectFailure(record, ref, /does not decompress: \S/);
    });

    it.each(SIZES)(
      'a frame that decompresses to another length than the index says (%i bytes)',
      async (size) => {
        const { record, ref } = storedBlob(textLike(size, 'long'));
        await expectFailure(
          record,
          { ...ref, rawLength: size - 1 },
          new RegExp(`does not decompress: decompressed to ${size} bytes, expected ${size - 1}$`),
        );
      },
    );

    it.each(SIZES)('a stored blob of another length than the index says (%i bytes)', async (size) => {
      const { record, ref } = storedBlob(pseudoRandom(size, 'short'), { compress: false });
      await expectFailure(
        record,
        { ...ref, rawLength: size + 1 },
        new RegExp(`has ${size} bytes, the index says ${size + 1}$`),
      );
    });

    it('a truncated record', async () => {
      const { record, ref } = storedBlob(textLike(SIZES[2]!, 'cut'));
      await expectFailure(
        record.subarray(0, 100),
        ref,
        new RegExp(`is truncated \\(100 of ${record.length} bytes\\)$`),
      );
    });
  });
});
