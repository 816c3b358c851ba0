import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/errors.js';
import { packKey } from '../../../src/repository/layout.js';
import { indexedPacks } from '../../../src/repository/maintenance.js';
import {
  planPackReads,
  readPackRanges,
  type BlobPlace,
  type BlobResult,
  type PackRange,
} from '../../../src/repository/packReadPlan.js';
import { PackWindows } from '../../../src/repository/packWindows.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import { readObject } from '../../../src/repository/storageIo.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { Storage } from '../../../src/storage/types.js';
import { flipByte, pseudoRandom, testOptions, textLike } from './helpers.js';

const PASSWORD = 'pack read plan';
const open: Repository[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

const place = (id: string, packId: string, offset: number, length: number): BlobPlace => ({
  id,
  packId,
  offset,
  length,
  rawLength: length * 2,
});

describe('planPackReads', () => {
  it('coalesces blobs of a pack across small gaps and splits at big gaps and at the range limit', () => {
    const ranges = planPackReads(
      [
        place('c', 'p1', 1000, 100), // out of offset order on purpose
        place('a', 'p1', 0, 100),
        place('b', 'p1', 150, 100), // gap 50 after a: joined
        place('d', 'p1', 1150, 100),
        place('e', 'p1', 1250, 900), // would make the range 1150..2150 > maxRange 1000
      ],
      { maxGap: 64, maxRange: 1000 },
    );
    expect(ranges.map((r) => [r.packId, r.offset, r.length, r.blobs.map((b) => b.id).join('')])).toEqual([
      ['p1', 0, 250, 'ab'],
      ['p1', 1000, 250, 'cd'], // gap 750 after b: a new request
      ['p1', 1250, 900, 'e'],
    ]);
    expect(ranges[0]!.rawLength).toBe(400);
  });

  it('reads each blob once however often it is asked for, packs in order of first need', () => {
    const ranges = planPackReads(
      [place('x', 'p2', 0, 10), place('y', 'p1', 0, 10), place('x', 'p2', 0, 10), place('z', 'p2', 10, 10)],
      { maxGap: 0, maxRange: 1 << 20 },
    );
    expect(ranges.map((r) => [r.packId, r.blobs.map((b) => b.id).join('')])).toEqual([
      ['p2', 'xz'],
      ['p1', 'y'],
    ]);
  });

  it('gives a blob bigger than the range limit a range of its own', () => {
    const ranges = planPackReads(
      [place('a', 'p', 0, 10), place('big', 'p', 10, 5000), place('b', 'p', 5010, 10)],
      {
        maxGap: 0,
        maxRange: 100,
      },
    );
    expect(ranges.map((r) => r.blobs.map((b) => b.id).join(''))).toEqual(['a', 'big', 'b']);
  });
});

describe('readPackRanges', () => {
  // A PackRangeSource over in-memory "packs" of known bytes: it stands in for the repository so that the
  // test can see how many reads are in flight; the real repository is exercised in the tests below.
  function countingSource(delayMs: number) {
    const stats = { inFlight: 0, maxInFlight: 0, bytesHeld: 0, maxBytesHeld: 0, reads: 0 };
    return {
      stats,
      source: {
        async readRange(range: PackRange): Promise<Buffer> {
          stats.reads++;
          stats.inFlight++;
          stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
          stats.bytesHeld += range.length + range.rawLength;
          stats.maxBytesHeld = Math.max(stats.maxBytesHeld, stats.bytesHeld);
          await new Promise((r) => setTimeout(r, delayMs));
          stats.inFlight--;
          return Buffer.alloc(range.length, range.offset % 251);
        },
        async openBlob(blob: BlobPlace, record: Buffer): Promise<Buffer> {
          if (blob.id === 'bad') throw new IntegrityError(`blob ${blob.id} failed authentication`);
          return Buffer.from(record);
        },
      },
      release(range: PackRange) {
        stats.bytesHeld -= range.length + range.rawLength;
      },
    };
  }

  it('keeps at most the configured ranges and bytes in flight and hands blobs over in plan order', async () => {
    const blobs = Array.from({ length: 40 }, (_, i) =>
      place(`b${i}`, `p${Math.floor(i / 4)}`, (i % 4) * 100_000, 1000),
    );
    const ranges = planPackReads(blobs, { maxGap: 0, maxRange: 1 << 20 });
    expect(ranges).toHaveLength(40);
    const { source, stats, release } = countingSource(2);
    const seen: string[] = [];
    const limit = 3 * 3000; // three ranges of 1000 stored + 2000 plain bytes
    await readPackRanges(
      source,
      ranges,
      async (id, result) => {
        expect(result.ok).toBe(true);
        seen.push(id);
        const range = ranges.find((r) => r.blobs[0]!.id === id)!;
        await new Promise((r) => setTimeout(r, 1)); // a slow consumer
        release(range);
      },
      { maxBytesInFlight: limit, maxRangesInFlight: 8 },
    );
    expect(seen).toEqual(blobs.map((b) => b.id));
    expect(stats.reads).toBe(40);
    expect(stats.maxBytesHeld).toBeLessThanOrEqual(limit);
    expect(stats.maxInFlight).toBeGreaterThan(1); // reads do overlap the consumer

    const counted = countingSource(2);
    await readPackRanges(
      counted.source,
      ranges,
      (id) => counted.release(ranges.find((r) => r.blobs[0]!.id === id)!),
      {
        maxBytesInFlight: 1 << 30,
        maxRangesInFlight: 2,
      },
    );
    expect(counted.stats.maxInFlight).toBeLessThanOrEqual(2);
  });

  it('lets the opener take a record only when it is the only blob of its range', async () => {
    const ranges = planPackReads(
      [place('a', 'p', 0, 10), place('b', 'p', 10, 10), place('c', 'p', 10_000_000, 10)],
      { maxGap: 0, maxRange: 1 << 20 },
    );
    expect(ranges.map((r) => r.blobs.length)).toEqual([2, 1]);
    const owned = new Map<string, boolean>();
    const source = {
      readRange: (range: PackRange) => Promise.resolve(Buffer.alloc(range.length, range.blobs.length)),
      openBlob(blob: BlobPlace, record: Buffer, mayTake: boolean) {
        owned.set(blob.id, mayTake);
        return Promise.resolve(Buffer.from(record));
      },
    };
    await readPackRanges(source, ranges, () => {});
    expect([...owned]).toEqual([
      ['a', false],
      ['b', false],
      ['c', true],
    ]);
  });

  it('fails only the damaged blob of a range and stops when the consumer throws', async () => {
    const ranges = planPackReads([
      place('a', 'p', 0, 10),
      place('bad', 'p', 10, 10),
      place('c', 'p', 20, 10),
    ]);
    const { source } = countingSource(0);
    const results = new Map<string, BlobResult>();
    await readPackRanges(source, ranges, (id, r) => void results.set(id, r));
    expect([...results].map(([id, r]) => [id, r.ok])).toEqual([
      ['a', true],
      ['bad', false],
      ['c', true],
    ]);
    await expect(
      readPackRanges(source, ranges, () => {
        throw new Error('stop');
      }),
    ).rejects.toThrow('stop');
  });
});

/** Counts get() calls on real storage (instrumentation, not a mock: every call goes through). */
function countGets(storage: Storage): {
  gets: { key: string; range?: { offset: number; length: number } }[];
} {
  const gets: { key: string; range?: { offset: number; length: number } }[] = [];
  const get = storage.get.bind(storage);
  storage.get = (key: string, range?: { offset: number; length: number }): Promise<Readable> => {
    gets.push({ key, ...(range ? { range } : {}) });
    return get(key, range);
  };
  return { gets };
}

describe('Repository.loadBlobs', () => {
  it('reads a pack once for all its blobs, delivers each distinct blob once, verified', async () => {
    const storage = new MemoryStorage();
    const repo = await initRepository(storage, PASSWORD, testOptions());
    open.push(repo);
    const datas = Array.from({ length: 20 }, (_, i) =>
      i % 2 ? textLike(50_000 + i, `t${i}`) : pseudoRandom(30_000 + i, `r${i}`),
    );
    const ids = [];
    for (const d of datas) ids.push((await repo.saveBlob('data', d)).id);
    await repo.flush();
    const reopened = await openRepository(storage, PASSWORD, testOptions());
    open.push(reopened);
    const { gets } = countGets(storage);
    const got = new Map<string, Buffer>();
    await reopened.loadBlobs([...ids, ...ids.slice(0, 5)], (id, r) => {
      expect(got.has(id)).toBe(false);
      if (!r.ok) throw r.error;
      got.set(id, r.data);
    });
    expect(got.size).toBe(20);
    ids.forEach((id, i) => expect(got.get(id)!.equals(datas[i]!)).toBe(true));
    expect(indexedPacks(reopened).size).toBe(1);
    expect(gets).toHaveLength(1); // one ranged read of the one pack
    expect(reopened.blobLength(ids[3]!)).toBe(datas[3]!.length);
  });

  it('reports a damaged blob, a missing blob and a missing pack per blob; the others load', async () => {
    const storage = new MemoryStorage();
    const repo = await initRepository(storage, PASSWORD, testOptions({ packSize: 64 * 1024 }));
    open.push(repo);
    const datas = Array.from({ length: 6 }, (_, i) => pseudoRandom(40_000, `d${i}`));
    const ids = [];
    for (const d of datas) ids.push((await repo.saveBlob('data', d)).id);
    await repo.flush();
    const reopened = await openRepository(storage, PASSWORD, testOptions());
    open.push(reopened);
    const packs = [...indexedPacks(reopened).keys()];
    expect(packs.length).toBeGreaterThanOrEqual(3);
    // Damage the first pack's first blob, remove the last pack.
    const first = reopened.internals().index.get(ids[0]!)!;
    flipByte(storage.raw(packKey(first.packId))!, first.offset + 20);
    const last = reopened.internals().index.get(ids[5]!)!;
    await storage.delete(packKey(last.packId));
    const missing = 'ab'.repeat(32);
    const results = new Map<string, BlobResult>();
    await reopened.loadBlobs([...ids, missing], (id, r) => void results.set(id, r));
    const error = (id: string) => {
      const r = results.get(id)!;
      return r.ok ? undefined : (r.error as Error);
    };
    expect(error(ids[0]!)).toBeInstanceOf(IntegrityError);
    expect(error(ids[0]!)!.message).toMatch(/authentication/);
    expect(error(ids[5]!)!.message).toMatch(/pack .* is missing/);
    expect(error(missing)!.message).toMatch(/not in the index/);
    for (const i of [1, 2, 3, 4]) {
      if (reopened.internals().index.get(ids[i]!)!.packId === last.packId) continue;
      const r = results.get(ids[i]!)!;
      expect(r.ok && r.data.equals(datas[i]!)).toBe(true);
    }
  });
});

describe('PackWindows', () => {
  it('serves nearby small reads from one window read, and large or far ones with their own reads', async () => {
    const storage = new MemoryStorage();
    const pack = pseudoRandom(2 * 1024 * 1024, 'window pack');
    await storage.put('data/pa/pack', pack);
    const { gets } = countGets(storage);
    const windows = new PackWindows(
      (_, offset, length) => readObject(storage, 'data/pa/pack', { offset, length }),
      64 * 1024,
      2,
    );
    const at = async (offset: number, length: number) =>
      expect((await windows.get('p', offset, length)).equals(pack.subarray(offset, offset + length))).toBe(
        true,
      );
    await at(100_000, 1000);
    await at(60_000, 2000); // before it, in the same window
    await at(101_000, 500);
    expect(gets).toHaveLength(1);
    await at(1_000_000, 100); // elsewhere: a second window
    await at(0, 40_000); // bigger than half a window: read as asked
    expect(gets).toHaveLength(3);
    await at(100_500, 10); // the first window is still held (two are kept)
    expect(gets).toHaveLength(3);
    // Near the end of the pack the window is short; a read past the end comes back short, not padded.
    expect((await windows.get('p', pack.length - 10, 20)).length).toBe(10);
  });
});
