/**
 * One restored file's content, written as its chunks arrive — in the order
 * the restore reads them from the packs, not necessarily file order. Each
 * chunk goes to its offset with a positioned write; zero runs are skipped to
 * leave holes (the final truncate gives the file its length). The whole file
 * is hashed for comparison with the SHA-256 recorded at backup: on the fly
 * while chunks arrive in file order (the usual case: a backup packs a file's
 * chunks in order), else by reading the file back at the end.
 *
 * Creating the file is asynchronous (start()): it is the costly call of a
 * restore, and several creations run at once on the thread pool. Everything
 * after it is synchronous on purpose: writes into the page cache and the
 * metadata calls on an open descriptor cost less than a thread-pool round
 * trip (docs/performance.md, "Where lifeboat loses time").
 */
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  ftruncateSync,
  open,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { IntegrityError } from '../../errors.js';
import type { BlobId, ContentRef } from '../../repository/tree.js';
import { zeroSlice } from './zeroRuns.js';

const READ_BACK = 1024 * 1024;

export interface WrittenContent {
  size: number;
  sha256: string;
}

/** Plaintext length of a chunk when known before it is read (from the index), else undefined. */
export type LengthOf = (id: BlobId) => number | undefined;

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
  private hash: Hash | undefined = createHash('sha256');
  /** refs[0, hashed) are in the hash. */
  private hashed = 0;
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
  ) {
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

  /** Create `dest` (once; later calls return the same promise). O_EXCL | O_NOFOLLOW: never through a symlink. */
  start(): Promise<void> {
    this.opening ??= new Promise((resolve, reject) => {
      open(this.dest, this.createFlags, 0o600, (err, fd) => {
        if (err) return reject(err);
        this.created = true;
        this.fd = fd;
        if (!this.discarded) return resolve();
        // Discarded while being created: nothing may be left behind.
        this.discard();
        reject(new Error(`${this.dest.toString()} was discarded`));
      });
    });
    return this.opening;
  }

  /** Write the chunk of refs[index] (`data` is its verified plaintext). */
  write(index: number, data: Uint8Array): void {
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
    const fd = this.requireFd();
    for (let done = 0; done < data.length;) {
      done += writeSync(fd, data, done, data.length - done, position + done);
    }
    this.written = Math.max(this.written, position + data.length);
    this.remaining--;
    if (this.hash && index === this.hashed) {
      this.hash.update(data);
      this.hashed++;
      this.advanceHash();
    } else if (index > this.hashed) {
      this.hash = undefined; // out of file order: hash the file from disk at the end
    }
  }

  /** After the last chunk: give the file its length and return size and SHA-256. The descriptor stays open. */
  finish(): WrittenContent {
    const size = this.starts.length > this.refs.length ? this.starts[this.refs.length]! : -1;
    if (!this.complete || size < 0) throw new IntegrityError('the file content is incomplete');
    const fd = this.requireFd();
    // A file created empty (O_EXCL) whose last write ends at its size has that size already: one syscall
    // less per file. Otherwise (a trailing hole, or a file that may have existed) truncate sets the length.
    if (this.written !== size || (this.createFlags & fsConstants.O_EXCL) === 0) ftruncateSync(fd, size);
    return {
      size,
      sha256:
        this.hash && this.hashed === this.refs.length ? this.hash.digest('hex') : this.readBack(fd, size),
    };
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

  /** Hash the zero runs that follow the hashed prefix (holes are never written). */
  private advanceHash(): void {
    if (!this.hash) return;
    for (
      let ref = this.refs[this.hashed];
      ref !== undefined && typeof ref !== 'string';
      ref = this.refs[++this.hashed]
    ) {
      for (let left = ref.zero; left > 0;) {
        const piece = zeroSlice(left);
        this.hash.update(piece);
        left -= piece.length;
      }
    }
  }

  private readBack(fd: number, size: number): string {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(READ_BACK, Math.max(size, 1)));
    for (let position = 0; position < size;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - position), position);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      position += n;
    }
    return hash.digest('hex');
  }
}
