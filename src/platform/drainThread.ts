/**
 * A child's stdout drained by a thread of its own, into shared memory.
 *
 * A dump tool writes into a pipe of 64 KiB. Drained by the main thread, the
 * pipe waits whenever that thread is busy with the data it already has
 * (chunking, blob IDs, GC): the tool then blocks on its write, and the
 * database server behind it on its socket, while a core may idle. Here the
 * tool writes into a FIFO that a worker thread reads with plain blocking
 * reads, straight into 1 MiB slots of shared memory: the tool is held up only
 * when every slot is full, i.e. when the consumer is SLOT_COUNT MiB behind.
 * The consumer receives filled slots in order, copies them out and gives them
 * back.
 *
 * Node has no pipe(2) with a file descriptor a worker could read, so the
 * FIFO is made with mkfifo(1) in a private temporary directory (removed as
 * soon as both ends are open; no data ever touches the disk).
 */
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Readable } from 'node:stream';
import { runChecked, spawnStreaming, type ExecOptions, type StreamingProcess } from './exec.js';

/** Size of one slot: large enough that a message per slot costs nothing next to the bytes. */
const SLOT_SIZE = 1024 * 1024;
/** How far (MiB) the consumer may fall behind before the tool waits. */
const SLOT_COUNT = 16;

const SLOT_FREE = 0;
const SLOT_FULL = 1;

/**
 * The worker: opens the FIFO (a writer already exists, so this does not
 * block), then fills the slots in turn with blocking reads until end of file.
 * It runs no event loop of its own: it waits for a free slot on the slot's
 * state word (Atomics.wait), which the consumer sets back and notifies.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const views = workerData.slots.map((sab) => Buffer.from(sab));
const state = new Int32Array(workerData.state);
let fd;
try {
  fd = openSync(workerData.path, 'r');
  parentPort.postMessage({ opened: true });
  let slot = 0;
  for (;;) {
    while (Atomics.load(state, slot) !== ${SLOT_FREE}) Atomics.wait(state, slot, ${SLOT_FULL});
    const view = views[slot];
    let filled = 0;
    let ended = false;
    while (filled < view.length) {
      const n = readSync(fd, view, filled, view.length - filled, null);
      if (n === 0) {
        ended = true;
        break;
      }
      filled += n;
    }
    if (filled > 0) {
      Atomics.store(state, slot, ${SLOT_FULL});
      parentPort.postMessage({ slot, length: filled });
      slot = (slot + 1) % views.length;
    }
    if (ended) break;
  }
  parentPort.postMessage({ end: true });
} catch (err) {
  parentPort.postMessage({ error: String((err && err.message) || err) });
} finally {
  if (fd !== undefined) closeSync(fd);
}
`;

type FromWorker = { opened: true } | { slot: number; length: number } | { end: true } | { error: string };

/** The write end to give the child as its stdout, and the stream of what it writes. */
export interface DrainedOutput {
  /** File descriptor for the child's stdout; close it with release() once the child has it. */
  writeFd: number;
  /**
   * Close this process's copy of the write end (once the worker holds its read end) and remove the FIFO's
   * directory. Call it once the child was started, or when none will be: the worker then reads to the end
   * of the child's output, or at once to end of file, and stops. Safe to call more than once.
   */
  release(): Promise<void>;
  /**
   * Everything the child writes, in order, in pieces the caller owns; ends when the child's stdout closes.
   * Ending or abandoning it stops the worker (kill the child when abandoning it).
   */
  output: AsyncIterable<Uint8Array>;
}

