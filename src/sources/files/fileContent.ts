/**
 * Reads one open file through the repository's chunker into data blobs, with
 * several saveBlob calls in flight, hashing its content on the way.
 * All-zero chunks become `{ zero: n }` refs and are not stored (sparse files).
 *
 * Large files take a faster path when the chunker offers a synchronous cutter
 * (the repository's always does), so that a backup of one big file uses every
 * core (docs/performance.md, "Where lifeboat loses time"):
 * - the file is read in 1 MiB pieces into recycled SharedArrayBuffer slabs,
 *   with reads running ahead of the chunker;
 * - the content's SHA-256 runs on a worker thread, straight from the slabs
 *   (repo.contentHasher), while the calling thread chunks; it covers the data
 *   chunks only, recorded as `dataSha256` when the content has zero runs
 *   (contentDigest.ts): the zeros of holes are never hashed;
 * - the holes of a sparse file (holes.ts) are not read at all: each 1 MiB
 *   piece that lies in a hole goes to the cutter by length;
 * - 64 KiB blocks of zeros (holes not mapped, zeros written as data) go to the
 *   cutter by length too: no gear hash per byte, no copy, no blob ID;
 * - the cutter hands out each chunk as views of the slabs (ChunkParts);
 *   repo.saveChunkParts computes its ID over them and copies a chunk out
 *   only when it is new, into a buffer of its own that moves to a worker
 *   (compression + encryption) uncopied: a changed file's unchanged stretches
 *   cost the ID, not a copy.
 * The chunk boundaries, and so the blob IDs, are the same on both paths.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type {
  ChunkParts,
  ChunkSink,
  Chunker,
  ContentHasher,
  Repo,
  SaveBlobResult,
  ZeroChunk,
} from '../../repository/api.js';
import { joinParts } from '../../repository/chunker.js';
import type { ContentRef } from '../../repository/tree.js';
import type { ContentDigest } from './contentDigest.js';
import { HoleMap, sparseDataRanges } from './holes.js';
import type { Semaphore } from './semaphore.js';
import { isAllZero, isAllZeroParts, isZeroRange, pushZero, SHARED_ZEROS, sharedZeros } from './zeroRuns.js';

/** Files below this size are read with one call: no stream, no per-read overhead. */
export const SMALL_FILE = 1024 * 1024;
/**
 * Files below this size are read with one synchronous read on the calling
 * thread, into a scratch buffer reused for every file, and hashed there: a
 * thread-pool round trip (and a FileHandle) per open/read/stat/close costs
 * more main-thread time than the few microseconds of a read from the page
 * cache, and it dominates a backup of many small files.
 */
export const SYNC_READ_MAX = 256 * 1024;
const READ_SIZE = 1024 * 1024;
/** Reused by every synchronous small-file read; nothing holds it across an await (see storeSmallFile). */
let scratch: Buffer | undefined;
/** Reads started beyond the piece being chunked. */
const READ_AHEAD = 2;
/** Slabs kept for reuse; more are allocated only while the cutter still holds the oldest (bounded by its maxSize). */
const SLAB_POOL = 8;
/** Longest piece of a hole handed out at once: a view of all the shared zeros. */
const HOLE_PIECE = SHARED_ZEROS;
/** Zero runs are detected in blocks of this size (aligned to the read). */
const ZERO_BLOCK = 64 * 1024;

/** A read from the source failed: a warning for this file, not a failure of the backup. */
export class SourceReadError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

export interface StoredContent {
  content: ContentRef[];
  digest: ContentDigest;
  /** Bytes read (the size the file had while it was read). */
  size: number;
  addedBytes: number;
  newBlobs: number;
}

async function* readAll(fh: FileHandle, expectedSize: number): AsyncGenerator<Uint8Array> {
  if (expectedSize < SMALL_FILE) {
    // One read of at most size + 1 bytes: no stream, no extra fstat, and never unbounded even if
    // the file was swapped for something endless. A longer read means the file grew; the caller's
    // after-read check reports it.
    const buf = Buffer.allocUnsafe(expectedSize + 1);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, 0, buf.length, 0));
    } catch (err) {
      throw new SourceReadError(err);
    }
    if (bytesRead > 0) yield buf.subarray(0, bytesRead);
    return;
  }
  let position = 0;
  for (;;) {
    // A fresh buffer per read: the chunker may hold on to it.
    const buf = Buffer.allocUnsafe(READ_SIZE);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, 0, READ_SIZE, position));
    } catch (err) {
      throw new SourceReadError(err);
    }
    if (bytesRead === 0) return;
    position += bytesRead;
    yield bytesRead === READ_SIZE ? buf : buf.subarray(0, bytesRead);
  }
}

