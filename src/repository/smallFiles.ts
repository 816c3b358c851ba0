/**
 * Small files of a backup, stored in batches by the repository's workers.
 *
 * A backup of many small files (a copy of /usr/share: 47,000 files, most of
 * them a few KiB) used to spend its calling thread on open/read/fstat/close,
 * the whole-file SHA-256 and the blob-ID HMAC of every file, while the
 * workers waited (docs/performance.md, "small files on the workers"). Here the
 * calling thread only gathers the paths: a worker opens, reads, hashes,
 * identifies and seals each file of a batch (WorkerPool.readFiles), and the
 * calling thread gets back the verdicts and the sealed records, of which it
 * packs those the repository does not hold yet. A file shorter than the
 * chunker's minimum size is exactly one chunk, so its blob ID is the HMAC of
 * its bytes, as the chunker path would give.
 *
 * Batches (batchQueue.ts) close at BATCH_FILES files or BATCH_BYTES listed
 * bytes, or on the next turn of the event loop; at most BATCHES_PER_WORKER
 * batches per worker are out at once.
 */
import { BatchQueue } from './batchQueue.js';
import type { SmallFileRead, WorkerPool } from './workerPool.js';
import type { ContentRef } from './tree.js';

const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;
const BATCHES_PER_WORKER = 2;

export type { ReadFileStat } from './workerPool.js';

/** What became of one small file. */
export type SmallFileStored =
  | { ok: false; stage: 'open' | 'read'; error: NodeJS.ErrnoException }
  | {
      ok: true;
      /** Bytes read: one more than listed when the file grew. */
      size: number;
      /** The file's status right after the read (fstat). */
      stat: Extract<SmallFileRead, { error?: undefined }>['stat'];
      sha256: string;
      content: ContentRef[];
      /** True when its blob was new to the repository (and is being stored). */
      stored: boolean;
    };

/** Packs a batch's new records; returns, per file, whether its blob was new. */
export type AcceptSealed = (files: readonly SmallFileRead[], records: Buffer) => Promise<boolean[]>;

/** One file of a batch: where it is and the size it was listed with. */
interface SmallFileRequest {
  path: Uint8Array;
  size: number;
}

export class SmallFileStore {
  private readonly batches: BatchQueue<SmallFileRequest, SmallFileStored>;

  constructor(
    private readonly pool: WorkerPool,
    private readonly aadPrefix: string,
    private readonly flags: number,
    private readonly accept: AcceptSealed,
  ) {
    this.batches = new BatchQueue({
      maxItems: BATCH_FILES,
      maxBytes: BATCH_BYTES,
      maxInFlight: () => BATCHES_PER_WORKER * this.pool.workerCount,
      run: (requests) => this.run(requests),
    });
  }

  /** Largest size (exclusive) a file may be listed with: it must be one chunk, and fit a worker's read. */
  static readonly MAX_SIZE = 256 * 1024;

  /** Read and store the file at `path`, listed with `size` bytes (< MAX_SIZE). */
  store(path: Uint8Array, size: number): Promise<SmallFileStored> {
    if (size >= SmallFileStore.MAX_SIZE) throw new RangeError(`not a small file: ${size} bytes`);
    return this.batches.add({ path, size }, size);
  }

  private async run(requests: SmallFileRequest[]): Promise<SmallFileStored[]> {
    const { files, records } = await this.pool.readFiles(
      requests.map((r) => r.path),
      requests.map((r) => r.size),
      this.flags,
      this.aadPrefix,
    );
    const stored = await this.accept(files, records);
    return files.map((file, i) => outcome(file, stored[i]!));
  }
}

function outcome(file: SmallFileRead, stored: boolean): SmallFileStored {
  if (file.error) {
    const error: NodeJS.ErrnoException = new Error(file.error.message);
    if (file.error.code !== undefined) error.code = file.error.code;
    return { ok: false, stage: file.error.stage, error };
  }
  let content: ContentRef[] = [];
  if (file.zero) content = [{ zero: file.size }];
  else if (file.id !== undefined) content = [file.id];
  return { ok: true, size: file.size, stat: file.stat, sha256: file.sha256, content, stored };
}
