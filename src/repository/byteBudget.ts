/**
 * A FIFO semaphore counted in bytes: bounds how much data is in flight
 * between accepting a blob and packing it, so memory stays bounded however
 * fast the caller produces chunks.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: { bytes: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private failure: unknown;

  constructor(private readonly limit: number) {}

  /** Wait until `bytes` fit (a single oversized request is admitted when nothing else is in flight). */
  acquire(bytes: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.waiters.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiters.push({ bytes, resolve, reject }));
  }

  release(bytes: number): void {
    this.used -= bytes;
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const next = this.waiters.shift()!;
      this.used += next.bytes;
      next.resolve();
    }
  }

  /** Reject every waiter and all future requests (the pipeline broke). */
  fail(err: unknown): void {
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  get inUse(): number {
    return this.used;
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }
}
