/**
 * One restored file's content, written as its chunks arrive — in the order
 * the restore reads them from the packs, not necessarily file order. Each
 * chunk goes to its offset with a positioned write; zero runs are skipped to
 * leave holes (the final truncate gives the file its length), and so are the
 * aligned 64 KiB blocks of zeros inside a chunk (a chunk that runs from data
 * into a hole) when the file was created empty (O_EXCL). The whole file
 * is hashed for comparison with the SHA-256 recorded at backup, in file order,
 * as the chunks arrive: zero runs are hashed as zeros (never read back from
 * the holes), and a chunk that arrives ahead of its turn (packs not quite in
 * file order, a chunk repeated further on in the file) is kept in memory until
 * the hash reaches it — or, beyond a memory budget shared by all files, read
 * back from the file then, only its own range. The file is never read back
 * as a whole: for a sparse image that cost a second pass over every hole.
 *
 * Every file call is synchronous on purpose, the creation included: writes
 * into the page cache, a create and the metadata calls on an open descriptor
 * cost less than a thread-pool round trip (docs/performance.md, "Where
 * lifeboat loses time").
 */
import {
  closeSync,
  constants as fsConstants,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { IntegrityError } from '../../errors.js';
import type { BlobId, ContentRef } from '../../repository/tree.js';
import { InlineHash, type RestoreHash } from './restoreHash.js';
import { isZeroRange } from './zeroRuns.js';

/** Aligned blocks of zeros this large inside a chunk are left as holes (a multiple of any file system block). */
const HOLE_BLOCK = 64 * 1024;

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** pwrite all of data[offset, offset + length) at `position`. */
function writeRange(fd: number, data: Uint8Array, offset: number, length: number, position: number): void {
  for (let done = 0; done < length;) {
    done += writeSync(fd, data, offset + done, length - done, position + done);
  }
}

/** Read size when an early chunk is hashed from the file. */
const READ_BACK = 1024 * 1024;

/** Bytes of early chunks kept in memory by all files together (more are read back from the file). */
export const EARLY_BYTES = 16 * 1024 * 1024;

/** How many bytes of early chunks may be held; shared by every ContentFile of a process by default. */
export class HoldBudget {
  private held = 0;
  constructor(private readonly max: number) {}

  /** Reserve `n` bytes; false when they do not fit. */
  take(n: number): boolean {
    if (this.held + n > this.max) return false;
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held -= n;
  }
}

const sharedBudget = new HoldBudget(EARLY_BYTES);

export interface WrittenContent {
  size: number;
  sha256: string;
}

/** Plaintext length of a chunk when known before it is read (from the index), else undefined. */
export type LengthOf = (id: BlobId) => number | undefined;

export interface ContentFileOptions {
  /** Where the content is hashed (default: on this thread). */
  hash?: RestoreHash;
  /** Memory for early chunks (default: shared by every file). */
  budget?: HoldBudget;
  /** False: zero runs are left out of the hash (a `dataSha256`, contentDigest.ts); default true. */
  hashZeros?: boolean;
}

export class ContentFile {
  /** Blob references not yet written. */
  private remaining = 0;
  /** starts[i] = offset of refs[i], known while the lengths before it are (starts[refs.length]: the size). */
  private readonly starts: number[] = [0];
  private fd: number | undefined;
  private opening: Promise<void> | undefined;
  /** `dest` was created by this writer (so discard() removes it). */
  private created = false;
  private discarded = false;
  private readonly hash: RestoreHash;
  private readonly budget: HoldBudget;
  private readonly hashZeros: boolean;
  /** refs[0, hashed) are in the hash. */
  private hashed = 0;
  /** Chunks written ahead of the hash: their data when held (within the budget), else null (read back). */
  private readonly early = new Map<number, { data: Uint8Array; give: boolean } | null>();
  /** Bytes of `early` taken from the budget. */
  private heldBytes = 0;
  /** One past the last byte written so far. */
  private written = 0;
  /** Index of the first ref not yet given to a restore batch (see restorePlan.ts). */
  planned = 0;

  constructor(
    /** Where the content is written (the final path or a temp sibling); created by start(). */
    readonly dest: Buffer,
    readonly refs: readonly ContentRef[],
    private readonly createFlags: number,
    private readonly lengthOf: LengthOf,
    opts: ContentFileOptions = {},
  ) {
    this.hash = opts.hash ?? new InlineHash();
    this.budget = opts.budget ?? sharedBudget;
    this.hashZeros = opts.hashZeros ?? true;
    for (const ref of refs) if (typeof ref === 'string') this.remaining++;
    this.extendStarts();
    this.advanceHash();
  }

  /** Every chunk has been written. */
  get complete(): boolean {
    return this.remaining === 0;
  }

  /** The file is created and open: write() and finish() may be called. */
  get ready(): boolean {
    return this.fd !== undefined;
  }

  /**
   * Create `dest` (once; later calls return the same promise). O_EXCL | O_NOFOLLOW: never through a
   * symlink. Synchronous, like the writes: on the thread pool each creation cost the calling thread a
   * wake-up of a pool thread and its own slice of the two cores, more than the create itself
   * (docs/performance.md, "restore: files created on the calling thread").
   */
  start(): Promise<void> {
    this.opening ??= (() => {
      if (this.discarded) return Promise.reject(new Error(`${this.dest.toString()} was discarded`));
      try {
        this.fd = openSync(this.dest, this.createFlags, 0o600);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      this.created = true;
      return Promise.resolve();
    })();
    return this.opening;
  }

  /**
   * Write the chunk of refs[index] (`data` is its verified plaintext; it must
   * not change afterwards: a chunk ahead of the hash may be held). With
   * `give`, the caller has no other use for `data` (nor has anyone else): it
   * may move to the hashing worker instead of being copied there, detached.
   * Returns a promise to wait on before writing more while the hash lags behind.
   */
  write(index: number, data: Uint8Array, give = false): Promise<void> | undefined {
    if (index >= this.starts.length) {
      throw new IntegrityError(
        `chunk ${index} arrived before the lengths of the chunks before it were known`,
      );
    }
    if (index === this.starts.length - 1 && index < this.refs.length) {
      this.starts.push(this.starts[index]! + data.length);
      this.extendStarts();
    }
    const position = this.starts[index]!;
    if (this.starts[index + 1]! - position !== data.length) {
      throw new IntegrityError(
        `chunk ${index} has ${data.length} bytes, the index says ${this.starts[index + 1]! - position}`,
      );
    }
    this.writeAt(data, position);
    this.remaining--;
    if (index === this.hashed) {
      this.hash.update(data, give);
      this.hashed++;
      this.advanceHash();
    } else {
      this.keepEarly(index, data, give);
    }
    return this.hash.backlog();
  }

  /** After the last chunk: give the file its length and return size and SHA-256. The descriptor stays open. */
  async finish(): Promise<WrittenContent> {
    const size = this.starts.length > this.refs.length ? this.starts[this.refs.length]! : -1;
    if (!this.complete || size < 0) throw new IntegrityError('the file content is incomplete');
    const fd = this.requireFd();
    // A file created empty (O_EXCL) whose last write ends at its size has that size already: one syscall
    // less per file. Otherwise (a trailing hole, or a file that may have existed) truncate sets the length.
    if (this.written !== size || (this.createFlags & fsConstants.O_EXCL) === 0) ftruncateSync(fd, size);
    // Every chunk is written, so advanceHash() has consumed every early one.
    if (this.hashed !== this.refs.length) throw new IntegrityError('the file content was not hashed in full');
    return { size, sha256: await this.hash.digest() };
  }

  /** The open descriptor (after finish), for the metadata calls of the caller. */
  get descriptor(): number {
    return this.requireFd();
  }

  /** Close the descriptor (the file stays). */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  /** Close and remove what was written; never throws. */
  discard(): void {
    this.dropEarly();
    this.hash.abandon();
    try {
      this.close();
    } catch {
      // Nothing more to do with a descriptor that does not close.
    }
    this.discarded = true;
    if (this.created) {
      this.created = false;
      try {
        unlinkSync(this.dest);
      } catch {
        // Already gone.
      }
    }
  }

  private requireFd(): number {
    if (this.fd === undefined) throw new Error(`${this.dest.toString()} is not open`);
    return this.fd;
  }

  /** Compute further offsets while the lengths of the refs are known. */
  private extendStarts(): void {
    while (this.starts.length <= this.refs.length) {
      const ref = this.refs[this.starts.length - 1]!;
      const length = typeof ref === 'string' ? this.lengthOf(ref) : ref.zero;
      if (length === undefined) return;
      this.starts.push(this.starts[this.starts.length - 1]! + length);
    }
  }

  /** Write `data` at `position`, leaving its aligned zero blocks unwritten when the file was created empty. */
  private writeAt(data: Uint8Array, position: number): void {
    const fd = this.requireFd();
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
    // Where nothing is written, only a file created empty reads as zeros.
    const holesAllowed = (this.createFlags & fsConstants.O_EXCL) !== 0;
    let from = 0; // bytes before `from` are written or left as a hole
    for (
      let at = alignUp(position, HOLE_BLOCK) - position;
      holesAllowed && at + HOLE_BLOCK <= bytes.length;
      at += HOLE_BLOCK
    ) {
      if (!isZeroRange(bytes, at, at + HOLE_BLOCK)) continue;
      if (at > from) this.writeUpTo(fd, bytes, from, at, position);
      from = at + HOLE_BLOCK;
    }
    if (from < bytes.length) this.writeUpTo(fd, bytes, from, bytes.length, position);
  }

  /** Write bytes[from, to) of the chunk at `position`. */
  private writeUpTo(fd: number, bytes: Buffer, from: number, to: number, position: number): void {
    writeRange(fd, bytes, from, to - from, position + from);
    this.written = Math.max(this.written, position + to);
  }

  /** refs[index] was written before the hash got to it: hold its data while the budget allows. */
  private keepEarly(index: number, data: Uint8Array, give: boolean): void {
    if (this.budget.take(data.length)) {
      this.heldBytes += data.length;
      this.early.set(index, { data, give });
    } else {
      this.early.set(index, null);
    }
  }

  /** Hash what follows the hashed prefix while it is there: zero runs (holes are never written), early chunks. */
  private advanceHash(): void {
    for (let ref = this.refs[this.hashed]; ref !== undefined; ref = this.refs[++this.hashed]) {
      if (typeof ref !== 'string') {
        if (this.hashZeros) this.hash.updateZeros(ref.zero);
        continue;
      }
      const held = this.early.get(this.hashed);
      if (held === undefined) return; // not written yet
      this.early.delete(this.hashed);
      if (held) {
        const length = held.data.length;
        this.hash.update(held.data, held.give);
        this.heldBytes -= length;
        this.budget.give(length);
      } else {
        this.hashFromFile(this.starts[this.hashed]!, this.starts[this.hashed + 1]!);
      }
    }
  }

  /** Hash the written bytes [from, to) of the file (an early chunk that was not held). */
  private hashFromFile(from: number, to: number): void {
    const fd = this.requireFd();
    const buf = Buffer.allocUnsafe(Math.min(READ_BACK, to - from));
    for (let position = from; position < to;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, to - position), position);
      if (n === 0) throw new IntegrityError(`the restored file ends at ${position}, before ${to}`);
      this.hash.update(buf.subarray(0, n));
      position += n;
    }
  }

  /** Give the held bytes back to the budget (the file failed). */
  private dropEarly(): void {
    this.budget.give(this.heldBytes);
    this.heldBytes = 0;
    this.early.clear();
  }
}