export interface StoreContentOptions {
  /** The repository's chunker (one per run: it is stateless between calls). */
  chunker: Chunker;
  blobSlots: Semaphore;
  onBytes?: (n: number) => void;
  checkAbort?: () => void;
}

/** Chunk, hash and save the content of an open file. Throws SourceReadError when reading fails. */
export async function storeFileContent(
  repo: Repo,
  fh: FileHandle,
  expectedSize: number,
  opts: StoreContentOptions,
): Promise<StoredContent> {
  if (expectedSize >= SMALL_FILE) {
    // Parts only where the repository can take them; either way the chunks (and IDs) are the same.
    const cutter = repo.saveChunkParts ? opts.chunker.partsCutter?.() : undefined;
    if (cutter) return storeLargeFile(repo, fh, expectedSize, cutter, opts);
    const copyingCutter = opts.chunker.cutter?.();
    if (copyingCutter) return storeLargeFile(repo, fh, expectedSize, copyingCutter, opts);
  }
  const hash = createHash('sha256');
  const saver = new BlobSaver(repo, opts.blobSlots);
  let size = 0;
  try {
    for await (const chunk of opts.chunker.chunks(readAll(fh, expectedSize))) {
      if (saver.failed) break;
      opts.checkAbort?.();
      hash.update(chunk);
      size += chunk.length;
      opts.onBytes?.(chunk.length);
      await saver.add(chunk);
    }
  } finally {
    // Never leave saves running behind our back, even when reading failed.
    await saver.settle();
  }
  saver.throwIfFailed();
  const digest = { hex: hash.digest('hex'), dataOnly: false };
  return { content: saver.content, digest, size, ...saver.added() };
}

/**
 * Chunk, hash and save a file of fewer than SYNC_READ_MAX bytes, open as `fd`:
 * one bounded synchronous read of at most size + 1 bytes (a longer read means
 * the file grew; the caller's after-read check reports it). Reading, hashing
 * and cutting finish before the first await, and the cutter copies every
 * chunk out, so the shared scratch buffer is free again when this yields.
 * Throws SourceReadError when reading fails.
 */
export async function storeSmallFile(
  repo: Repo,
  fd: number,
  expectedSize: number,
  opts: StoreContentOptions,
): Promise<StoredContent> {
  if (expectedSize >= SYNC_READ_MAX) throw new RangeError(`not a small file: ${expectedSize} bytes`);
  scratch ??= Buffer.allocUnsafeSlow(SYNC_READ_MAX + 1);
  let size: number;
  try {
    size = readSync(fd, scratch, 0, expectedSize + 1, 0);
  } catch (err) {
    throw new SourceReadError(err);
  }
  opts.checkAbort?.();
  const data = scratch.subarray(0, size);
  const digest = { hex: createHash('sha256').update(data).digest('hex'), dataOnly: false };
  const chunks: (Uint8Array | ZeroChunk)[] = [];
  const cutter = opts.chunker.cutter?.();
  if (cutter) {
    if (size > 0) cutter.pushInto(data, chunks);
    const last = cutter.endChunk();
    if (last) chunks.push(last);
  } else if (size > 0) {
    const copy = Buffer.from(data); // the async chunker may hold its input past an await
    const input = (async function* () {
      yield copy;
    })();
    for await (const chunk of opts.chunker.chunks(input)) chunks.push(chunk);
  }
  opts.onBytes?.(size);
  const saver = new BlobSaver(repo, opts.blobSlots);
  try {
    for (const chunk of chunks) {
      if (saver.failed) break;
      await saver.add(chunk);
    }
  } finally {
    await saver.settle();
  }
  saver.throwIfFailed();
  return { content: saver.content, digest, size, ...saver.added() };
}

