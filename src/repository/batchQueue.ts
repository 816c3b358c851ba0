/**
 * Gathers items into batches for one worker job each: a batch closes when it
 * holds `maxItems` items or `maxBytes` bytes, or on the next turn of the event
 * loop; at most `maxInFlight()` batches run at once, the rest wait in order.
 * Each add() resolves with its item's result, or rejects with the batch's
 * error. Used by smallFiles.ts (backup reads) and smallFileWrites.ts (restore
 * writes).
 */
export interface BatchQueueOptions<T, R> {
  maxItems: number;
  maxBytes: number;
  /** Batches that may run at once (read at every send: the worker count can change). */
  maxInFlight: () => number;
  /** Run one batch; one result per item, in order. */
  run: (items: T[]) => Promise<R[]>;
  /** A batch of `bytes` is done (answered or failed). */
  settled?: (bytes: number) => void;
}

interface Batch<T, R> {
  items: T[];
  bytes: number;
  waiters: { resolve: (result: R) => void; reject: (err: unknown) => void }[];
  timer: NodeJS.Immediate;
}

export class BatchQueue<T, R> {
  private open: Batch<T, R> | undefined;
  private readonly waiting: Batch<T, R>[] = [];
  private inFlight = 0;

  constructor(private readonly opts: BatchQueueOptions<T, R>) {}

  /** Add `item` (counting `bytes`) to the open batch; resolves with its result. */
  add(item: T, bytes: number): Promise<R> {
    if (this.open && this.open.bytes + bytes > this.opts.maxBytes && this.open.items.length > 0) {
      this.close(this.open);
    }
    let batch = this.open;
    if (!batch) {
      const opened: Batch<T, R> = {
        items: [],
        bytes: 0,
        waiters: [],
        timer: setImmediate(() => this.close(opened)),
      };
      batch = this.open = opened;
    }
    batch.items.push(item);
    batch.bytes += bytes;
    const result = new Promise<R>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (batch.items.length >= this.opts.maxItems || batch.bytes >= this.opts.maxBytes) this.close(batch);
    return result;
  }

  /** Close the open batch and send it when a slot is free (else it waits its turn). */
  private close(batch: Batch<T, R>): void {
    if (this.open !== batch) return;
    this.open = undefined;
    clearImmediate(batch.timer);
    this.waiting.push(batch);
    this.send();
  }

  private send(): void {
    while (this.waiting.length > 0 && this.inFlight < this.opts.maxInFlight()) {
      const batch = this.waiting.shift()!;
      this.inFlight++;
      this.opts
        .run(batch.items)
        .then((results) => {
          if (results.length !== batch.items.length) {
            throw new Error(`a batch of ${batch.items.length} came back with ${results.length} results`);
          }
          results.forEach((r, i) => batch.waiters[i]!.resolve(r));
        })
        .catch((err: unknown) => {
          for (const waiter of batch.waiters) waiter.reject(err);
        })
        .finally(() => {
          this.inFlight--;
          this.opts.settled?.(batch.bytes);
          this.send();
        });
    }
  }
}
