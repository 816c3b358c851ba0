import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { associatedData, computeBlobId, unseal } from '../../../src/repository/crypto.js';
import {
  FAST_FIRST_LEVEL,
  WorkerPool,
  INLINE_LIMIT,
  zstdDecompressSync,
} from '../../../src/repository/workerPool.js';
import { pseudoRandom, textLike } from './helpers.js';

const pools: WorkerPool[] = [];
const KEY = randomBytes(32);
const pool = (workers: number) => {
  const p = new WorkerPool({ level: 3, workers, sealKey: KEY });
  pools.push(p);
  return p;
};
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

describe('WorkerPool', () => {
  it.each([0, 1, 2])('round-trips small and large blobs with %i worker threads', async (workers) => {
    const c = pool(workers);
    for (const data of [
      textLike(100, 's'),
      textLike(INLINE_LIMIT * 4, 'm'),
      textLike(3 * 1024 * 1024, 'l'),
    ]) {
      const original = Buffer.from(data);
      const { bytes, compressed } = await c.compress(data);
      expect(compressed).toBe(true);
      expect(bytes.length).toBeLessThan(original.length);
      expect((await c.decompress(bytes, original.length)).equals(original)).toBe(true);
    }
  });

  it('hands incompressible data back unchanged', async () => {
    const c = pool(1);
    const data = pseudoRandom(1024 * 1024, 'noise');
    const original = Buffer.from(data);
    const { bytes, compressed } = await c.compress(data);
    expect(compressed).toBe(false);
    expect(bytes.equals(original)).toBe(true);
  });

  it('runs many jobs in parallel on two workers and keeps results apart', async () => {
    const c = pool(2);
    const inputs = Array.from({ length: 24 }, (_, i) => textLike(256 * 1024 + i, `j${i}`));
    const copies = inputs.map((b) => Buffer.from(b));
    const results = await Promise.all(inputs.map((b) => c.compress(b)));
    const back = await Promise.all(results.map((r, i) => c.decompress(r.bytes, copies[i]!.length)));
    back.forEach((b, i) => expect(b.equals(copies[i]!)).toBe(true));
  });

  it('hashes packs with SHA-256 on a worker and hands the bytes back', async () => {
    const c = pool(1);
    for (const size of [1000, 3 * 1024 * 1024]) {
      const data = pseudoRandom(size, `h${size}`);
      const expected = createHash('sha256').update(data).digest('hex');
      const copy = Buffer.from(data);
      const result = await c.sha256(data);
      expect(result.hex).toBe(expected);
      expect(result.data.equals(copy)).toBe(true);
    }
  });

  it('fails clearly on a wrong length or a malformed frame', async () => {
    const c = pool(1);
    const { bytes } = await c.compress(textLike(100_000, 'x'));
    await expect(c.decompress(bytes, 99_999)).rejects.toThrow(/expected 99999/);
    await expect(c.decompress(Buffer.from('not zstd at all, definitely not'), 100_000)).rejects.toThrow();
  });

  it.each([0, 1, 2])(
    'seals blobs (%i workers) so that crypto.unseal opens them to the payload',
    async (workers) => {
      const c = pool(workers);
      const aad = associatedData.blob('data', 'ab'.repeat(32));
      for (const [data, shrinks] of [
        [textLike(100, 'tiny'), false],
        [textLike(3 * 1024 * 1024, 'text'), true],
        [pseudoRandom(1024 * 1024 + 3, 'noise'), false],
      ] as const) {
        const original = Buffer.from(data);
        const result = await c.seal(data, aad, false);
        const { compressed } = result;
        const sealed = Buffer.concat(result.sealed);
        expect(result.length).toBe(sealed.length);
        if (original.length > 1000) expect(compressed).toBe(shrinks);
        const payload = unseal(KEY, sealed, aad);
        expect(payload).toBeDefined();
        const plain = compressed ? await c.decompress(payload!, original.length) : payload!;
        expect(Buffer.from(plain).equals(original)).toBe(true);
        expect(unseal(KEY, sealed, associatedData.blob('tree', 'ab'.repeat(32)))).toBeUndefined();
        // Without take, the caller's buffer is left as it was.
        expect(Buffer.from(data).equals(original)).toBe(true);
      }
    },
  );

  it("seals a large blob at the zstd level it is asked for, else at the pool's", async () => {
    const c = pool(1);
    const data = textLike(1024 * 1024, 'levels');
    const sizes: Record<string, number> = {};
    for (const level of [1, undefined, 19]) {
      const result = await c.seal(data, 'aad', false, level);
      const payload = unseal(KEY, Buffer.concat(result.sealed), 'aad')!;
      expect((await c.decompress(payload, data.length)).equals(Buffer.from(data))).toBe(true);
      sizes[String(level)] = payload.length;
    }
    // The same frame as the pool's own level-3 compressor makes: the level reached the worker.
    expect(sizes['undefined']).toBe((await c.compress(data)).bytes.length);
    expect(sizes['1']).not.toBe(sizes['undefined']);
    expect(sizes['19']).toBeLessThan(sizes['undefined']!);
  });

  it('with fastFirst, keeps the fast level for text that compresses moderately and redoes compressible data', async () => {
    const c = pool(1);
    // Rows of random digits (what MySQL dumps of sysbench-like tables hold): ~2:1 at any level.
    let digits = '';
    let x = 12345;
    while (digits.length < 1024 * 1024) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      digits += `(${digits.length},'${String(x).padStart(11, '0')}-${String(x ^ 0x5bd1e995).padStart(11, '0')}'),\n`;
    }
    const text = Buffer.from(digits.slice(0, 1024 * 1024));
    // Rows that are mostly blanks (pgbench's filler): far more than FAST_FIRST_ENOUGH:1.
    const blanks = Buffer.from(
      Array.from({ length: 12000 }, (_, i) => `${i}\t1\t0\t${' '.repeat(84)}\n`).join(''),
    );
    const sealedSize = async (data: Buffer, level: number, fastFirst: boolean) => {
      const result = await c.seal(data, 'aad', false, level, fastFirst);
      const payload = unseal(KEY, Buffer.concat(result.sealed), 'aad')!;
      expect((await c.decompress(payload, data.length)).equals(data)).toBe(true);
      return payload.length;
    };
    // Text: the fast level's frame (not level 1's), still compressed about as well.
    const textFast = await sealedSize(text, 1, true);
    expect(textFast).not.toBe(await sealedSize(text, 1, false));
    expect(textFast).toBe(await sealedSize(text, FAST_FIRST_LEVEL, false));
    expect(textFast).toBeLessThan(text.length * 0.6);
    // Blanks: compressed again at level 1, the same frame as without fastFirst.
    expect(await sealedSize(blanks, 1, true)).toBe(await sealedSize(blanks, 1, false));
  });

  it('seals many small blobs at once in batches, each with its own associated data', async () => {
    const c = pool(2);
    // 1,000 blobs of up to 16 KiB: several batches (by bytes and by count), sealed concurrently.
    const blobs = Array.from({ length: 1000 }, (_, i) => ({
      data:
        i % 3 === 0
          ? pseudoRandom(1 + ((i * 7919) % (INLINE_LIMIT - 1)), `r${i}`)
          : textLike(1 + (i % 5000), `t${i}`),
      aad: associatedData.blob('data', i.toString(16).padStart(64, '0')),
    }));
    const results = await Promise.all(blobs.map((b) => c.seal(b.data, b.aad, false)));
    results.forEach((result, i) => {
      const sealed = Buffer.concat(result.sealed);
      expect(result.length).toBe(sealed.length);
      const payload = unseal(KEY, sealed, blobs[i]!.aad);
      expect(payload).toBeDefined();
      const plain = result.compressed ? zstdDecompressSync(payload!) : payload!;
      expect(Buffer.from(plain).equals(Buffer.from(blobs[i]!.data))).toBe(true);
    });
  });

  /** A pool that seals and opens with KEY and a fresh blob-ID key, closed after the test. */
  function keyedPool(workers: number) {
    const BLOB_ID_KEY = randomBytes(32);
    const c = new WorkerPool({ level: 3, workers, sealKey: KEY, blobIdKey: BLOB_ID_KEY });
    pools.push(c);
    return { c, keys: { encryption: KEY, blobId: BLOB_ID_KEY }, BLOB_ID_KEY };
  }

  it.each([0, 2])(
    'verifies a batch of records with %i worker threads, naming the check each damaged one fails',
    async (workers) => {
      const { c, keys, BLOB_ID_KEY } = keyedPool(workers);
      const idOf = (data: Uint8Array) => computeBlobId(BLOB_ID_KEY, data);
      const make = async (data: Uint8Array, id = idOf(data)) => {
        const aad = associatedData.blob('data', id);
        const sealed = await c.seal(data, aad, false);
        return {
          record: Buffer.concat(sealed.sealed),
          blob: { id, associatedData: aad, compressed: sealed.compressed, rawLength: data.length },
        };
      };
      const small = await make(textLike(900, 'small'));
      const large = await make(textLike(300_000, 'large'));
      const flipped = await make(textLike(5000, 'flipped'));
      flipped.record[20] = flipped.record[20]! ^ 1;
      const wrongId = await make(textLike(700, 'wrong id'), idOf(Buffer.from('something else')));
      const shortened = await make(pseudoRandom(2000, 'stored'));
      const records = [
        small,
        large,
        flipped,
        wrongId,
        { ...shortened, blob: { ...shortened.blob, rawLength: 1999 } },
      ];
      const data = Buffer.concat(records.map((r) => r.record));
      const { verdicts, buffer } = await c.verifyBatch(
        keys,
        data,
        records.map((r) => r.record.length),
        records.map((r) => r.blob),
      );
      expect(verdicts).toEqual([
        undefined,
        undefined,
        { reason: 'authentication' },
        { reason: 'id' },
        { reason: 'length', length: 2000 },
      ]);
      // The batch buffer comes back, to be filled again.
      expect(buffer.length).toBeGreaterThanOrEqual(data.length);
    },
  );

  it.each([0, 2])(
    'opens a record without recomputing its ID only when the caller checks the content (%i worker threads)',
    async (workers) => {
      const { c, keys, BLOB_ID_KEY } = keyedPool(workers);
      // Sealed under the ID of other bytes (what a bug in a writer would leave): authentic, but not its ID.
      const open = async (data: Uint8Array, contentChecked: boolean, flip = false) => {
        const id = computeBlobId(BLOB_ID_KEY, Buffer.from('other bytes'));
        const aad = associatedData.blob('data', id);
        const sealed = await c.seal(data, aad, false);
        const record = Buffer.concat(sealed.sealed);
        if (flip) record[20] = record[20]! ^ 1;
        const blob = { id, associatedData: aad, compressed: sealed.compressed, rawLength: data.length };
        return c.open(keys, record, { ...blob, contentChecked }, false);
      };
      // Both sizes: below INLINE_LIMIT the calling thread opens, above it a worker (when there is one).
      for (const data of [textLike(900, 'small'), textLike(300_000, 'large')]) {
        expect(await open(data, false)).toEqual({ ok: false, failure: { reason: 'id' } });
        const opened = await open(data, true);
        expect(opened.ok && Buffer.from(opened.plain!).equals(Buffer.from(data))).toBe(true);
        // Authentication is never skipped.
        expect(await open(data, true, true)).toEqual({ ok: false, failure: { reason: 'authentication' } });
      }
    },
  );

  it('seals small blobs on the calling thread while the workers hold their share of batches', async () => {
    const c = pool(1);
    // Far more tiny blobs than the batches a worker may hold: the first go to the worker, the last are
    // sealed here at once, so they are done before the first batch comes back.
    const blobs = Array.from({ length: 16_384 }, (_, i) => textLike(10, `b${i}`));
    const sealing = blobs.map((data, i) => c.seal(data, `aad${i}`, false));
    const first = await Promise.race([
      sealing[0]!.then(() => 'first'),
      sealing[sealing.length - 1]!.then(() => 'last'),
    ]);
    expect(first).toBe('last');
    const results = await Promise.all(sealing);
    results.forEach((result, i) => {
      const payload = unseal(KEY, Buffer.concat(result.sealed), `aad${i}`);
      const plain = result.compressed ? zstdDecompressSync(payload!) : payload!;
      expect(Buffer.from(plain).equals(Buffer.from(blobs[i]!))).toBe(true);
    });
  });

  it('fails the small blobs still waiting for their batch when the pool closes', async () => {
    const c = new WorkerPool({ level: 3, workers: 1, sealKey: KEY });
    const waiting = c.seal(textLike(100, 'late'), 'aad', false);
    await c.close();
    await expect(waiting).rejects.toThrow(/closed/);
  });

  it('moves a buffer it may take to the worker instead of copying it, and copies views', async () => {
    const c = pool(1);
    const own = Buffer.allocUnsafeSlow(INLINE_LIMIT * 8);
    own.set(textLike(own.length, 'own'));
    await c.seal(own, 'aad', true);
    expect(own.buffer.byteLength).toBe(0); // detached: it moved
    const big = textLike(INLINE_LIMIT * 8, 'view');
    const view = big.subarray(1);
    const copy = Buffer.from(view);
    const result = await c.seal(view, 'aad', true);
    const { compressed } = result;
    const sealed = Buffer.concat(result.sealed);
    expect(Buffer.from(view).equals(copy)).toBe(true); // a view cannot move: copied
    expect(compressed).toBe(true);
    expect((await c.decompress(unseal(KEY, sealed, 'aad')!, copy.length)).equals(copy)).toBe(true);
  });

  it.each([0, 1])(
    'seals a chunk in one of its chunk buffers and takes the buffer back for the next chunk (%i workers)',
    async (workers) => {
      const c = pool(workers);
      const data = textLike(700_000, 'pooled');
      const chunk = c.chunkBuffers.take(data.length);
      chunk.set(data);
      // A mark past the chunk's end, in the rest of its buffer, to recognise the buffer when it comes back.
      const capacity = chunk.buffer.byteLength;
      expect(capacity).toBeGreaterThan(data.length + 4);
      const MARK = 0x5eeded17;
      new DataView(chunk.buffer).setUint32(capacity - 4, MARK);
      const result = await c.seal(chunk, 'aad', true);
      const payload = unseal(KEY, Buffer.concat(result.sealed), 'aad')!;
      // Only the chunk's bytes were sealed, not the rest of its buffer.
      expect((await c.decompress(payload, data.length)).equals(Buffer.from(data))).toBe(true);
      if (workers > 0) expect(chunk.buffer.byteLength).toBe(0); // moved to the worker, not copied
      // The buffer came back (from a worker as a new object): the next chunk of that size is cut into it.
      const next = c.chunkBuffers.take(data.length);
      expect(next.buffer.byteLength).toBe(capacity);
      expect(new DataView(next.buffer).getUint32(capacity - 4)).toBe(MARK);
    },
  );

  it.each([0, 1, 2])(
    'hashes a stream of shared and ordinary buffers in order (%i workers)',
    async (workers) => {
      const c = pool(workers);
      const parts = [pseudoRandom(1024 * 1024, 'a'), pseudoRandom(5, 'b'), pseudoRandom(300_000, 'c')];
      const expected = createHash('sha256').update(Buffer.concat(parts)).digest('hex');
      const other = createHash('sha256').update(parts[2]!).digest('hex');
      const one = c.hashStream();
      const two = c.hashStream();
      const shared = Buffer.from(new SharedArrayBuffer(2 * 1024 * 1024));
      shared.set(parts[0]!, 100);
      // Interleaved with another stream and with sealing jobs: each stream keeps its own order.
      const sealing = c.seal(textLike(1024 * 1024, 's'), 'aad', false);
      const updates = [
        one.update(shared.subarray(100, 100 + parts[0]!.length)),
        two.update(parts[2]!),
        one.update(parts[1]!),
        one.update(parts[2]!),
      ];
      await Promise.all(updates);
      await sealing;
      expect(await one.digest()).toBe(expected);
      expect(await two.digest()).toBe(other);
    },
  );
});
