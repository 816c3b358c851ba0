/**
 * A small pool of worker threads for the CPU-heavy steps that need no keys:
 * zstd compression and decompression of blobs, and SHA-256 of whole packs.
 * The calling thread meanwhile chunks, computes blob IDs and encrypts, so a
 * backup uses every core. See docs/repository-format.md §16 for why
 * zstd-napi and why workers.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type * as ZstdNapi from 'zstd-napi';
import { OperationError } from '../errors.js';

type ZstdModule = typeof ZstdNapi;

const require = createRequire(import.meta.url);
let zstdModule: ZstdModule | undefined;
/** The native binding is loaded on first use so that commands that never compress stay fast. */
function zstd(): ZstdModule {
  zstdModule ??= require('zstd-napi') as ZstdModule;
  return zstdModule;
}

/** Blobs below this size are (de)compressed on the calling thread: a worker round trip costs more. */
export const INLINE_LIMIT = 16 * 1024;

/** Packs below this size are hashed on the calling thread. */
const INLINE_HASH_LIMIT = 256 * 1024;

/**
 * The worker's source. It is evaluated as a CommonJS script (`eval: true`) so
 * it works the same from TypeScript sources (tests) and the built dist/ tree.
 * It only runs zstd and SHA-256; keys never leave the calling thread.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const zstd = require(workerData.zstdPath);
const compressor = new zstd.Compressor();
compressor.setParameters({ compressionLevel: workerData.level });
const decompressor = new zstd.Decompressor();
// Transfer only an ArrayBuffer that the result owns alone (small Buffers share a pool).
const own = (buf) =>
  buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength
    ? buf.buffer
    : buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
parentPort.on('message', (job) => {
  try {
    const input = new Uint8Array(job.data);
    if (job.op === 'sha256') {
      const hex = createHash('sha256').update(input).digest('hex');
      parentPort.postMessage({ seq: job.seq, result: job.data, hex }, [job.data]);
    } else if (job.op === 'compress') {
      const out = compressor.compress(input);
      // Not smaller: hand the input back so the caller needs no copy of its own.
      const ab = out.length < input.length ? own(out) : job.data;
      parentPort.postMessage({ seq: job.seq, result: ab, compressed: out.length < input.length }, [ab]);
    } else {
      const ab = own(decompressor.decompress(input));
      parentPort.postMessage({ seq: job.seq, result: ab, compressed: false }, [ab]);
    }
  } catch (err) {
    parentPort.postMessage({ seq: job.seq, error: String((err && err.message) || err) });
  }
});
`;

interface JobResult {
  data: ArrayBuffer;
  compressed: boolean;
  hex?: string;
}

interface Job {
  seq: number;
  op: 'compress' | 'decompress' | 'sha256';
  data: ArrayBuffer;
  resolve: (result: JobResult) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  active: Map<number, Job>;
}

export interface CompressionOptions {
  level: number;
  /** Worker threads; defaults to the number of cores (at most 4). 0 = everything on the calling thread. */
  workers?: number;
}

/** `data`'s own ArrayBuffer when it spans all of it (can be transferred), else a copy of exactly its bytes. */
function transferable(data: Uint8Array, mayTake: boolean): ArrayBuffer {
  if (
    mayTake &&
    data.byteOffset === 0 &&
    data.buffer instanceof ArrayBuffer &&
    data.byteLength === data.buffer.byteLength
  ) {
    return data.buffer;
  }
  const copy = Buffer.allocUnsafeSlow(data.length);
  copy.set(data);
  return copy.buffer;
}

/** Result of compressing one blob: the zstd frame, or the input itself when zstd did not shrink it. */
export interface CompressResult {
  bytes: Buffer;
  compressed: boolean;
}

/** zstd and SHA-256 off the calling thread (small inputs are handled inline). */
export class WorkerPool {
  private readonly level: number;
  private readonly size: number;
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private nextSeq = 1;
  private broken: Error | undefined;
  private closed = false;
  private inline:
    { c: InstanceType<ZstdModule['Compressor']>; d: InstanceType<ZstdModule['Decompressor']> } | undefined;

  constructor(opts: CompressionOptions) {
    this.level = opts.level;
    this.size = opts.workers ?? Math.max(1, Math.min(4, availableParallelism()));
  }

