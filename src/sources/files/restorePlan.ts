/**
 * The restore's I/O plan: file contents are restored in batches. A batch
 * collects the chunk references of the next files (a big file may be split
 * over several batches) up to a limit, then every distinct chunk of the
 * batch is read once — grouped by pack by the repository (Repo.loadBlobs) —
 * and written to every file and offset that uses it. The limits keep the
 * plan (and the number of files open at once) bounded however large the
 * snapshot; data in flight is bounded by the repository's reader.
 */
import { IntegrityError } from '../../errors.js';
import type { Repo, SealedBlob } from '../../repository/api.js';
import type { BlobId, ContentRef } from '../../repository/tree.js';
import { Semaphore } from './semaphore.js';

/** What a batch needs of a file: its refs, and how far earlier batches got (advanced by add()). */
export interface PlannedFile {
  readonly refs: readonly ContentRef[];
  planned: number;
}

/** One place a chunk goes to: the file and the index of the ref. */
export interface ChunkUse<F> {
  file: F;
  index: number;
}

export interface BatchLimits {
  /** Chunk references (not distinct chunks) per batch. */
  maxRefs: number;
  /** Files with content per batch (each may hold an open descriptor until it is complete). */
  maxFiles: number;
}

export const DEFAULT_BATCH: BatchLimits = { maxRefs: 4096, maxFiles: 1024 };

export class ContentBatch<F extends PlannedFile> {
  /** Distinct chunk → every use, in the order added. */
  readonly uses = new Map<BlobId, ChunkUse<F>[]>();
  /** Files with refs in this batch, in the order added. */
  readonly files: F[] = [];
  /** ends[i]: index after the last ref of files[i] in this batch (refs.length: the file ends here). */
  readonly ends: number[] = [];
  /** Every use in the order added (file order): for repositories that load chunk by chunk. */
  readonly order: ChunkUse<F>[] = [];

  constructor(private readonly limits: BatchLimits = DEFAULT_BATCH) {}

  /** No more files or refs fit. */
  get full(): boolean {
    return this.order.length >= this.limits.maxRefs || this.files.length >= this.limits.maxFiles;
  }

  get empty(): boolean {
    return this.files.length === 0;
  }

  /** Chunk references (uses) in the batch. */
  get refs(): number {
    return this.order.length;
  }

  /**
   * Add `file`'s chunk refs from `file.planned` on until the batch is full
   * (zero runs need no chunk). Advances `file.planned`; the caller adds the
   * rest to the next batch when it did not all fit.
   */
  add(file: F): void {
    if (this.full || file.planned >= file.refs.length) return;
    this.files.push(file);
    let i = file.planned;
    for (; i < file.refs.length && this.order.length < this.limits.maxRefs; i++) {
      const ref = file.refs[i]!;
      if (typeof ref !== 'string') continue;
      const use = { file, index: i };
      let list = this.uses.get(ref);
      if (!list) this.uses.set(ref, (list = []));
      list.push(use);
      this.order.push(use);
    }
    file.planned = i;
    this.ends.push(i);
  }
}

/** A file as the pipeline drives it (ContentFile plus the restore's bookkeeping). */
export interface RestoringContent extends PlannedFile {
  /** Every chunk has been written. */
  readonly complete: boolean;
  /** Created and open (start() resolved). */
  readonly ready: boolean;
  /** Create the file; the same promise on every call. */
  start(): Promise<void>;
  /**
   * Write the verified plaintext of refs[index] — or, for a file that takesSealed, possibly the chunk's
   * stored record with `sealed` saying how to open it; throws to fail the file. May ask to wait (see deliver).
   */
  write(index: number, data: Buffer, give: boolean, sealed?: SealedBlob): Promise<void> | undefined;
  /** The file can take its chunks sealed (it hands them to a worker that opens them). */
  readonly takesSealed?: boolean;
  /**
   * The file checks its whole content against a SHA-256 recorded at backup and is removed when it differs:
   * its chunks need not have their keyed IDs recomputed as well (LoadBlobsOptions.contentChecked).
   */
  readonly checksContent?: boolean;
}

export interface PipelineHooks<F> {
  /** Every chunk of `file` is written: finish it. Called once per file, never after failed(). */
  done(file: F): void;
  /** `file` cannot be restored (`err` names why). Called at most once per file. */
  failed(file: F, err: unknown): void;
  /** Throws to stop the restore (called before every chunk). */
  checkAbort(): void;
  /** Content bytes written. */
  onBytes(n: number): void;
}

type Result = { ok: true; data: Buffer; sealed?: SealedBlob } | { ok: false; error: unknown };

/** Chunks read ahead by the per-chunk fallback (repositories without loadBlobs). */
const LOAD_AHEAD = 4;
/** Files being created at once (on the thread pool: creating a file is the slow call of a restore). */
const CREATING = 4;

/**
 * Runs the batches: the caller adds files while the previous batch is
 * restored, so walking the tree and reading the packs overlap; at most one
 * batch runs and one fills.
 */
export class ContentPipeline<F extends RestoringContent> {
  private filling: ContentBatch<F>;
  private running: Promise<void> = Promise.resolve();
  private readonly settled = new WeakSet<F>();
  private readonly creating = new Semaphore(CREATING);
  /** Files without chunks, finished as soon as they are created. */
  private readonly finishing = new Set<Promise<void>>();
  private stopped: unknown;

  constructor(
    private readonly repo: Repo,
    private readonly hooks: PipelineHooks<F>,
    private readonly limits: BatchLimits = DEFAULT_BATCH,
  ) {
    this.filling = new ContentBatch(limits);
  }

