/**
 * Restored small files, written by the repository's workers in batches.
 *
 * A restore of many small files (a copy of /usr/share: 47,000 files) spent
 * its calling thread in the kernel: creating, writing, chowning and closing
 * every file, while the workers waited (docs/performance.md, "restore: small
 * files on the workers"). A file of one chunk under MAX_SIZE is instead handed
 * over whole, once its chunk is verified: a worker checks its SHA-256, creates
 * it, writes it, gives it owner, mode and mtime and moves it into place
 * (WorkerPool.writeFiles). A batch closes at BATCH_FILES files or BATCH_BYTES,
 * or on the next turn of the event loop; at most IN_FLIGHT batches are out,
 * and the restore's reader waits (backlog) while more than MAX_QUEUED bytes
 * wait for a worker.
 */
import type { SmallFileWritten, WriteFileSpec, WriteFiles } from '../../repository/workerPool.js';

/** Files of one chunk below this size are written by the workers. */
export const MAX_SIZE = 256 * 1024;
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;
const IN_FLIGHT = 4;
const MAX_QUEUED = 8 * 1024 * 1024;

/** One restored small file: where it goes, its verified bytes, and what to set. */
export interface SmallFileWrite extends Omit<WriteFileSpec, 'length' | 'destLength' | 'finalLength'> {
  /** Where to create it, and where to move it once complete (absent: it stays at dest). */
  dest: Uint8Array;
  final?: Uint8Array;
  data: Uint8Array;
}

interface Batch {
  /** The files' bytes back to back (a reused buffer), and how much of it is used. */
  contents: Buffer;
  bytes: number;
  specs: WriteFileSpec[];
  paths: Uint8Array[];
  waiters: { resolve: (written: SmallFileWritten) => void; reject: (err: unknown) => void }[];
  timer?: NodeJS.Immediate;
}

export class SmallFileWrites {
  private open: Batch | undefined;
  private readonly waiting: Batch[] = [];
  private inFlight = 0;
  /** Content bytes handed to write() and not yet answered. */
  private queued = 0;
  private drained: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Batch buffers handed back by the workers. */
  private readonly spare: Buffer[] = [];

  constructor(private readonly writeFiles: WriteFiles) {}

  /** Write one file (its data is copied before this returns); resolves with the worker's verdict. */
  write(file: SmallFileWrite): Promise<SmallFileWritten> {
    const length = file.data.length;
    if (this.open && this.open.bytes + length > this.open.contents.length) this.close(this.open);
    let batch = this.open;
    if (!batch) {
      const contents = this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES + MAX_SIZE);
      batch = { contents, bytes: 0, specs: [], paths: [], waiters: [] };
      const opened = batch;
      batch.timer = setImmediate(() => this.close(opened));
      this.open = batch;
    }
    batch.contents.set(file.data, batch.bytes);
    batch.bytes += length;
    batch.paths.push(file.dest);
    if (file.final) batch.paths.push(file.final);
    const { data, dest, final, ...settings } = file;
    batch.specs.push({
      ...settings,
      length: data.length,
      destLength: dest.length,
      finalLength: final?.length ?? 0,
    });
    this.queued += length;
    const written = new Promise<SmallFileWritten>((resolve, reject) =>
      batch.waiters.push({ resolve, reject }),
    );
    if (batch.specs.length >= BATCH_FILES || batch.bytes >= BATCH_BYTES) this.close(batch);
    return written;
  }

  /** While too much waits for the workers: a promise to wait on before delivering more. */
  backlog(): Promise<void> | undefined {
    if (this.queued <= MAX_QUEUED) return undefined;
    if (!this.drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drained = { promise, resolve };
    }
    return this.drained.promise;
  }

  private close(batch: Batch): void {
    if (this.open !== batch) return;
    this.open = undefined;
    if (batch.timer) clearImmediate(batch.timer);
    this.waiting.push(batch);
    this.sendWaiting();
  }

  private sendWaiting(): void {
    while (this.waiting.length > 0 && this.inFlight < IN_FLIGHT) {
      const batch = this.waiting.shift()!;
      this.inFlight++;
      // The whole buffer moves to the worker (the specs say how much of it is used) and comes back.
      this.writeFiles(batch.specs, batch.contents, Buffer.concat(batch.paths))
        .then(
          ({ written, contents }) => {
            if (contents.byteLength === BATCH_BYTES + MAX_SIZE && this.spare.length < IN_FLIGHT) {
              this.spare.push(Buffer.from(contents.buffer, 0, contents.byteLength));
            }
            written.forEach((w, i) => batch.waiters[i]!.resolve(w));
          },
          (err: unknown) => {
            for (const waiter of batch.waiters) waiter.reject(err);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.queued -= batch.bytes;
          if (this.drained && this.queued <= MAX_QUEUED) {
            this.drained.resolve();
            this.drained = undefined;
          }
          this.sendWaiting();
        });
    }
  }
}
