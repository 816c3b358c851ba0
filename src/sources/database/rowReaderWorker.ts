/**
 * A dump's row reader (postgres/archiveRows.ts, mysql/dumpRows.ts) on a
 * worker thread. The dump tool writes into a 64 KiB pipe that the main thread
 * drains; while the main thread parses and hashes rows it cannot drain, and
 * the tool waits. Here the main thread only copies the tool's output into a
 * free shared-memory slot and posts the slot's number when it is full; the
 * worker reads the rows from the slot and gives the slot back. Measured per
 * 64 KiB on this thread: 3-20 µs to copy and post, against 33-70 µs to post
 * the bytes themselves (cloned) and 22-34 µs to copy them into a new buffer
 * and transfer that. When every slot is taken the caller waits,
 * which bounds memory and lets the dump tool wait for the reader as before.
 *
 * The worker runs the readers' own code: each reader module is one
 * self-contained function (`…Code`) whose source text the worker evaluates,
 * so the code is the same on both threads, from the TypeScript sources
 * (tests) as from dist/. The result is the reader's, as entries; a reader
 * that fails, and a worker that dies, make `result()` reject, which callers
 * treat as the reader's `result()` throwing.
 */
import { Worker } from 'node:worker_threads';
import type { RowScanMemory } from './rowHash.js';

/** Rows and checksum of one table. */
export interface ReadTableRows {
  rows: number;
  checksum: string;
}

/**
 * Size of one slot. A slot collects many of the pipe's 64 KiB reads before it
 * is handed over: a message costs the main thread more than copying 64 KiB
 * (60 µs per message was measured on a busy machine, 95 ms of a 1.6 s backup).
 */
const SLOT_SIZE = 1024 * 1024;
/** Slots in all: how far (4 MiB after the slot being filled) the reader may lag behind the dump. */
const SLOT_COUNT = 5;
/** A WebAssembly page. */
const PAGE = 65536;

/**
 * The worker: `readerSource` is an expression that creates the reader (push, result). The slots are the first
 * bytes of the row hash's WebAssembly memory (rowHash.ts), which scans them where they are.
 */
const workerSource = (readerSource: string) => `
const { parentPort, workerData } = require('node:worker_threads');
const shared = workerData.rowScanMemory.memory.buffer;
const slots = Array.from({ length: ${SLOT_COUNT} }, (_, i) => Buffer.from(shared, i * ${SLOT_SIZE}, ${SLOT_SIZE}));
const reader = ${readerSource};
parentPort.on('message', (m) => {
  if (m.slot !== undefined) {
    reader.push(slots[m.slot].subarray(0, m.length));
    parentPort.postMessage({ release: m.slot });
    return;
  }
  try {
    parentPort.postMessage({ entries: [...reader.result()] });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

/** The worker's answer at the end of the stream: the reader's result or failure. */
type Ending = { entries: [string, ReadTableRows][] } | { error: string };
type FromWorker = { release: number } | Ending;

/**
 * Feed it the dump's bytes in order (push, awaiting the promise it returns
 * when all slots are in use), then call result(); call close() in any case.
 */
export class RowReaderThread {
  private readonly worker: Worker;
  private readonly slots: Buffer[];
  private readonly free: number[];
  /** The slot being filled, and how many bytes it holds. */
  private filling: number | undefined;
  private filled = 0;
  /** Callers of push() waiting for a free slot. */
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private settle: { resolve: (m: Ending) => void; reject: (err: Error) => void } | undefined;
  /** The worker's answer to the end of the stream, once asked for (see finish()). */
  private ending: Promise<Ending> | undefined;
  private closed = false;

  /**
   * Start a worker that evaluates `readerSource` (an expression creating the
   * reader); `keyOf` maps the worker's table keys to the caller's.
   */
  constructor(
    readerSource: string,
    private readonly keyOf: (key: string) => string = (key) => key,
  ) {
    const slotBytes = SLOT_COUNT * SLOT_SIZE;
    // The slots, then room for the bytes the worker copies (a row cut across slots); grown by the worker.
    const memory = new WebAssembly.Memory({ initial: slotBytes / PAGE + 1, maximum: 65536, shared: true });
    const rowScanMemory: RowScanMemory = { memory, copyAt: slotBytes };
    this.slots = Array.from({ length: SLOT_COUNT }, (_, i) =>
      Buffer.from(memory.buffer, i * SLOT_SIZE, SLOT_SIZE),
    );
    this.free = this.slots.map((_, i) => i);
    this.worker = new Worker(workerSource(readerSource), {
      eval: true,
      workerData: { rowScanMemory },
    });
    this.worker.on('message', (m: FromWorker) => this.receive(m));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`the row reader's worker exited unexpectedly (code ${code})`));
    });
  }

  /**
   * Copy the chunk into slots (the caller may reuse it afterwards); the
   * promise, when one is returned, resolves once all of it is copied.
   */
  push(chunk: Uint8Array): Promise<void> | undefined {
    let at = 0;
    while (at < chunk.length) {
      // A dead worker's result is its failure: the rest of the dump need not reach it.
      if (this.failure || this.closed) return undefined;
      if (this.filling === undefined) {
        this.filling = this.free.pop();
        if (this.filling === undefined) return this.waitForSlot().then(() => this.push(chunk.subarray(at)));
      }
      const length = Math.min(SLOT_SIZE - this.filled, chunk.length - at);
      (this.slots[this.filling] as Buffer).set(chunk.subarray(at, at + length), this.filled);
      this.filled += length;
      at += length;
      if (this.filled === SLOT_SIZE) this.handOver();
    }
    return undefined;
  }

  /** Every table's rows and checksum, by table key; rejects when the reader failed. */
  async result(): Promise<Map<string, ReadTableRows>> {
    const m = await this.finish();
    if ('error' in m) throw new Error(m.error);
    return new Map(m.entries.map(([key, rows]) => [this.keyOf(key), rows]));
  }

  /** Tell the worker the stream has ended (once) and wait for its answer. */
  private finish(): Promise<Ending> {
    this.ending ??= (async () => {
      if (this.failure) throw this.failure;
      this.handOver();
      const answer = new Promise<Ending>((resolve, reject) => (this.settle = { resolve, reject }));
      this.worker.postMessage({ end: true });
      return answer;
    })();
    return this.ending;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.releaseWaiters();
    await this.worker.terminate();
  }

  /** Post the slot being filled to the worker, if it holds anything. */
  private handOver(): void {
    if (this.filling !== undefined && this.filled > 0) {
      this.worker.postMessage({ slot: this.filling, length: this.filled });
      this.filling = undefined;
      this.filled = 0;
    }
  }

  private receive(m: FromWorker): void {
    if ('release' in m) {
      this.free.push(m.release);
      this.waiters.shift()?.();
      return;
    }
    const settle = this.settle;
    this.settle = undefined;
    settle?.resolve(m);
  }

  /** A dead worker: pushes stop waiting (and copying), the result is this error. */
  private fail(err: Error): void {
    this.failure ??= err;
    this.settle?.reject(this.failure);
    this.settle = undefined;
    this.releaseWaiters();
  }

  private waitForSlot(): Promise<void> {
    if (this.failure || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private releaseWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
