/**
 * FastCDC content-defined chunking (Xia et al., 2016) with normalized chunking
 * (two masks) and a gear table derived from the repository's secret chunker
 * seed, so chunk boundaries — and therefore chunk sizes — reveal nothing about
 * the content to someone who does not hold the key. See
 * docs/repository-format.md §Chunking.
 */
import { createHmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ChunkParts, Chunker, ChunkSink, ZeroChunk } from './api.js';
import { gearScanner, type GearScanner } from './gearScan.js';

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

/** What ChunkCutter emits by default: the bytes of a chunk, or the length of an all-zero chunk cut from zero runs. */
export type CutChunk = Uint8Array | ZeroChunk;

/** The parts of a chunk: byte views and lengths of zero runs. */
type Part = Uint8Array | number;

/**
 * The bytes of `parts` (`length` in all) copied into `buf` (from its start),
 * by default a buffer of its own: an ArrayBuffer of exactly the chunk,
 * transferable as is. allocUnsafeSlow: no zero-fill, no pool slice.
 */
export function joinParts(
  parts: readonly Part[],
  length: number,
  buf: Buffer = Buffer.allocUnsafeSlow(length),
): Buffer {
  let at = 0;
  for (const part of parts) {
    if (typeof part === 'number') {
      buf.fill(0, at, at + part);
      at += part;
    } else {
      buf.set(part, at);
      at += part.length;
    }
  }
  return buf;
}

/** A chunk handed out as its parts (for a parts cutter). */
function asParts(parts: Part[], length: number): ChunkParts {
  return { parts, length };
}

/**
 * The synchronous core: feed pieces of a stream, get complete chunks back.
 * Memory is bounded by maxSize (the bytes of the chunk in progress).
 *
 * By default every chunk returned owns exactly its own ArrayBuffer
 * (byteOffset 0, byteLength = length): it is assembled with one copy out of
 * the pieces, so it can be transferred to a worker thread without another
 * copy, and the pieces are never concatenated pairwise. A parts cutter
 * (ChunkCutter.parts) hands out the pieces' views instead, for a consumer
 * that copies only the chunks it keeps. Runs of zeros can be fed by length
 * (pushZeros) — the boundaries are exactly those of feeding the zero bytes,
 * but a chunk made only of such runs comes out as `{ zero: n }`, without
 * memory, and long runs cost O(1) instead of a hash step per byte.
 */
export class ChunkCutter<C extends object = Uint8Array> implements ChunkSink<C> {
  /** A cutter that emits ChunkParts: views of the pieces pushed, valid until the caller reuses them. */
  static parts(gear: Int32Array, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS): ChunkCutter<ChunkParts> {
    return new ChunkCutter(gear, params, asParts);
  }

  private readonly gear: Int32Array;
  private readonly scanner: GearScanner;
  private readonly minSize: number;
  private readonly avgSize: number;
  private readonly maxSize: number;
  /** Stricter mask (avg bits + 2) before the average size, looser (avg bits - 2) after: normalization level 2. */
  private readonly maskSmall: number;
  private readonly maskLarge: number;

  /** Parts of the chunk in progress that arrived earlier: byte pieces, or lengths of zero runs. */
  private held: Part[] = [];
  /** True while every held part is a zero run. */
  private heldZerosOnly = true;
  /** Length of the chunk in progress, including bytes consumed from the current piece. */
  private size = 0;
  private hash = 0;

  /** Makes the emitted chunk out of the held parts (not all zero runs). */
  private readonly finish: (parts: Part[], length: number) => C;

