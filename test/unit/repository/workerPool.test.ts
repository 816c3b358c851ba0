import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { WorkerPool, INLINE_LIMIT } from '../../../src/repository/workerPool.js';
import { pseudoRandom, textLike } from './helpers.js';

const pools: WorkerPool[] = [];
const pool = (workers: number) => {
  const p = new WorkerPool({ level: 3, workers });
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
});
