/**
 * Content checksums computed on the client from a dump's row text, instead
 * of by the server with one extra scan per table: the dump tool already
 * streams every row through lifeboat, so hashing the rows on the way costs
 * ~0.6 ns per byte here (~0.8 with the archive framing) and no server time.
 *
 * A table's checksum is order-independent: the sum over its rows (mod 2^32
 * per lane) of a 64-bit hash of each row's bytes — two 32-bit lanes, one
 * MurmurHash3-x86-32 over little-endian words, one a multiplicative lane over
 * the same words, cross-mixed at the end. Row order, which a restore need
 * not preserve, does not matter; memory stays constant; two contents that
 * differ match by accident with probability about 2^-64. The hash is defined
 * on bytes only, so it is the same on every architecture and Node version.
 */
import { createHash } from 'node:crypto';

/**
 * The module's code as one self-contained function of its only import: a
 * worker thread (rowReaderWorker.ts) evaluates its source text, so the rows
 * are hashed there by this very code. It may use only its parameters and
 * globals, no other module-level name.
 */
export function rowHashCode(sha256: typeof createHash) {
  const C1 = 0xcc9e2d51;
  const C2 = 0x1b873593;

  /**
   * A DataView of the last buffer hashed: one little-endian 32-bit load per
   * word is about twice as fast as four byte loads (same values on any
   * architecture). Rows come many to a buffer, so a view is made per buffer.
   * One cache for all sums, not one per table: it keeps a single buffer alive.
   */
  let lastBuffer: Uint8Array | undefined;
  let lastView: DataView | undefined;

  function viewOf(b: Uint8Array): DataView {
    if (b !== lastBuffer || lastView === undefined) {
      lastBuffer = b;
      lastView = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return lastView;
  }

  /** Accumulates the order-independent hash sum of rows (byte ranges without their line terminator). */
  class RowHashSum {
    rows = 0;
    private s1 = 0;
    private s2 = 0;

    /** Add the row `b[start, end)`. */
    add(b: Uint8Array, start: number, end: number): void {
      const len = end - start;
      let h1 = 0x9747b28c ^ len;
      let h2 = C2;
      let i = start;
      const view = viewOf(b);
      for (; i + 4 <= end; i += 4) {
        let k = view.getInt32(i, true);
        h2 = (Math.imul(h2 ^ k, 0x01000193) + (h2 >>> 17)) | 0;
        k = Math.imul(k, C1);
        k = (k << 15) | (k >>> 17);
        k = Math.imul(k, C2);
        h1 ^= k;
        h1 = (h1 << 13) | (h1 >>> 19);
        h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
      }
      let k = 0;
      for (let shift = 0; i < end; i++, shift += 8) k |= b[i]! << shift;
      h2 = Math.imul(h2 ^ k ^ len, 0x01000193);
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h1 ^= k;
      h1 ^= h1 >>> 16;
      h1 = Math.imul(h1, 0x85ebca6b);
      h1 ^= h1 >>> 13;
      h1 = Math.imul(h1, 0xc2b2ae35);
      h1 ^= h1 >>> 16;
      h2 ^= h1;
      h2 ^= h2 >>> 15;
      h2 = Math.imul(h2, 0x2c1b3c6d);
      h2 ^= h2 >>> 12;
      h2 = Math.imul(h2, 0x297a2d39);
      h2 ^= h2 >>> 15;
      this.s1 = (this.s1 + (h1 >>> 0)) >>> 0;
      this.s2 = (this.s2 + (h2 >>> 0)) >>> 0;
      this.rows++;
    }

    /** The table checksum recorded in a fingerprint (32 hex digits). */
    checksum(): string {
      return sha256('sha256')
        .update(`rowhash1:${this.rows}:${this.s1}:${this.s2}`)
        .digest('hex')
        .slice(0, 32);
    }
  }

  /**
   * Splits a byte stream into `\n`-terminated lines and hashes each one
   * (without the `\n`) into a RowHashSum. Lines may span pushes; a line split
   * across pushes is carried over in a buffer that grows to the longest row.
   */
  class LineHasher {
    private carry: Buffer = Buffer.alloc(0);
    private carried = 0;
    /** Lines after a line equal to `stopLine` are not rows (COPY's `\.` end marker). */
    private stopped = false;

    /** `sum` may be shared: hashers of pieces of one table add into the same sum. */
    constructor(
      private readonly stopLine?: Uint8Array,
      readonly sum: RowHashSum = new RowHashSum(),
    ) {}

    push(b: Uint8Array, start = 0, end = b.length): void {
      let pos = start;
      while (pos < end && !this.stopped) {
        const nl = b.indexOf(10, pos);
        if (nl < 0 || nl >= end) {
          this.keep(b, pos, end);
          return;
        }
        if (this.carried > 0) {
          this.keep(b, pos, nl);
          this.line(this.carry, 0, this.carried);
          this.carried = 0;
        } else {
          this.line(b, pos, nl);
        }
        pos = nl + 1;
      }
    }

    /** Bytes after the last line terminator (0 at a clean end). */
    get pending(): number {
      return this.carried;
    }

    private line(b: Uint8Array, start: number, end: number): void {
      const stop = this.stopLine;
      if (stop && end - start === stop.length) {
        let same = true;
        for (let i = 0; i < stop.length; i++) if (b[start + i] !== stop[i]) same = false;
        if (same) {
          this.stopped = true;
          return;
        }
      }
      this.sum.add(b, start, end);
    }

    private keep(b: Uint8Array, start: number, end: number): void {
      const need = this.carried + (end - start);
      if (need > this.carry.length) {
        const bigger = Buffer.allocUnsafe(Math.max(need, this.carry.length * 2, 256));
        this.carry.copy(bigger, 0, 0, this.carried);
        this.carry = bigger;
      }
      this.carry.set(b.subarray(start, end), this.carried);
      this.carried = need;
    }
  }

  return { RowHashSum, LineHasher };
}

export const { RowHashSum, LineHasher } = rowHashCode(createHash);

/** A CommonJS expression that evaluates to this module's classes (for rowReaderWorker.ts). */
export const rowHashSource = `(${rowHashCode.toString()})(require('node:crypto').createHash)`;
export type RowHashSum = InstanceType<typeof RowHashSum>;
export type LineHasher = InstanceType<typeof LineHasher>;