/** The fast path for large files; see the file comment. */
async function storeLargeFile<C extends Uint8Array | ChunkParts>(
  repo: Repo,
  fh: FileHandle,
  expectedSize: number,
  cutter: ChunkSink<C>,
  opts: StoreContentOptions,
): Promise<StoredContent> {
  const ranges = await sparseDataRanges(fh, expectedSize);
  const hasher = repo.contentHasher?.() ?? inlineHasher();
  const reader = new SlabReader(fh, ranges && { map: new HoleMap(ranges), size: expectedSize });
  const saver = new BlobSaver(repo, opts.blobSlots);
  const hash = new DataHash(hasher);
  const hashData = (data: Uint8Array | ChunkParts) => hash.add(data);
  const chunks: (C | ZeroChunk)[] = [];
  let size = 0;
  let hex: string | undefined;
  try {
    for (;;) {
      if (saver.failed) break;
      const next = await reader.next();
      if (!next) break;
      const piece = next.data;
      opts.checkAbort?.();
      if (next.hole) cutter.pushZeros(piece.length, chunks);
      else feedPiece(cutter, piece, chunks);
      size += piece.length;
      reader.retire(size);
      opts.onBytes?.(piece.length);
      // Each add has read its chunk's parts (views of slabs) by the time it resolves.
      for (const chunk of chunks) await saver.add(chunk, hashData);
      chunks.length = 0;
      // A slab can be read into again once the cutter has let go of it and its bytes are hashed.
      reader.releaseBefore(size - cutter.pendingBytes, hash.read);
    }
    const last = saver.failed ? undefined : cutter.endChunk();
    if (last) await saver.add(last, hashData);
    hex = await hash.digest();
  } finally {
    await saver.settle();
    await reader.close();
    // A stream left open on a worker holds its state there: end it even when reading failed.
    if (hex === undefined) await hasher.digest().catch(() => undefined);
  }
  saver.throwIfFailed();
  // Without zero runs, the data chunks are the whole content: the same hash as sha256.
  const dataOnly = saver.content.some((ref) => typeof ref !== 'string');
  return { content: saver.content, digest: { hex, dataOnly }, size, ...saver.added() };
}

/**
 * The SHA-256 of the data chunks of a file, in order (contentDigest.ts): the
 * chunks that become zero runs are left out; the zero runs inside a data
 * chunk are hashed as zeros.
 */
class DataHash {
  /** Settles once every byte given so far has been read by the hasher (updates settle in order). */
  read: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(private readonly hasher: ContentHasher) {}

  /** Hash the next data chunk of the content (BlobSaver.add tells which chunks are data). */
  add(chunk: Uint8Array | ChunkParts): void {
    if (chunk instanceof Uint8Array) {
      this.update(chunk);
      return;
    }
    for (const part of chunk.parts) {
      if (typeof part !== 'number') this.update(part);
      else for (let left = part; left > 0; left -= SHARED_ZEROS) this.update(sharedZeros(left));
    }
  }

  async digest(): Promise<string> {
    const hex = await this.hasher.digest();
    if (this.failure !== undefined) throw this.failure;
    return hex;
  }

  private update(data: Uint8Array): void {
    this.read = this.hasher.update(data).catch((err: unknown) => {
      this.failure ??= err;
    });
  }
}

/** Hand one piece to the cutter: runs of all-zero 64 KiB blocks by length, the rest as bytes. */
function feedPiece<C>(cutter: ChunkSink<C>, piece: Buffer, out: (C | ZeroChunk)[]): void {
  const n = piece.length;
  let dataFrom = 0; // start of the bytes not yet pushed
  for (let at = 0; at + ZERO_BLOCK <= n; at += ZERO_BLOCK) {
    if (!isZeroRange(piece, at, at + ZERO_BLOCK)) continue;
    let end = at + ZERO_BLOCK;
    while (end + ZERO_BLOCK <= n && isZeroRange(piece, end, end + ZERO_BLOCK)) end += ZERO_BLOCK;
    if (at > dataFrom) cutter.pushInto(piece.subarray(dataFrom, at), out);
    cutter.pushZeros(end - at, out);
    dataFrom = end;
    at = end - ZERO_BLOCK;
  }
  if (dataFrom < n) cutter.pushInto(piece.subarray(dataFrom), out);
}

/** The whole-file hash on the calling thread, for repositories without contentHasher. */
function inlineHasher(): ContentHasher {
  const hash = createHash('sha256');
  return {
    update: (data) => {
      hash.update(data);
      return Promise.resolve();
    },
    digest: () => Promise.resolve(hash.digest('hex')),
  };
}

