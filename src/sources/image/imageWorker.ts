/**
 * The image job's byte-heavy work on a worker thread, so the main thread is
 * left to the repository (blob IDs, encryption, packing) while the image is
 * read and hashed:
 *
 * - `ImageReader` (backup) reads the source sequentially, feeds every byte to
 *   the whole-image SHA-256, tells all-zero blocks from data blocks and hands
 *   data blocks over in shared-memory slots. Blocks that lie in holes of a
 *   sparse file (extentMap.ts) are hashed as zeros without being read. The hash covers exactly the bytes
 *   handed over, so a snapshot's SHA-256 always matches its blocks even when
 *   the source changes while it is read. A slot is reused only after the main
 *   thread releases it, which bounds memory to `slots` blocks and makes the
 *   reader wait for the repository (backpressure).
 * - `ReadBackHasher` (restore) reads the restored target back and hashes it,
 *   following the writes as they complete so that the verification overlaps
 *   the restore instead of following it. Holes the restore left in a new
 *   sparse file are hashed as zeros without being read: reading them would
 *   only fill the page cache with zeros that POSIX already guarantees.
 *
 * The worker reads with synchronous positional reads: it has nothing else to
 * do meanwhile, and one thread reading ahead of one hashing would only add
 * hand-offs. Its source is evaluated as a CommonJS script (`eval: true`) so
 * it runs the same from the TypeScript sources (tests) and from dist/.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { IntegrityError, OperationError } from '../../errors.js';
import type { DataRanges } from '../../platform/extentMap.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');

// The main thread owns the descriptor (opened, and closed once this worker has stopped).
const { mode, fd, blockSize } = workerData;
const hash = createHash('sha256');
const zero = Buffer.alloc(blockSize);
let offset = 0;

function readFully(buf, length, position) {
  let done = 0;
  while (done < length) {
    const got = readSync(fd, buf, done, length - done, position + done);
    if (got === 0) break;
    done += got;
  }
  return done;
}

function fail(err) {
  parentPort.postMessage({ type: 'error', message: String((err && err.message) || err), code: err && err.code });
}

if (mode === 'read') {
  const { size } = workerData;
  const slots = workerData.slots.map((sab) => Buffer.from(sab));
  const free = slots.map((_, i) => i).reverse();
  let ended = false;
  // Data ranges of a sparse file (extentMap.ts), or null: blocks outside them are holes, not read.
  const ranges = workerData.dataRanges;
  let range = 0;
  const isHole = (start, end) => {
    if (!ranges) return false;
    while (range < ranges.length && ranges[range][1] <= start) range++;
    return range >= ranges.length || ranges[range][0] >= end;
  };
  // Consecutive zero blocks go out as one message (a large sparse disk has millions).
  let zeroLength = 0;
  let zeroCount = 0;
  const flushZeros = () => {
    if (zeroCount === 0) return;
    parentPort.postMessage({ type: 'zero', length: zeroLength, count: zeroCount });
    zeroLength = 0;
    zeroCount = 0;
  };
  const addZero = (length) => {
    zeroLength += length;
    if (++zeroCount === 64) flushZeros();
  };
  // Read while a slot is free; a zero block keeps its slot, so holes cost no hand-off.
  const pump = () => {
    try {
      while (!ended && free.length > 0 && offset < size) {
        const slot = free[free.length - 1];
        const buf = slots[slot];
        const length = Math.min(blockSize, size - offset);
        if (isHole(offset, offset + length)) {
          addZero(length);
          hash.update(zero.subarray(0, length));
          offset += length;
          continue;
        }
        const got = readFully(buf, length, offset);
        if (got !== length) {
          ended = true;
          flushZeros();
          parentPort.postMessage({ type: 'short', offset, got });
          return;
        }
        const bytes = buf.subarray(0, length);
        if (bytes.equals(zero.subarray(0, length))) {
          addZero(length);
        } else {
          free.pop();
          flushZeros();
          // Handed over before hashing so the repository starts on it at once; the slot is not
          // reused before this synchronous loop returns, so hashing it afterwards is safe.
          parentPort.postMessage({ type: 'data', slot, length });
        }
        hash.update(bytes);
        offset += length;
      }
      flushZeros();
      if (!ended && offset >= size) {
        ended = true;
        parentPort.postMessage({ type: 'end', sha256: hash.digest('hex') });
      }
    } catch (err) {
      ended = true;
      fail(err);
    }
  };
  parentPort.on('message', (msg) => {
    free.push(msg.release);
    pump();
  });
  pump();
} else {
  const buf = Buffer.allocUnsafe(blockSize);
  // Read and hash the target from where the last message stopped up to 'upTo'.
  const readUpTo = (upTo) => {
    while (offset < upTo) {
      const length = Math.min(blockSize, upTo - offset);
      const got = readFully(buf, length, offset);
      if (got !== length) return { type: 'short', offset, got };
      hash.update(buf.subarray(0, length));
      offset += length;
    }
    return undefined;
  };
  let ended = false;
  parentPort.on('message', (msg) => {
    if (ended) return;
    try {
      if (msg.zeros !== undefined) {
        for (let left = msg.zeros; left > 0; left -= Math.min(left, blockSize)) {
          hash.update(zero.subarray(0, Math.min(left, blockSize)));
        }
        offset += msg.zeros;
        return;
      }
      const short = readUpTo(msg.upTo);
      if (short) {
        ended = true;
        parentPort.postMessage(short);
      } else if (msg.finish) {
        ended = true;
        parentPort.postMessage({ type: 'end', sha256: hash.digest('hex') });
      }
    } catch (err) {
      ended = true;
      fail(err);
    }
  });
}
`;

type WorkerMessage =
  | { type: 'zero'; length: number; count: number }
  | { type: 'data'; slot: number; length: number }
  | { type: 'end'; sha256: string }
  | { type: 'short'; offset: number; got: number }
  | { type: 'error'; message: string; code?: string };

/** Messages of a worker in arrival order; a crash or an early exit becomes an error. */
class WorkerChannel {
  private readonly worker: Worker;
  private readonly fh: FileHandle;
  private readonly queue: WorkerMessage[] = [];
  private waiting: ((m: WorkerMessage) => void) | undefined;
  private failure: Error | undefined;
  private wake: ((err: Error) => void) | undefined;
  private closed = false;