  constructor(
    gear: Int32Array,
    params: ChunkerParams = DEFAULT_CHUNKER_PARAMS,
    finish: (parts: Part[], length: number) => C = joinParts as unknown as (
      parts: Part[],
      length: number,
    ) => C,
  ) {
    this.finish = finish;
    const problem = validateChunkerParams(params);
    if (problem) throw new RangeError(`invalid chunker parameters: ${problem}`);
    if (gear.length !== 256) throw new RangeError('gear table must have 256 entries');
    this.gear = gear;
    this.scanner = gearScanner(gear);
    this.minSize = params.minSize;
    this.avgSize = params.avgSize;
    this.maxSize = params.maxSize;
    const bits = Math.log2(params.avgSize);
    this.maskSmall = topBitsMask(Math.min(31, bits + 2));
    this.maskLarge = topBitsMask(Math.max(1, bits - 2));
  }

  /**
   * Bytes of the chunk in progress. The cutter references (and so keeps) at
   * most this many of the last bytes pushed; anything earlier is free.
   */
  get pendingBytes(): number {
    return this.size;
  }

  /** Consume one piece; returns the chunks it completed (possibly none). The piece is not modified. */
  push(piece: Uint8Array): C[] {
    const out: C[] = [];
    this.pushInto(piece, out as (C | ZeroChunk)[]);
    return out;
  }

  /**
   * Consume one piece into `out`. The cutter keeps a reference to the tail of
   * the piece until the chunk in progress is cut: the caller must not
   * overwrite a piece after handing it over.
   */
  pushInto(piece: Uint8Array, out: (C | ZeroChunk)[]): void {
    const n = piece.length;
    let start = 0; // where the chunk in progress begins within `piece`
    while (start < n) {
      const cut = this.scan(piece, start);
      if (cut < 0) break;
      out.push(this.take(piece.subarray(start, cut)));
      start = cut;
    }
    if (start < n) {
      this.held.push(start === 0 ? piece : piece.subarray(start));
      this.heldZerosOnly = false;
    }
  }

  /** Consume `length` zero bytes without their memory; same boundaries as push(new Uint8Array(length)). */
  pushZeros(length: number, out: (C | ZeroChunk)[]): void {
    let left = length;
    while (left > 0) {
      const cut = this.scanZeros(left);
      if (cut < 0) {
        this.held.push(left);
        return;
      }
      this.held.push(cut);
      out.push(this.assemble());
      left -= cut;
    }
  }

  /** The final (short) chunk, if any bytes remain (a zero chunk as a parts chunk of one zero run, or zero bytes). */
  end(): C | undefined {
    const last = this.endChunk();
    if (last === undefined || !('zero' in last)) return last;
    return this.finish([last.zero], last.zero);
  }

  /** The final (short) chunk, if any bytes remain, as pushInto would emit it. */
  endChunk(): C | ZeroChunk | undefined {
    if (this.size === 0) return undefined;
    return this.assemble();
  }

  /**
   * Advance over `buf` from `from`; return the exclusive end index of a chunk
   * boundary found in this piece, or -1 after consuming the whole piece.
   * The hot loop, the 32-bit gear hash, runs in gearScan.ts.
   */
  private scan(buf: Uint8Array, from: number): number {
    const n = buf.length;
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
    // Before the average size the stricter mask, then the looser one, up to the maximum size.
    const smallEnd = Math.min(n, from + (this.avgSize - base));
    if (i < smallEnd) {
      const r = this.scanner.scan(buf, i, smallEnd, h, this.maskSmall);
      if (r.end >= 0) return this.cutAfter(r.end - from) + from;
      h = r.hash;
      i = smallEnd;
    }
    const maxEnd = from + (this.maxSize - base);
    const largeEnd = Math.min(n, maxEnd);
    if (i < largeEnd) {
      const r = this.scanner.scan(buf, i, largeEnd, h, this.maskLarge);
      if (r.end >= 0) return this.cutAfter(r.end - from) + from;
      h = r.hash;
      i = largeEnd;
    }
    if (i === maxEnd) return this.cutAfter(i - from) + from;
    this.size = base + (i - from);
    this.hash = h;
    return -1;
  }

