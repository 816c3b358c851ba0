import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import {
  ChunkCutter,
  type CutChunk,
  DEFAULT_CHUNKER_PARAMS,
  deriveGearTable,
  FastCdcChunker,
  joinParts,
  validateChunkerParams,
} from '../../../src/repository/chunker.js';
import type { ChunkParts, ZeroChunk } from '../../../src/repository/api.js';
import { collect, iterate, pseudoRandom, splitInto } from './helpers.js';

const seedA = Buffer.alloc(32, 1);
const seedB = Buffer.alloc(32, 2);
const small = { minSize: 2048, avgSize: 8192, maxSize: 32768 };

const lengths = (chunks: Uint8Array[]) => chunks.map((c) => c.length);
const boundaries = (chunks: Uint8Array[]) => {
  let at = 0;
  return chunks.map((c) => (at += c.length));
};

describe('gear table', () => {
  it('is 256 entries, deterministic per seed and different across seeds', () => {
    const a = deriveGearTable(seedA);
    expect(a).toHaveLength(256);
    expect(deriveGearTable(seedA)).toEqual(a);
    expect(deriveGearTable(seedB)).not.toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(250);
  });
});

describe('FastCdcChunker', () => {
  const data = pseudoRandom(24 * 1024 * 1024, 'chunker-data');

  it('gives the same boundaries for the same seed and data', async () => {
    const chunker = new FastCdcChunker(deriveGearTable(seedA));
    const first = await collect(chunker.chunks(iterate([data])));
    const second = await collect(new FastCdcChunker(deriveGearTable(seedA)).chunks(iterate([data])));
    expect(lengths(second)).toEqual(lengths(first));
    expect(Buffer.concat(first).equals(data)).toBe(true);
  });

  it('gives different boundaries for a different seed', async () => {
    const a = await collect(new FastCdcChunker(deriveGearTable(seedA)).chunks(iterate([data])));
    const b = await collect(new FastCdcChunker(deriveGearTable(seedB)).chunks(iterate([data])));
    const shared = boundaries(a).filter((x) => boundaries(b).includes(x));
    // Only the end of the stream is common.
    expect(shared).toEqual([data.length]);
  });

  it('keeps every chunk within min/max (only the last may be short) and averages about 1 MiB', async () => {
    const chunks = await collect(new FastCdcChunker(deriveGearTable(seedA)).chunks(iterate([data])));
    const { minSize, maxSize } = DEFAULT_CHUNKER_PARAMS;
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(minSize);
      expect(c.length).toBeLessThanOrEqual(maxSize);
    }
    const avg = data.length / chunks.length;
    expect(avg).toBeGreaterThan(700 * 1024);
    expect(avg).toBeLessThan(1600 * 1024);
  });

  it('cuts at maxSize when no boundary is found (constant input)', async () => {
    const zeros = Buffer.alloc(10 * 1024 * 1024);
    const chunks = await collect(new FastCdcChunker(deriveGearTable(seedA)).chunks(iterate([zeros])));
    // A run of one byte value gives a constant hash: either it matches at once
    // after minSize or never; with this seed it must respect the bounds either way.
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(DEFAULT_CHUNKER_PARAMS.minSize);
      expect(c.length).toBeLessThanOrEqual(DEFAULT_CHUNKER_PARAMS.maxSize);
    }
    expect(Buffer.concat(chunks).equals(zeros)).toBe(true);
  });

  it('produces no chunk for empty input, and one short chunk for tiny input', async () => {
    const chunker = new FastCdcChunker(deriveGearTable(seedA));
    expect(await collect(chunker.chunks(iterate([])))).toEqual([]);
    expect(await collect(chunker.chunks(iterate([new Uint8Array(0)])))).toEqual([]);
    const tiny = await collect(chunker.chunks(iterate([Buffer.from('hello')])));
    expect(tiny.map((c) => c.toString())).toEqual(['hello']);
  });

  it('gives identical chunks however the input is split', async () => {
    const input = data.subarray(0, 12 * 1024 * 1024);
    const chunker = new FastCdcChunker(deriveGearTable(seedA));
    const whole = await collect(chunker.chunks(iterate([input])));
    for (const sizes of [[1, 7, 4096, 65536, 3], [65536], [1_000_003], [262144, 1]]) {
      const split = await collect(chunker.chunks(iterate(splitInto(input, sizes))));
      expect(lengths(split)).toEqual(lengths(whole));
      expect(Buffer.concat(split).equals(input)).toBe(true);
    }
  });

  it('accepts a Node Readable', async () => {
    const input = data.subarray(0, 5 * 1024 * 1024);
    const chunker = new FastCdcChunker(deriveGearTable(seedA));
    const fromStream = await collect(chunker.chunks(Readable.from(splitInto(input, [65536]))));
    const direct = await collect(chunker.chunks(iterate([input])));
    expect(lengths(fromStream)).toEqual(lengths(direct));
  });

  it('is shift resistant: inserting bytes early changes only nearby chunks', async () => {
    const gear = deriveGearTable(seedA);
    const base = pseudoRandom(2 * 1024 * 1024, 'shift');
    const shifted = Buffer.concat([
      base.subarray(0, 5000),
      Buffer.from('inserted bytes!'),
      base.subarray(5000),
    ]);
    const a = await collect(new FastCdcChunker(gear, small).chunks(iterate([base])));
    const b = await collect(new FastCdcChunker(gear, small).chunks(iterate([shifted])));
    const hex = (cs: Buffer[]) => new Set(cs.map((c) => c.toString('base64')));
    const setA = hex(a);
    const common = [...hex(b)].filter((c) => setA.has(c)).length;
    expect(a.length).toBeGreaterThan(100);
    // All but the first couple of chunks are unchanged.
    expect(common).toBeGreaterThanOrEqual(a.length - 3);
    expect(common).toBeLessThan(a.length);
  });

  it('respects custom bounds exactly', () => {
    const cutter = new ChunkCutter(deriveGearTable(seedA), small);
    const input = pseudoRandom(1024 * 1024, 'bounds');
    const chunks = [...cutter.push(input)];
    const last = cutter.end();
    if (last) chunks.push(last);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(small.minSize);
      expect(c.length).toBeLessThanOrEqual(small.maxSize);
    }
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(input.length);
  });

  it('rejects parameters that would break chunking', () => {
    expect(validateChunkerParams({ minSize: 1024, avgSize: 3000, maxSize: 8192 })).toMatch(/power of two/);
    expect(validateChunkerParams({ minSize: 9000, avgSize: 8192, maxSize: 16384 })).toMatch(/minSize/);
    expect(validateChunkerParams({ minSize: 1024, avgSize: 8192, maxSize: 4096 })).toMatch(/maxSize/);
    expect(validateChunkerParams(DEFAULT_CHUNKER_PARAMS)).toBeUndefined();
    expect(() => new ChunkCutter(deriveGearTable(seedA), { minSize: 1, avgSize: 2, maxSize: 3 })).toThrow(
      RangeError,
    );
  });
});

