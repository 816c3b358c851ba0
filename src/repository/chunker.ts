/**
 * FastCDC content-defined chunking (Xia et al., 2016) with normalized chunking
 * (two masks) and a gear table derived from the repository's secret chunker
 * seed, so chunk boundaries — and therefore chunk sizes — reveal nothing about
 * the content to someone who does not hold the key. See
 * docs/repository-format.md §Chunking.
 */
import { createHmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Chunker } from './api.js';

/** Chunk size bounds; stored (authenticated) in the repository config. */
export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({
  minSize: 256 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 4 * 1024 * 1024,
});

/** The algorithm name recorded in the config; a different gear/mask scheme needs a new name. */
export const CHUNKER_ALGORITHM = 'fastcdc-gear32-nc2';

/** Reject parameters that would make chunking degenerate (or a tampered config). */
export function validateChunkerParams(p: ChunkerParams): string | undefined {
  const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!isPow2(p.avgSize) || p.avgSize < 256 || p.avgSize > 2 ** 26) {
    return `avgSize ${p.avgSize} must be a power of two between 256 and 64 MiB`;
  }
  if (!Number.isInteger(p.minSize) || p.minSize < 64 || p.minSize > p.avgSize) {
    return `minSize ${p.minSize} must be an integer between 64 and avgSize`;
  }
  if (!Number.isInteger(p.maxSize) || p.maxSize < p.avgSize || p.maxSize > 2 ** 28) {
    return `maxSize ${p.maxSize} must be an integer between avgSize and 256 MiB`;
  }
  return undefined;
}

/**
 * The 256-entry gear table: HMAC-SHA256(seed, "lifeboat-gear-v1" || j) for
 * j = 0..31, concatenated, read as 256 little-endian 32-bit integers.
 */
export function deriveGearTable(seed: Uint8Array): Int32Array {
  const bytes = Buffer.alloc(1024);
  for (let j = 0; j < 32; j++) {
    const mac = createHmac('sha256', seed).update('lifeboat-gear-v1').update(Uint8Array.of(j)).digest();
    mac.copy(bytes, j * 32);
  }
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = bytes.readInt32LE(i * 4);
  return table;
}

/** A mask of the `bits` most significant bits of a 32-bit word (as a signed int32). */
function topBitsMask(bits: number): number {
  return (~0 << (32 - bits)) | 0;
}

/**
 * The synchronous core: feed pieces of a stream, get complete chunks back.
 * Memory is bounded by maxSize (the bytes of the chunk in progress).
 */
export class ChunkCutter {
  private readonly gear: Int32Array;
  private readonly minSize: number;
  private readonly avgSize: number;
  private readonly maxSize: number;
  /** Stricter mask (avg bits + 2) before the average size, looser (avg bits - 2) after: normalization level 2. */
  private readonly maskSmall: number;
  private readonly maskLarge: number;

  /** Bytes of the chunk in progress that arrived in earlier pieces. */
  private held: Uint8Array[] = [];
  /** Length of the chunk in progress, including bytes consumed from the current piece. */
  private size = 0;
  private hash = 0;

  constructor(gear: Int32Array, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    const problem = validateChunkerParams(params);
    if (problem) throw new RangeError(`invalid chunker parameters: ${problem}`);
    if (gear.length !== 256) throw new RangeError('gear table must have 256 entries');
    this.gear = gear;
    this.minSize = params.minSize;
    this.avgSize = params.avgSize;
    this.maxSize = params.maxSize;
    const bits = Math.log2(params.avgSize);
    this.maskSmall = topBitsMask(Math.min(31, bits + 2));
    this.maskLarge = topBitsMask(Math.max(1, bits - 2));
  }

  /** Consume one piece; returns the chunks it completed (possibly none). */
  push(piece: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    const n = piece.length;
    let start = 0; // where the chunk in progress begins within `piece`
    let i = 0;
    while (i < n) {
      const cut = this.scan(piece, i);
      if (cut < 0) break;
      out.push(this.take(piece, start, cut));
      start = cut;
      i = cut;
    }
    if (start < n) this.held.push(start === 0 ? piece : piece.subarray(start));
    return out;
  }

  /** The final (short) chunk, if any bytes remain. */
  end(): Uint8Array | undefined {
    if (this.size === 0) return undefined;
    const last = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
    this.reset();
    return last;
  }

  /**
   * Advance over `buf` from `from`; return the exclusive end index of a chunk
   * boundary found in this piece, or -1 after consuming the whole piece.
   * The hot loop: 32-bit gear hash, no allocation.
   */
  private scan(buf: Uint8Array, from: number): number {
    const n = buf.length;
    const gear = this.gear;
    const base = this.size; // bytes of the chunk in progress before `from`
    let i = from;
    // FastCDC skips hashing below the minimum size: no cut can happen there.
    if (base < this.minSize) {
      i = Math.min(n, from + (this.minSize - base));
      if (base + (i - from) < this.minSize) {
        this.size = base + (i - from);
        return -1;
      }
    }
    let h = this.hash;
    const maskSmall = this.maskSmall;
    let stop = Math.min(n, from + (this.avgSize - base));
    for (; i < stop; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskSmall) === 0) return this.cutAt(i + 1);
    }
    const maskLarge = this.maskLarge;
    const maxEnd = from + (this.maxSize - base);
    stop = Math.min(n, maxEnd);
    for (; i < stop; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskLarge) === 0) return this.cutAt(i + 1);
    }
    if (i === maxEnd) return this.cutAt(i);
    this.size = base + (i - from);
    this.hash = h;
    return -1;
  }

  private cutAt(end: number): number {
    this.hash = 0;
    return end;
  }

  /** Assemble the finished chunk from held pieces plus `piece[start, end)`. */
  private take(piece: Uint8Array, start: number, end: number): Uint8Array {
    let chunk: Uint8Array;
    if (this.held.length === 0) {
      chunk = piece.subarray(start, end);
    } else {
      this.held.push(piece.subarray(start, end));
      chunk = Buffer.concat(this.held);
    }
    this.reset();
    return chunk;
  }

  private reset(): void {
    this.held = [];
    this.size = 0;
    this.hash = 0;
  }
}

/** Turn a Readable or async iterable of bytes into an async iterable of Uint8Array pieces. */
async function* pieces(input: Readable | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const piece of input as AsyncIterable<Uint8Array | string>) {
    if (typeof piece === 'string') throw new TypeError('chunker input must be bytes, not a string stream');
    if (piece.length > 0) yield piece;
  }
}

/**
 * The repository's streaming chunker (implements the Chunker contract of api.ts).
 * Chunks may share memory with the input pieces, and bytes of a chunk in
 * progress are held by reference: a producer must not overwrite a piece after
 * handing it over (Node streams never do).
 */
export class FastCdcChunker implements Chunker {
  constructor(
    private readonly gear: Int32Array,
    private readonly params: ChunkerParams = DEFAULT_CHUNKER_PARAMS,
  ) {}

  /** Cut a stream into chunks without holding more than one chunk in progress. */
  async *chunks(input: Readable | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const cutter = new ChunkCutter(this.gear, this.params);
    for await (const piece of pieces(input)) {
      for (const chunk of cutter.push(piece)) yield chunk;
    }
    const last = cutter.end();
    if (last) yield last;
  }
}