  /**
   * Compress one blob. Takes ownership of `data`: its memory may be moved to a
   * worker thread (detached), so the caller must pass a buffer it no longer uses.
   */
  async compress(data: Uint8Array): Promise<CompressResult> {
    if (data.length < INLINE_LIMIT || this.size === 0) {
      const out = this.inlineCodec().c.compress(data);
      const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      return out.length < data.length ? { bytes: out, compressed: true } : { bytes: view, compressed: false };
    }
    const result = await this.submit('compress', data, true);
    return { bytes: Buffer.from(result.data), compressed: result.compressed };
  }

  /**
   * Hex SHA-256 of `data`, computed on a worker. Takes ownership like
   * compress(); the bytes come back (as a new Buffer over the same memory).
   */
  async sha256(data: Buffer): Promise<{ hex: string; data: Buffer }> {
    if (data.length < INLINE_HASH_LIMIT || this.size === 0) {
      return { hex: createHash('sha256').update(data).digest('hex'), data };
    }
    const result = await this.submit('sha256', data, true);
    return { hex: result.hex!, data: Buffer.from(result.data) };
  }

  /** Decompress a zstd frame; throws when it does not decode to exactly `rawLength` bytes. */
  async decompress(data: Uint8Array, rawLength: number): Promise<Buffer> {
    const out =
      rawLength < INLINE_LIMIT || this.size === 0
        ? this.inlineCodec().d.decompress(data)
        : Buffer.from((await this.submit('decompress', data, false)).data);
    if (out.length !== rawLength) {
      throw new Error(`decompressed to ${out.length} bytes, expected ${rawLength}`);
    }
    return out;
  }

  /** Stop the worker threads; pending jobs fail. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('compression pool closed');
    for (const job of this.queue.splice(0)) job.reject(err);
    await Promise.all(
      this.workers.splice(0).map(async (w) => {
        for (const job of w.active.values()) job.reject(err);
        await w.worker.terminate();
      }),
    );
  }

  private inlineCodec() {
    if (!this.inline) {
      const z = zstd();
      const c = new z.Compressor();
      c.setParameters({ compressionLevel: this.level });
      this.inline = { c, d: new z.Decompressor() };
    }
    return this.inline;
  }

  private submit(op: Job['op'], data: Uint8Array, mayTake: boolean): Promise<JobResult> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new Error('compression pool closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ seq: this.nextSeq++, op, data: transferable(data, mayTake), resolve, reject });
      this.dispatch();
    });
  }

  /** Hand queued jobs to workers; two per worker hides the message round trip. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let target =
        this.workers.find((w) => w.active.size === 0) ?? this.workers.find((w) => w.active.size < 2);
      if (!target && this.workers.length < this.size) target = this.spawn();
      if (!target) return;
      const job = this.queue.shift()!;
      target.active.set(job.seq, job);
      target.worker.ref();
      target.worker.postMessage({ seq: job.seq, op: job.op, data: job.data }, [job.data]);
    }
  }

  private spawn(): PoolWorker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { zstdPath: require.resolve('zstd-napi'), level: this.level },
    });
    const entry: PoolWorker = { worker, active: new Map() };
    // An idle worker must not keep the process alive; a busy one must.
    worker.unref();
    worker.on(
      'message',
      (msg: { seq: number; result?: ArrayBuffer; compressed?: boolean; hex?: string; error?: string }) => {
        const job = entry.active.get(msg.seq);
        if (!job) return;
        entry.active.delete(msg.seq);
        if (entry.active.size === 0) worker.unref();
        if (msg.error !== undefined || !msg.result)
          job.reject(new Error(msg.error ?? 'no result from worker'));
        else {
          const result: JobResult = { data: msg.result, compressed: msg.compressed === true };
          if (msg.hex !== undefined) result.hex = msg.hex;
          job.resolve(result);
        }
        this.dispatch();
      },
    );
    const fail = (cause: unknown) => {
      if (this.closed) return;
      this.broken = new OperationError('E_COMPRESSION', 'a compression worker thread stopped unexpectedly', {
        cause,
        hint: 'This is a bug or a broken zstd-napi installation; reinstall lifeboat and try again.',
      });
      for (const job of entry.active.values()) job.reject(this.broken);
      entry.active.clear();
      for (const job of this.queue.splice(0)) job.reject(this.broken);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`worker exited with code ${code}`)));
    this.workers.push(entry);
    return entry;
  }
}

/** One-shot zstd compression on the calling thread (metadata objects). */
export function zstdCompressSync(data: Uint8Array, level: number): Buffer {
  return zstd().compress(data, { compressionLevel: level });
}

/** One-shot zstd decompression on the calling thread; throws on a malformed frame. */
export function zstdDecompressSync(data: Uint8Array): Buffer {
  return zstd().decompress(data);
}
