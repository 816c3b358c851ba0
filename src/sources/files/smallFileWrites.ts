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
import { BatchQueue } from '../../repository/batchQueue.js';
import type { SmallFileWritten, WriteFileSpec, WriteFiles } from '../../repository/workerPool.js';

/** Files of one chunk below this size are written by the workers. */
export const MAX_SIZE = 256 * 1024;
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;
const IN_FLIGHT = 4;
const MAX_QUEUED = 8 * 1024 * 1024;
/** A reused contents buffer: a full batch plus the largest file that closes it. */
const BUFFER_BYTES = BATCH_BYTES + MAX_SIZE;

/** One restored small file: where it goes, its verified bytes, and what to set. */
export interface SmallFileWrite extends Omit<WriteFileSpec, 'length' | 'destLength' | 'finalLength'> {
  /** Where to create it, and where to move it once complete (absent: it stays at dest). */
  dest: Uint8Array;
  final?: Uint8Array;
  data: Uint8Array;
}

export class SmallFileWrites {
  private readonly batches: BatchQueue<SmallFileWrite, SmallFileWritten>;
  /** Content bytes handed to write() and not yet answered. */
  private queued = 0;
  private drained: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Batch buffers handed back by the workers. */
  private readonly spare: Buffer[] = [];

  constructor(private readonly writeFiles: WriteFiles) {
    this.batches = new BatchQueue({
      maxItems: BATCH_FILES,
      maxBytes: BATCH_BYTES,
      maxInFlight: () => IN_FLIGHT,
      run: (files) => this.run(files),
      settled: (bytes) => {
        this.queued -= bytes;
        if (this.drained && this.queued <= MAX_QUEUED) {
          this.drained.resolve();
          this.drained = undefined;
        }
      },
    });
  }

  /** Write one file; resolves with the worker's verdict. `file.data` must not change until then. */
  write(file: SmallFileWrite): Promise<SmallFileWritten> {
    this.queued += file.data.length;
    return this.batches.add(file, file.data.length);
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

  /** One worker job: the files' bytes back to back in a reused buffer, their paths in another. */
  private async run(files: SmallFileWrite[]): Promise<SmallFileWritten[]> {
    const total = files.reduce((n, f) => n + f.data.length, 0);
    const contents =
      total <= BUFFER_BYTES
        ? (this.spare.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES))
        : Buffer.allocUnsafeSlow(total);
    const specs: WriteFileSpec[] = [];
    const paths: Uint8Array[] = [];
    let at = 0;
    for (const { data, dest, final, ...settings } of files) {
      contents.set(data, at);
      at += data.length;
      paths.push(dest, ...(final ? [final] : []));
      specs.push({
        ...settings,
        length: data.length,
        destLength: dest.length,
        finalLength: final?.length ?? 0,
      });
    }
    // The whole buffer moves to the worker (the specs say how much of it is used) and comes back.
    const { written, contents: back } = await this.writeFiles(specs, contents, Buffer.concat(paths));
    if (back.byteLength === BUFFER_BYTES && this.spare.length < IN_FLIGHT) this.spare.push(back);
    return written;
  }
}