describe('ChunkCutter with zero runs given by length', () => {
  type Part = { bytes: Buffer } | { zeros: number };
  /** Data and zero runs of assorted lengths: shorter than the 32-step hash window, around min/avg/max, longer. */
  const parts = (seed: string, lengths: number[]): Part[] =>
    lengths.map((n, i) => (i % 2 === 0 ? { bytes: pseudoRandom(n, `${seed}${i}`) } : { zeros: n }));
  const asBytes = (ps: Part[]) =>
    Buffer.concat(ps.map((p) => ('bytes' in p ? p.bytes : Buffer.alloc(p.zeros))));

  /** Feed `ps` through pushInto/pushZeros; returns the chunks as emitted. */
  const cutWithZeroRuns = (gear: Int32Array, params: typeof small, ps: Part[]) => {
    const cutter = new ChunkCutter(gear, params);
    const out: CutChunk[] = [];
    for (const p of ps) {
      if ('bytes' in p) cutter.pushInto(p.bytes, out);
      else cutter.pushZeros(p.zeros, out);
    }
    const last = cutter.endChunk();
    if (last) out.push(last);
    return out;
  };
  const cutAsBytes = (gear: Int32Array, params: typeof small, data: Buffer) => {
    const cutter = new ChunkCutter(gear, params);
    const out = cutter.push(data);
    const last = cutter.end();
    if (last) out.push(last);
    return out;
  };
  const size = (c: CutChunk) => (c instanceof Uint8Array ? c.length : c.zero);

  it.each([
    ['short runs', [5000, 7, 3000, 31, 100, 33, 20000, 1, 9000]],
    ['runs around the bounds', [1000, 2048, 5000, 8192, 3000, 32768, 10, 32769, 4000, 100000, 7]],
    ['long runs only', [0, 300000, 0, 65536]],
    ['mixed', [40000, 12345, 70000, 6000, 1, 250000, 33333, 2047, 8191, 40000]],
  ])('cuts exactly where feeding the zero bytes would (%s)', (_name, runLengths) => {
    for (const seed of [seedA, seedB]) {
      const gear = deriveGearTable(seed);
      const ps = parts(String(runLengths[0]), runLengths);
      const data = asBytes(ps);
      const expected = cutAsBytes(gear, small, data);
      const got = cutWithZeroRuns(gear, small, ps);
      expect(got.map(size)).toEqual(lengths(expected));
      // Same bytes; chunks made of zero runs only come out without memory.
      let at = 0;
      for (const c of got) {
        const n = size(c);
        const want = data.subarray(at, at + n);
        if (c instanceof Uint8Array) expect(Buffer.from(c).equals(want)).toBe(true);
        else expect(want.every((b) => b === 0)).toBe(true);
        at += n;
      }
    }
  });

  // With a random table the settled hash of a zero run (-gear[0]) almost never matches a mask, so the
  // runs above are cut at maxSize. These tables make it match the small mask (gear[0] = 0: h settles
  // at 0) or only the large one (-gear[0] = 2^20: top 11 bits clear, top 15 not), to cover those cuts.
  it.each([
    ['settles on a small-mask match', 0],
    ['settles on a large-mask match only', -(1 << 20)],
  ])('cuts zero runs like their bytes when the zero hash %s', (_name, gear0) => {
    const gear = deriveGearTable(seedA);
    gear[0] = gear0;
    const ps = parts('settle', [3000, 70000, 2500, 9000, 40, 16384, 12000, 131072, 1]);
    const expected = cutAsBytes(gear, small, asBytes(ps));
    const got = cutWithZeroRuns(gear, small, ps);
    expect(got.map(size)).toEqual(lengths(expected));
    expect(got.some((c) => !(c instanceof Uint8Array) && c.zero < small.maxSize)).toBe(true);
  });

  it('emits a long zero run as zero chunks of the sizes the bytes would give, default parameters', () => {
    const gear = deriveGearTable(seedA);
    const ps: Part[] = [{ bytes: pseudoRandom(700_000, 'lead') }, { zeros: 40 * 1024 * 1024 + 17 }];
    const expected = cutAsBytes(gear, DEFAULT_CHUNKER_PARAMS, asBytes(ps));
    const got = cutWithZeroRuns(gear, DEFAULT_CHUNKER_PARAMS, ps);
    expect(got.map(size)).toEqual(lengths(expected));
    expect(got.filter((c) => !(c instanceof Uint8Array)).length).toBeGreaterThan(5);
  });

  it('returns chunks that own exactly their ArrayBuffer (transferable without a copy)', () => {
    const cutter = new ChunkCutter(deriveGearTable(seedA), small);
    const out: CutChunk[] = [];
    const input = pseudoRandom(300_000, 'own');
    for (const piece of splitInto(input, [4096, 65536, 7])) cutter.pushInto(piece, out);
    const last = cutter.endChunk();
    if (last) out.push(last);
    expect(out.length).toBeGreaterThan(10);
    for (const c of out) {
      if (!(c instanceof Uint8Array)) throw new Error('no zero runs were given');
      expect(c.byteOffset).toBe(0);
      expect(c.byteLength).toBe(c.buffer.byteLength);
    }
    // The input is only read.
    expect(input.equals(pseudoRandom(300_000, 'own'))).toBe(true);
  });

  it('as a parts cutter, emits views of the pieces that join to the chunks a copying cutter gives', () => {
    const gear = deriveGearTable(seedA);
    const ps = parts('views', [40000, 12345, 70000, 6000, 1, 250000, 33333, 2047, 8191, 40000]);
    const expected = cutWithZeroRuns(gear, small, ps);
    const cutter = ChunkCutter.parts(gear, small);
    const got: (ChunkParts | ZeroChunk)[] = [];
    for (const p of ps) {
      // Pieces split unevenly, so that chunks span several of them.
      if ('bytes' in p) for (const piece of splitInto(p.bytes, [4096, 777])) cutter.pushInto(piece, got);
      else cutter.pushZeros(p.zeros, got);
    }
    const last = cutter.endChunk();
    if (last) got.push(last);
    expect(got.length).toBe(expected.length);
    const inputs = new Set(ps.flatMap((p) => ('bytes' in p ? [p.bytes.buffer] : [])));
    let spanning = 0;
    got.forEach((c, i) => {
      const want = expected[i]!;
      if ('zero' in c) {
        expect(want).toEqual({ zero: c.zero });
        return;
      }
      expect(Buffer.from(joinParts(c.parts, c.length)).equals(Buffer.from(want as Uint8Array))).toBe(true);
      // No copies: every byte part is a view of the input.
      for (const part of c.parts) if (typeof part !== 'number') expect(inputs.has(part.buffer)).toBe(true);
      if (c.parts.length > 1) spanning++;
    });
    expect(spanning).toBeGreaterThan(3);
  });

  it('reports how many trailing bytes it still holds', () => {
    const cutter = new ChunkCutter(deriveGearTable(seedA), small);
    const out: CutChunk[] = [];
    cutter.pushInto(pseudoRandom(1000, 'p'), out);
    expect(cutter.pendingBytes).toBe(1000);
    cutter.pushInto(pseudoRandom(100_000, 'q'), out);
    const emitted = out.reduce((n, c) => n + size(c), 0);
    expect(emitted).toBeGreaterThan(0);
    expect(cutter.pendingBytes).toBe(101_000 - emitted);
  });
});