/** Make a FIFO, open its write end here and start the thread that reads it. */
export async function startDrainThread(): Promise<DrainedOutput> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-fifo-'));
  const path = join(dir, 'stdout');
  let writeFd: number | undefined;
  try {
    await runChecked(['mkfifo', '-m', '600', '--', path], { timeoutMs: 30_000 });
    // O_RDWR: opening a FIFO read-write never blocks (Linux), and it makes the worker's read-only open return at once.
    writeFd = openSync(path, constants.O_RDWR);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const slots = Array.from({ length: SLOT_COUNT }, () => new SharedArrayBuffer(SLOT_SIZE));
  const stateBuffer = new SharedArrayBuffer(SLOT_COUNT * 4);
  const state = new Int32Array(stateBuffer);
  const views = slots.map((s) => Buffer.from(s));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, slots, state: stateBuffer } });
  // A stream nobody reads (a caller that failed before reading it) must not keep the process alive
  // with a worker waiting for a free slot: the worker is referenced only while somebody awaits it.
  worker.unref();
  let waiting = 0;
  const awaitWorker = async <T>(what: Promise<T>): Promise<T> => {
    if (waiting++ === 0) worker.ref();
    try {
      return await what;
    } finally {
      if (--waiting === 0) worker.unref();
    }
  };

  // Messages queue here until the consumer asks for them.
  const queue: FromWorker[] = [];
  let wake: (() => void) | undefined;
  let opened!: () => void;
  let failed: (err: Error) => void = () => {};
  const openedPromise = new Promise<void>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  openedPromise.catch(() => {});
  let exited = false;
  const push = (m: FromWorker) => {
    queue.push(m);
    wake?.();
    wake = undefined;
  };
  let ended = false;
  worker.on('message', (m: FromWorker) => {
    if ('opened' in m) opened();
    else push(m);
    if ('end' in m || 'error' in m) ended = true;
  });
  worker.on('error', (err) => {
    failed(err);
    push({ error: err.message });
  });
  worker.on('exit', (code) => {
    exited = true;
    failed(new Error(`the drain thread exited (code ${code})`));
    // After its end (or its own error) an exit is expected; before it, the stream is cut short.
    if (!ended) push({ error: `the drain thread exited (code ${code}) before the end of the stream` });
  });

  let writerOpen = true;
  const closeWriter = () => {
    if (writerOpen) {
      writerOpen = false;
      closeSync(writeFd as number);
    }
  };

  async function* output(): AsyncGenerator<Uint8Array> {
    try {
      yield* slotsInOrder();
    } finally {
      // Read to the end, or abandoned (the caller kills the tool): the worker must not wait for a slot.
      stop();
    }
  }

  async function* slotsInOrder(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (queue.length === 0) {
        await awaitWorker(new Promise<void>((resolve) => (wake = resolve)));
      }
      const m = queue.shift() as FromWorker;
      if ('end' in m) return;
      if ('error' in m) throw new Error(`reading the tool's output failed: ${m.error}`);
      if ('slot' in m) {
        // Copied out: the consumer (the chunker) keeps what it is given, and the slot is refilled.
        const piece = Buffer.allocUnsafe(m.length);
        (views[m.slot] as Buffer).copy(piece, 0, 0, m.length);
        Atomics.store(state, m.slot, SLOT_FREE);
        Atomics.notify(state, m.slot);
        yield piece;
      }
    }
  }

  const stop = () => {
    closeWriter();
    for (let i = 0; i < SLOT_COUNT; i++) {
      Atomics.store(state, i, SLOT_FREE);
      Atomics.notify(state, i);
    }
    // A worker blocked in read(2) stops at end of file, once the tool is gone.
    if (!exited) void worker.terminate();
  };

  return {
    writeFd: writeFd as number,
    async release() {
      try {
        // The worker must hold its read end before the last writer here goes, or its open would block.
        await awaitWorker(openedPromise);
      } finally {
        closeWriter();
        await rm(dir, { recursive: true, force: true });
      }
    },
    output: output(),
  };
}

/**
 * A drain made ready ahead of its tool, so that starting the tool later costs
 * no mkfifo and no worker start-up (~40 ms): undefined where no FIFO can be
 * made (no mkfifo, no writable temporary directory). Release it when no tool
 * gets it.
 */
export async function prepareDrain(): Promise<DrainedOutput | undefined> {
  try {
    return await startDrainThread();
  } catch {
    return undefined;
  }
}

/**
 * spawnStreaming whose stdout is drained by a thread of its own (above),
 * through `prepared` (prepareDrain) or a drain made now. Without one the tool
 * writes into an ordinary pipe, as before.
 */
export async function spawnDrained(
  argv: readonly string[],
  opts: ExecOptions = {},
  prepared: Promise<DrainedOutput | undefined> = prepareDrain(),
): Promise<StreamingProcess> {
  const drain = await prepared;
  if (!drain) return spawnStreaming(argv, opts);
  let proc: StreamingProcess;
  try {
    proc = spawnStreaming(argv, { ...opts, stdoutFd: drain.writeFd });
  } catch (err) {
    // Not started (a bad argument): this side's write end still has to go.
    await drain.release().catch(() => {});
    throw err;
  }
  try {
    await drain.release();
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return { ...proc, stdout: Readable.from(drain.output, { objectMode: false }) };
}