  /** Open `path` for reading and start a worker on it. */
  static async start(path: string, workerData: Record<string, unknown>): Promise<WorkerChannel> {
    const fh = await open(path, 'r');
    try {
      return new WorkerChannel(fh, workerData);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private constructor(fh: FileHandle, workerData: Record<string, unknown>) {
    this.fh = fh;
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ...workerData, fd: fh.fd } });
    this.worker.on('message', (m: WorkerMessage) => {
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = undefined;
        this.wake = undefined;
        resolve(m);
      } else this.queue.push(m);
    });
    const onFailure = (err: Error) => {
      this.failure ??= err;
      this.wake?.(this.failure);
    };
    this.worker.on('error', onFailure);
    this.worker.on('exit', (code) => {
      if (!this.closed) onFailure(new Error(`image worker exited unexpectedly (code ${code})`));
    });
  }

  next(): Promise<WorkerMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.wake = reject;
    });
  }

  post(message: unknown): void {
    if (!this.closed) this.worker.postMessage(message);
  }

  /** Stop the worker, then close the descriptor it read from. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.worker.terminate();
    } finally {
      await this.fh.close();
    }
  }
}

/** A read error of the worker as the errno error it was (e.g. EIO), naming the path. */
function workerError(m: { message: string; code?: string }, path: string): Error {
  return Object.assign(new Error(`reading ${path}: ${m.message}`), m.code ? { code: m.code } : {});
}