  /**
   * scan() over `avail` virtual zero bytes: returns how many of them end the
   * chunk in progress, or -1 after consuming all. Each zero byte maps h to
   * 2h + gear[0]; after 32 such steps h no longer depends on its start value
   * (it is -gear[0] mod 2^32), so the loops below run at most 32 steps per
   * mask region and then decide the rest of the region at once.
   */
  private scanZeros(avail: number): number {
    const g0 = this.gear[0]!;
    const base = this.size;
    let i = 0;
    if (base < this.minSize) {
      i = Math.min(avail, this.minSize - base);
      if (base + i < this.minSize) {
        this.size = base + i;
        return -1;
      }
    }
    let h = this.hash;
    let steps = 0; // zero bytes hashed in this call; h is fixed once steps >= 32
    const regions: [number, number][] = [
      [Math.min(avail, this.avgSize - base), this.maskSmall],
      [Math.min(avail, this.maxSize - base), this.maskLarge],
    ];
    for (const [stop, mask] of regions) {
      while (i < stop) {
        if (steps >= 32) {
          // Every further byte leaves h as it is: a cut at the next byte or none in this region.
          if ((h & mask) === 0) return this.cutAfter(i + 1);
          i = stop;
          break;
        }
        h = ((h << 1) + g0) | 0;
        steps++;
        i++;
        if ((h & mask) === 0) return this.cutAfter(i);
      }
    }
    if (base + i === this.maxSize) return this.cutAfter(i);
    this.size = base + i;
    this.hash = h;
    return -1;
  }

  /** A boundary `consumed` bytes into the current input completes the chunk in progress; returns `consumed`. */
  private cutAfter(consumed: number): number {
    this.size += consumed;
    this.hash = 0;
    return consumed;
  }

  /** The finished chunk: the held parts plus `last`. */
  private take(last: Uint8Array): C | ZeroChunk {
    this.held.push(last);
    this.heldZerosOnly = false;
    return this.assemble();
  }

  /** The finished chunk out of the held parts (or a zero chunk), and reset. */
  private assemble(): C | ZeroChunk {
    const chunk = this.heldZerosOnly ? { zero: this.size } : this.finish(this.held, this.size);
    this.held = [];
    this.heldZerosOnly = true;
    this.size = 0;
    this.hash = 0;
    return chunk;
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
 * Every chunk owns its memory (one copy out of the input pieces, into a buffer
 * of its own or from the `allocate` it was given); bytes of a
 * chunk in progress are held by reference until it is cut: a producer must
 * not overwrite a piece after handing it over (Node streams never do).
 */
export class FastCdcChunker implements Chunker {
  /** Makes a chunk out of its parts: joinParts into a buffer of its own, or into one from `allocate`. */
  private readonly finish: ((parts: Part[], length: number) => Uint8Array) | undefined;

  /**
   * With `allocate`, chunks (of chunks() and cutter()) are copied into the
   * buffers it gives, views from offset 0 of a buffer that may be larger
   * (the repository's ChunkBuffers, reused once a chunk is sealed).
   */
  constructor(
    private readonly gear: Int32Array,
    private readonly params: ChunkerParams = DEFAULT_CHUNKER_PARAMS,
    allocate?: (length: number) => Buffer,
  ) {
    if (allocate) this.finish = (parts, length) => joinParts(parts, length, allocate(length));
  }

  /** A synchronous cutter for one stream (the fast path of sources that read files themselves). */
  cutter(): ChunkCutter {
    return new ChunkCutter(this.gear, this.params, this.finish);
  }

  /** The same, emitting ChunkParts (for Repo.saveChunkParts: only new chunks are copied). */
  partsCutter(): ChunkCutter<ChunkParts> {
    return ChunkCutter.parts(this.gear, this.params);
  }

  /** Cut a stream into chunks without holding more than one chunk in progress. */
  async *chunks(input: Readable | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const cutter = new ChunkCutter(this.gear, this.params, this.finish);
    for await (const piece of pieces(input)) {
      for (const chunk of cutter.push(piece)) yield chunk;
    }
    const last = cutter.end();
    if (last) yield last;
  }
}