  /** Plan `file`'s content; waits while a full batch has to wait for the running one. */
  async add(file: F): Promise<void> {
    if (this.stopped !== undefined) {
      this.fail(file, this.stopped);
      return;
    }
    // Created ahead of its batch, a few at a time; the caller waits while CREATING are under way.
    const release = await this.creating.acquire();
    const created = file.start().finally(release);
    if (file.complete) {
      const finishing = created.then(
        () => this.finish(file),
        (err: unknown) => this.fail(file, err),
      );
      this.finishing.add(finishing);
      void finishing.then(() => this.finishing.delete(finishing));
      return;
    }
    created.catch(() => {}); // a failure is reported when its first chunk is delivered
    while (file.planned < file.refs.length) {
      this.filling.add(file);
      if (this.filling.full) await this.flush();
    }
  }

  /**
   * Queue what has been added behind the running batch (batches run one
   * after the other, in order) and wait for that one: the caller fills the
   * next batch while this one runs.
   */
  async flush(): Promise<void> {
    const batch = this.filling;
    if (batch.empty) return;
    this.filling = new ContentBatch(this.limits);
    const previous = this.running;
    this.running = previous.then(
      () => this.execute(batch),
      (err: unknown) => {
        this.failAll(batch, err);
        throw err;
      },
    );
    this.running.catch(() => {}); // observed by the next flush or by drain
    await previous;
  }

  /** Restore everything added so far and wait for it. */
  async drain(): Promise<void> {
    await this.flush();
    await this.running;
    await Promise.all([...this.finishing]);
  }

  /** Stop: files not restored yet fail with `err`; waits for the running batch to end. */
  async abandon(err: unknown): Promise<void> {
    this.stopped ??= err;
    this.failAll(this.filling, err);
    this.filling = new ContentBatch(this.limits);
    await this.running.catch(() => {});
  }

  private async execute(batch: ContentBatch<F>): Promise<void> {
    try {
      if (this.repo.loadBlobs && this.repo.blobLength) {
        // A chunk only files that open it themselves use can stay sealed (not opened here).
        const keepSealed = (id: BlobId) =>
          (batch.uses.get(id) ?? []).every((use) => use.file.takesSealed === true);
        const contentChecked = (id: BlobId) =>
          (batch.uses.get(id) ?? []).every((use) => use.file.checksContent === true);
        await this.repo.loadBlobs(
          batch.uses.keys(),
          async (id, result) => {
            this.hooks.checkAbort();
            const uses = batch.uses.get(id) ?? [];
            // A chunk used once is the use's alone to give away; one buffer for several uses is shared.
            const give = uses.length === 1;
            for (const use of uses) {
              const waiting = this.deliver(use, result, give);
              if (waiting) await waiting;
            }
          },
          { keepSealed, contentChecked },
        );
      } else {
        await this.loadInOrder(batch);
      }
    } catch (err) {
      this.stopped ??= err;
      this.failAll(batch, err);
      throw err;
    }
    // Every chunk of the batch was delivered: a file planned to its end must be complete.
    batch.files.forEach((file, i) => {
      if (batch.ends[i]! >= file.refs.length && !this.settled.has(file))
        this.fail(file, new IntegrityError('not every chunk of the file could be read'));
    });
  }

  /** Without Repo.loadBlobs: every use in file order, a few loads ahead (no dedup, no pack grouping). */
  private async loadInOrder(batch: ContentBatch<F>): Promise<void> {
    const order = batch.order;
    const loads: (Promise<Result> | undefined)[] = [];
    const start = (i: number) => {
      const use = order[i];
      if (!use) return;
      const ref = use.file.refs[use.index] as BlobId;
      loads[i] = this.repo.loadBlob(ref).then(
        (data): Result => ({ ok: true, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }),
        (error: unknown): Result => ({ ok: false, error }),
      );
    };
    for (let i = 0; i < LOAD_AHEAD; i++) start(i);
    for (let i = 0; i < order.length; i++) {
      this.hooks.checkAbort();
      start(i + LOAD_AHEAD);
      const result = await loads[i]!;
      loads[i] = undefined;
      await this.deliver(order[i]!, result, true); // a load of its own
    }
  }

  /**
   * Write one chunk into one file; returns a promise only when the file is
   * still being created or its hash lags behind (the reader waits on it).
   */
  private deliver(use: ChunkUse<F>, result: Result, give: boolean): Promise<void> | undefined {
    const file = use.file;
    if (this.settled.has(file)) return undefined;
    if (!result.ok) {
      this.fail(file, result.error);
      return undefined;
    }
    if (!file.ready) {
      return file.start().then(
        () => this.deliver(use, result, give),
        (err: unknown) => this.fail(file, err),
      );
    }
    let waiting: Promise<void> | undefined;
    const length = result.sealed?.rawLength ?? result.data.length; // write() takes the buffer
    try {
      waiting = file.write(use.index, result.data, give, result.sealed);
    } catch (err) {
      this.fail(file, err);
      return undefined;
    }
    this.hooks.onBytes(length);
    if (file.complete) this.finish(file);
    return waiting;
  }

  private finish(file: F): void {
    if (this.settled.has(file)) return;
    this.settled.add(file);
    this.hooks.done(file);
  }

  private fail(file: F, err: unknown): void {
    if (this.settled.has(file)) return;
    this.settled.add(file);
    this.hooks.failed(file, err);
  }

  private failAll(batch: ContentBatch<F>, err: unknown): void {
    for (const file of batch.files) this.fail(file, err);
  }
}