/**
 * The image in order: `count` consecutive zero blocks of `length` bytes in
 * all (no bytes kept), or one data block in a slot to release after use.
 */
export type ImageBlock =
  | { zero: true; length: number; count: number }
  | { zero: false; length: number; bytes: Buffer; slot: number };

/** Sequential reader of an image (see the file comment). Call `close` when done, also on failure. */
export class ImageReader {
  private digest: string | undefined;

  private constructor(
    private readonly channel: WorkerChannel,
    private readonly slots: Buffer[],
    private readonly path: string,
    private readonly size: number,
  ) {}

  /**
   * Start reading the first `size` bytes of `path` in blocks, at most
   * `slotCount` data blocks held at once. Blocks outside `dataRanges` (when
   * known) are holes: hashed as zeros, not read.
   */
  static async open(
    path: string,
    size: number,
    blockSize: number,
    slotCount: number,
    dataRanges?: DataRanges,
  ): Promise<ImageReader> {
    const shared = Array.from({ length: slotCount }, () => new SharedArrayBuffer(blockSize));
    const channel = await WorkerChannel.start(path, {
      mode: 'read',
      size,
      blockSize,
      slots: shared,
      dataRanges: dataRanges ?? null,
    });
    return new ImageReader(
      channel,
      shared.map((sab) => Buffer.from(sab)),
      path,
      size,
    );
  }

  /** The image's blocks in order; ends after the last block. */
  async *blocks(): AsyncGenerator<ImageBlock> {
    for (;;) {
      const m = await this.channel.next();
      switch (m.type) {
        case 'zero':
          yield { zero: true, length: m.length, count: m.count };
          break;
        case 'data': {
          const bytes = (this.slots[m.slot] as Buffer).subarray(0, m.length);
          yield { zero: false, length: m.length, bytes, slot: m.slot };
          break;
        }
        case 'end':
          this.digest = m.sha256;
          return;
        case 'short':
          throw new OperationError(
            'E_IMAGE_SHORT_READ',
            `${this.path} ended at byte ${m.offset + m.got}, but it was ${this.size} bytes when the backup started`,
            { hint: 'The device or file shrank while it was read; run the backup again when it is stable.' },
          );
        case 'error':
          throw workerError(m, this.path);
      }
    }
  }

  /** Give a data block's slot back to the reader once its bytes are no longer needed. */
  release(slot: number): void {
    this.channel.post({ release: slot });
  }

  /** Hex SHA-256 of every byte read; available once `blocks()` has ended. */
  get sha256(): string {
    if (this.digest === undefined) throw new Error('the image has not been read to its end');
    return this.digest;
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

/** Hashes a restored target as its prefix becomes final (see the file comment). */
export class ReadBackHasher {
  private constructor(
    private readonly channel: WorkerChannel,
    private readonly path: string,
  ) {}

  static async open(path: string, blockSize: number): Promise<ReadBackHasher> {
    return new ReadBackHasher(await WorkerChannel.start(path, { mode: 'verify', blockSize }), path);
  }

  /** Bytes up to `upTo` are written for good: read them back and hash them while the rest is restored. */
  advance(upTo: number): void {
    this.channel.post({ upTo });
  }

  /**
   * The next `length` bytes are a hole the restore never wrote (a zero run in
   * a freshly truncated file): hash them as zeros without reading them.
   */
  zeros(length: number): void {
    this.channel.post({ zeros: length });
  }

  /** Hash the target up to `size` and return the hex SHA-256 of that prefix. */
  async finish(size: number): Promise<string> {
    this.channel.post({ upTo: size, finish: true });
    const m = await this.channel.next();
    if (m.type === 'end') return m.sha256;
    if (m.type === 'short')
      throw new IntegrityError(
        `${this.path} ended at byte ${m.offset + m.got} while verifying ${size} bytes`,
      );
    if (m.type === 'error') throw workerError(m, this.path);
    throw new Error(`unexpected message ${m.type} from the image worker`);
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
