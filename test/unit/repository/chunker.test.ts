import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import {
  ChunkCutter,
  DEFAULT_CHUNKER_PARAMS,
  deriveGearTable,
  FastCdcChunker,
  validateChunkerParams,
} from '../../../src/repository/chunker.js';
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