/** Saves the chunks of one file in order of content, several at once, and collects the refs. */
class BlobSaver {
  readonly content: ContentRef[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private addedBytes = 0;
  private newBlobs = 0;

  constructor(
    private readonly repo: Repo,
    private readonly slots: Semaphore,
  ) {}

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Record a zero run, or start saving a chunk (waits for a free blob slot).
   * A chunk of bytes is given away; a chunk of parts is read before this resolves.
   * `onData` sees every chunk that is stored as data (not a zero run), before it is given away.
   */
  async add(
    chunk: Uint8Array | ChunkParts | ZeroChunk,
    onData?: (data: Uint8Array | ChunkParts) => void,
  ): Promise<void> {
    if ('zero' in chunk) {
      pushZero(this.content, chunk.zero);
      return;
    }
    if (chunk instanceof Uint8Array ? isAllZero(chunk) : isAllZeroParts(chunk.parts)) {
      pushZero(this.content, chunk.length);
      return;
    }
    onData?.(chunk);
    const index = this.content.push('') - 1;
    const release = await this.slots.acquire();
    const saving: Promise<void> = this.save(chunk)
      .then(
        (saved) => {
          this.content[index] = saved.id;
          if (saved.stored) {
            this.addedBytes += saved.length;
            this.newBlobs++;
          }
        },
        (err: unknown) => {
          this.failure ??= err;
        },
      )
      .finally(() => {
        release();
        this.inFlight.delete(saving);
      });
    this.inFlight.add(saving);
  }

  /** saveBlob, or saveChunkParts for parts (joined first when the repository lacks it). */
  private save(chunk: Uint8Array | ChunkParts): Promise<SaveBlobResult> {
    if (chunk instanceof Uint8Array) return this.repo.saveBlob('data', chunk, { transfer: true });
    if (this.repo.saveChunkParts) return this.repo.saveChunkParts(chunk);
    return this.repo.saveBlob('data', joinParts(chunk.parts, chunk.length), { transfer: true });
  }

  /** Wait for every save started. */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  added(): { addedBytes: number; newBlobs: number } {
    return { addedBytes: this.addedBytes, newBlobs: this.newBlobs };
  }
}

interface SlabInUse {
  slab: Buffer;
  /** File offset just past the slab's bytes. */
  end: number;
}

/** The consumer's word that the bytes before `offset` are free once `done` settles. */
interface Release {
  offset: number;
  done: Promise<void>;
}

interface SlabRead {
  /** Undefined for a piece that lies in a hole: nothing is read. */
  slab: Buffer | undefined;
  position: number;
  /** Bytes asked for: fewer means the end of the file. */
  length: number;
  read: Promise<number>;
}

/** A piece of the file: a view of a slab, or of shared zeros for a hole. */
interface Piece {
  data: Buffer;
  hole: boolean;
}

/** The holes of the file being read, and its size when they were mapped. */
interface KnownHoles {
  map: HoleMap;
  size: number;
}

/**
 * Reads a file front to back into 1 MiB SharedArrayBuffer slabs (shared so
 * the hashing worker reads them in place), READ_AHEAD reads ahead of the
 * consumer, reusing a slab once the consumer retired it and released the
 * bytes up to its end. With
 * `holes`, a piece that lies wholly in a hole is not read: it is a view of
 * shared zeros (a hole reaching the mapped size ends the file there, as a
 * short read would; the caller's after-read check sees a file that grew).
 */
class SlabReader {
  private readonly free: Buffer[] = [];
  private readonly inUse: SlabInUse[] = [];
  private readonly ahead: SlabRead[] = [];
  private slabs = 0;
  /** File offset of the next piece handed out, and of the next read started. */
  private position = 0;
  private nextRead = 0;
  /** Bytes before this file offset are free. */
  private releasedBefore = 0;
  /** Releases whose `done` has not settled yet, in order of offset. */
  private readonly releases: Release[] = [];
  private atEnd = false;
  /** The slab of the last piece handed out, until retired. */
  private handedOut: Buffer | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly holes?: KnownHoles,
  ) {}

