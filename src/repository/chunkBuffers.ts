/**
 * Buffers for chunks on their way to a sealing worker, used again and again.
 *
 * A chunk to be sealed is copied into a buffer of its own, moved to a worker
 * and handed back once sealed (workerPool.ts). Freshly allocated each time,
 * every chunk left a dead ArrayBuffer on the calling thread, and V8 collects
 * those only by counting their bytes: a scavenge for every 32 MiB and a full
 * mark-compact for every 64 MiB or so. Measured on a 478 MiB MariaDB dump
 * (2 cores): 63 scavenges and 43 mark-compacts on the main thread, ~0.6 s of
 * pauses there plus ~0.75 s of concurrent marking on V8's helper threads, for a
 * heap of 10 MB. A buffer that comes back is kept here and filled with a later
 * chunk instead: nothing is allocated and nothing dies.
 *
 * A buffer is at least as large as the chunk it holds; the chunk is a view
 * from its offset 0, and the whole buffer travels (WorkerPool.seal sends the
 * length along).
 */

/** New buffers are allocated in steps of this size, so that one can serve chunks of nearby lengths. */
const CAPACITY_STEP = 512 * 1024;
/** Capacity kept for reuse in all: about the chunks in flight (the 16 MiB budget plus those being cut). */
const RETAINED_CAPACITY = 40 * 1024 * 1024;

export class ChunkBuffers {
  /** Buffers ready for reuse, in no particular order. */
  private readonly free: ArrayBuffer[] = [];
  private freeCapacity = 0;
  /** Every buffer handed out by take() (WeakSet: a buffer never returned is simply collected). */
  private readonly issued = new WeakSet<ArrayBuffer>();

  /** A view of `length` bytes from offset 0 of a reused or new buffer (contents undefined). */
  take(length: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const capacity = (this.free[i] as ArrayBuffer).byteLength;
      if (capacity >= length && (best < 0 || capacity < (this.free[best] as ArrayBuffer).byteLength))
        best = i;
    }
    let buffer: ArrayBuffer;
    if (best >= 0) {
      buffer = this.free[best] as ArrayBuffer;
      this.free[best] = this.free[this.free.length - 1] as ArrayBuffer;
      this.free.pop();
      this.freeCapacity -= buffer.byteLength;
    } else {
      const capacity = Math.max(CAPACITY_STEP, Math.ceil(length / CAPACITY_STEP) * CAPACITY_STEP);
      buffer = Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer;
      this.issued.add(buffer);
    }
    return Buffer.from(buffer, 0, length);
  }

  /** Whether `buffer` came from take() (and may travel whole with a chunk cut from its start). */
  owns(buffer: ArrayBufferLike): boolean {
    return buffer instanceof ArrayBuffer && this.issued.has(buffer);
  }

  /**
   * Return a buffer nobody uses any more (one that came from take(), or came
   * back from a worker after such a buffer was moved there). Detached buffers
   * and what exceeds the retained capacity are left to the garbage collector.
   */
  give(buffer: ArrayBuffer): void {
    const capacity = buffer.byteLength;
    if (capacity === 0 || this.freeCapacity + capacity > RETAINED_CAPACITY) return;
    this.issued.add(buffer);
    this.free.push(buffer);
    this.freeCapacity += capacity;
  }
}
