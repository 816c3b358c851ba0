/**
 * The SHA-256 of a file being restored, fed in file order (fileWriter.ts).
 * Small files hash on the calling thread: a worker round trip would cost
 * more than the hash. Large files hash on a repository worker
 * (Repo.contentHasher, as the backup does), so that the thread that opens
 * and writes the chunks does not also hash every byte — for a sparse image,
 * mostly its holes, which are fed as views of a shared zero buffer and so
 * cost neither a copy nor a read.
 */
import { createHash } from 'node:crypto';
import type { ContentHasher } from '../../repository/api.js';
import { sharedZeros, zeroSlice } from './zeroRuns.js';

export interface RestoreHash {
  /**
   * Hash `data` next; the caller never changes it afterwards (a worker may
   * read it later) and, with `give`, never reads it again either (it may be
   * moved to the worker and detached).
   */
  update(data: Uint8Array, give?: boolean): void;
  /** Hash `length` zero bytes next. */
  updateZeros(length: number): void;
  /** While too much is queued for hashing: a promise to wait on before writing more. */
  backlog(): Promise<void> | undefined;
  /** The hex digest; rejects when hashing failed. */
  digest(): Promise<string>;
  /** Forget the hash (the file failed): frees what it holds elsewhere. */
  abandon(): void;
}

/** Bytes queued for a worker before the writer waits (data is copied when queued). */
const MAX_QUEUED = 4 * 1024 * 1024;

/** Hashing on the calling thread. */
export class InlineHash implements RestoreHash {
  private readonly hash = createHash('sha256');

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  updateZeros(length: number): void {
    for (let left = length; left > 0;) {
      const piece = zeroSlice(left);
      this.hash.update(piece);
      left -= piece.length;
    }
  }

  backlog(): undefined {
    return undefined;
  }

  digest(): Promise<string> {
    return Promise.resolve(this.hash.digest('hex'));
  }

  abandon(): void {}
}

/** Hashing on a repository worker, with a bounded queue. */
export class WorkerHash implements RestoreHash {
  private queuedBytes = 0;
  /** Updates not yet read by the worker, oldest first. */
  private readonly queue = new Set<Promise<void>>();
  private failure: unknown;
  private digesting: Promise<string> | undefined;
  private fed = false;

  constructor(private readonly hasher: ContentHasher) {}

  update(data: Uint8Array, give = false): void {
    this.send(data, give);
  }

  updateZeros(length: number): void {
    for (let left = length; left > 0;) {
      const piece = sharedZeros(left);
      this.send(piece);
      left -= piece.length;
    }
  }

  backlog(): Promise<void> | undefined {
    if (this.queuedBytes <= MAX_QUEUED) return undefined;
    return this.drainTo(MAX_QUEUED);
  }

  async digest(): Promise<string> {
    this.digesting ??= this.hasher.digest();
    const hex = await this.digesting;
    await Promise.all(this.queue); // settled already (the worker answers in order); records a failure
    if (this.failure !== undefined) throw this.failure;
    return hex;
  }

  abandon(): void {
    // A stream left open holds its state on the worker: end it (a stream never fed has none).
    if (!this.fed) return;
    this.digesting ??= this.hasher.digest();
    this.digesting.catch(() => {});
  }

  private send(data: Uint8Array, give = false): void {
    this.fed = true;
    const bytes = data.length;
    const read: Promise<void> = this.hasher
      .update(data, give)
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.queuedBytes -= bytes;
        this.queue.delete(read);
      });
    this.queuedBytes += bytes;
    this.queue.add(read);
  }

  private async drainTo(limit: number): Promise<void> {
    for (const read of this.queue) {
      if (this.queuedBytes <= limit) return;
      await read;
    }
  }
}

/** Files from this size on hash on a worker when the repository offers one. */
export const WORKER_HASH_MIN = 4 * 1024 * 1024;

/** The hash for a file of `size` bytes. */
export function restoreHash(size: number, hasher: (() => ContentHasher) | undefined): RestoreHash {
  return size >= WORKER_HASH_MIN && hasher ? new WorkerHash(hasher()) : new InlineHash();
}