  /** The next piece of the file, or undefined at its end. */
  async next(): Promise<Piece | undefined> {
    if (this.atEnd) return undefined;
    if (this.ahead.length === 0 && !this.skipHole()) this.start(await this.slab());
    const current = this.ahead.shift()!;
    while (this.ahead.length < READ_AHEAD) {
      if (this.skipHole()) continue;
      const slab = this.slabNow();
      if (!slab) break;
      this.start(slab);
    }
    let bytesRead: number;
    try {
      bytesRead = await current.read;
    } catch (err) {
      this.recycle(current.slab);
      throw new SourceReadError(err);
    }
    if (bytesRead < current.length) {
      // End of file (or it changed size under us): reads started beyond this point are void.
      await this.dropReadsAhead();
      this.nextRead = this.position + bytesRead;
      if (bytesRead === 0) {
        this.atEnd = true;
        this.recycle(current.slab);
        return undefined;
      }
    }
    this.position += bytesRead;
    this.handedOut = current.slab;
    if (!current.slab) return { data: sharedZeros(bytesRead), hole: true };
    return { data: current.slab.subarray(0, bytesRead), hole: false };
  }

  /** The consumer has taken the last piece (ending at file offset `end`); its slab stays until released. */
  retire(end: number): void {
    const slab = this.handedOut;
    this.handedOut = undefined;
    if (!slab) return; // a hole: nothing was read, nothing to recycle
    this.inUse.push({ slab, end });
  }

  /** The consumer no longer needs any byte before file offset `offset` once `done` settles (it never rejects). */
  releaseBefore(offset: number, done: Promise<void>): void {
    const release: Release = {
      offset,
      done: done.then(() => {
        this.releasedBefore = Math.max(this.releasedBefore, offset);
        this.releases.splice(this.releases.indexOf(release), 1);
      }),
    };
    this.releases.push(release);
  }

  /** Wait for reads still running (their slabs are dropped). */
  async close(): Promise<void> {
    await this.dropReadsAhead();
  }

  /**
   * When the next read would lie wholly in a hole: queue the hole instead, as
   * one piece of up to HOLE_PIECE bytes (whole reads, so that later reads stay
   * aligned), without a read or a slab, and return true.
   */
  private skipHole(): boolean {
    const holes = this.holes;
    const position = this.nextRead;
    if (!holes) return false;
    let length = 0;
    for (let at = position; at < holes.size && length < HOLE_PIECE; at += READ_SIZE) {
      if (!holes.map.isHole(at, Math.min(at + READ_SIZE, holes.size))) break;
      length += READ_SIZE;
    }
    if (length === 0) return false;
    this.nextRead += length;
    const present = Math.min(length, holes.size - position); // a hole that ends the file is cut at its size
    this.ahead.push({ slab: undefined, position, length, read: Promise.resolve(present) });
    return true;
  }

  private recycle(slab: Buffer | undefined): void {
    if (slab) this.free.push(slab);
  }

  private start(slab: Buffer): void {
    const position = this.nextRead;
    this.nextRead += READ_SIZE;
    const read = this.fh.read(slab, 0, READ_SIZE, position).then((r) => r.bytesRead);
    read.catch(() => {}); // observed by next() or dropReadsAhead()
    this.ahead.push({ slab, position, length: READ_SIZE, read });
  }

  private async dropReadsAhead(): Promise<void> {
    for (const r of this.ahead.splice(0)) {
      await r.read.catch(() => 0);
      this.recycle(r.slab);
    }
  }

  /** A free slab if one is at hand: reused, or new while the pool is not full. */
  private slabNow(): Buffer | undefined {
    while (this.inUse.length > 0 && this.inUse[0]!.end <= this.releasedBefore) {
      this.free.push(this.inUse.shift()!.slab);
    }
    const reused = this.free.pop();
    if (reused) return reused;
    if (this.slabs < SLAB_POOL) return this.newSlab();
    return undefined;
  }

  /** A slab for the read the consumer waits for: waits for hashing; grows the pool past the cutter's hold. */
  private async slab(): Promise<Buffer> {
    for (;;) {
      const slab = this.slabNow();
      if (slab) return slab;
      const oldest = this.inUse[0];
      const release = oldest && this.releases.find((r) => r.offset >= oldest.end);
      // Held by the cutter (a chunk in progress spans the pool): only a new slab lets it reach a cut.
      if (!release) return this.newSlab();
      await release.done;
    }
  }

  private newSlab(): Buffer {
    this.slabs++;
    return Buffer.from(new SharedArrayBuffer(READ_SIZE));
  }
}
