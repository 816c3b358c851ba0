/**
 * Content checksums computed on the client from a dump's row text, instead
 * of by the server with one extra scan per table: the dump tool already
 * streams every row through lifeboat, so the rows are hashed on the way, on a
 * worker thread, at no server time.
 *
 * A table's checksum is order-independent: the sum over its rows (mod 2^32
 * per lane) of a 64-bit hash of each row's bytes — two 32-bit lanes, one
 * MurmurHash3-x86-32 over little-endian words, one a multiplicative lane over
 * the same words, cross-mixed at the end. Row order, which a restore need
 * not preserve, does not matter; memory stays constant; two contents that
 * differ match by accident with probability about 2^-64. The hash is defined
 * on bytes only, so it is the same on every architecture and Node version.
 *
 * The hash and the scans that find rows in a dump's bytes run in a small
 * WebAssembly module (rowScan.wat), which defines the hash: rows come ~100
 * bytes each, and one call per run of rows instead of several JavaScript
 * calls per row (with the slots scanned in place, see RowScanMemory) cut the
 * row reader of a pgbench scale-50 backup from 0.62–0.83 s of CPU to 0.33 s
 * (docs/performance.md, session 15).
 */
import { createHash } from 'node:crypto';
import { ROW_SCAN_WASM } from './rowScanWasm.js';

/**
 * The module's code as one self-contained function of its imports: a worker
 * thread (rowReaderWorker.ts) evaluates its source text, so the rows are
 * hashed there by this very code. It may use only its parameters and
 * globals, no other module-level name.
 */
export function rowHashCode(sha256: typeof createHash, wasmBase64: string, shared?: RowScanMemory) {
  /** Bytes readable past the copied ones: the scans may load a few bytes beyond their end (never used). */
  const SLACK = 16;
  const PAGE = 65536;
  /** Most bytes a scan is given at once (memory use), and the least a framed scan starts with. */
  const MAX_WINDOW = 1 << 20;
  const MIN_WINDOW = 4 << 10;

  interface RowScanExports {
    s1: WebAssembly.Global;
    s2: WebAssembly.Global;
    rows: WebAssembly.Global;
    stopped: WebAssembly.Global;
    afterTuple: WebAssembly.Global;
    row(p: number, end: number): void;
    lines(p: number, end: number, stop: number): number;
    archiveChunks(p: number, end: number): number;
    copyData(p: number, end: number): number;
    tuples(p: number, end: number): number;
  }

  /** The module's instance and memory: one per thread, made on first use, in the memory given or a new one. */
  let wasm: RowScanExports | undefined;
  let memory: WebAssembly.Memory;
  /** Bytes that are not in the memory already are copied here. */
  const DATA = shared?.copyAt ?? 0;
  /** The memory as its owner's slots see it: bytes there are scanned where they are. */
  let inPlace: ArrayBufferLike | undefined;
  let bytes: Uint8Array<ArrayBufferLike> = new Uint8Array(0);

  function scanner(): RowScanExports {
    if (!wasm) {
      memory = shared?.memory ?? new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
      inPlace = memory.buffer;
      bytes = new Uint8Array(memory.buffer);
      const module = new WebAssembly.Module(Buffer.from(wasmBase64, 'base64'));
      wasm = new WebAssembly.Instance(module, { env: { memory } }).exports as RowScanExports;
    }
    return wasm;
  }

  /** Whether b lies in the module's memory (a worker's slot). */
  function inMemory(b: Uint8Array): boolean {
    scanner();
    return b.buffer === inPlace;
  }

  /** The address of b[start, end) in the memory: where it is, or where it is copied to. */
  function place(b: Uint8Array, start: number, end: number): number {
    if (inMemory(b)) return b.byteOffset + start;
    const need = DATA + (end - start) + SLACK;
    if (need > bytes.length) {
      memory.grow(Math.ceil((need - bytes.length) / PAGE));
      bytes = new Uint8Array(memory.buffer);
    }
    bytes.set(b.subarray(start, end), DATA);
    return DATA;
  }

  /** Accumulates the order-independent hash sum of rows (byte ranges without their line terminator). */
  class RowHashSum {
    rows = 0;
    /** The two lanes' sums (unsigned). */
    s1 = 0;
    s2 = 0;
    /** Bytes a framed scan copies at once: grows while scans use what they get, shrinks when they stop early. */
    private window = MIN_WINDOW;

    /** Add the row `b[start, end)`. */
    add(b: Uint8Array, start: number, end: number): void {
      const at = place(b, start, end);
      const w = scanner();
      this.run(w, () => (w.row(at, at + (end - start)), 0));
    }

    /**
     * Hash the lines of b[start, end) (at most MAX_WINDOW bytes); returns
     * where the unfinished last line starts, or where the stop line (two
     * bytes as a little-endian number, 0 for none) ends, with `true`.
     */
    lines(b: Uint8Array, start: number, end: number, stop: number): [number, boolean] {
      const base = place(b, start, end);
      const w = scanner();
      const at = this.run(w, () => w.lines(base, base + (end - start), stop));
      const stopped = w.stopped.value === 1;
      w.stopped.value = 0;
      return [at - base + start, stopped];
    }

    /**
     * Run one of the module's framed scans (archiveChunks, copyData,
     * tuples) over b from pos; returns where it stopped (pos itself when it
     * could do nothing) and the module, whose flags say why.
     */
    framed(
      scan: 'archiveChunks' | 'copyData' | 'tuples',
      b: Uint8Array,
      pos: number,
      end: number,
    ): [number, RowScanExports] {
      // Bytes in the memory already are scanned to their end; others a window at a time.
      const n = inMemory(b) ? end - pos : Math.min(end - pos, this.window);
      const base = place(b, pos, pos + n);
      const w = scanner();
      const at = this.run(w, () => w[scan](base, base + n)) - base + pos;
      if (n === this.window) {
        // A scan that stops early each time (data it leaves to the caller) copies little for it.
        this.window = (at - pos) * 2 >= n ? Math.min(MAX_WINDOW, n * 2) : Math.max(MIN_WINDOW, n >> 1);
      }
      return [at, w];
    }

    /** The table checksum recorded in a fingerprint (32 hex digits). */
    checksum(): string {
      return sha256('sha256')
        .update(`rowhash1:${this.rows}:${this.s1}:${this.s2}`)
        .digest('hex')
        .slice(0, 32);
    }

    /** Call a scan with this sum in the module's globals, and take the sums and rows back. */
    private run(w: RowScanExports, scan: () => number): number {
      w.s1.value = this.s1 | 0;
      w.s2.value = this.s2 | 0;
      w.rows.value = 0;
      const at = scan();
      this.s1 = w.s1.value >>> 0;
      this.s2 = w.s2.value >>> 0;
      this.rows += w.rows.value >>> 0;
      return at;
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
    /** The stop line as a little-endian number (0: none). */
    private readonly stop: number;
    /** Lines after a line equal to the stop line are not rows (COPY's `\.` end marker). */
    private stopped = false;

    /** `sum` may be shared: hashers of pieces of one table add into the same sum. */
    constructor(
      stopLine?: Uint8Array,
      readonly sum: RowHashSum = new RowHashSum(),
    ) {
      if (stopLine && stopLine.length !== 2) throw new Error('a stop line must be two bytes long');
      this.stop = stopLine ? (stopLine[0] as number) | ((stopLine[1] as number) << 8) : 0;
    }

    push(b: Uint8Array, start = 0, end = b.length): void {
      let pos = start;
      while (pos < end && !this.stopped) {
        if (this.carried > 0) {
          // The rest of a carried line: at most one per push, done here. The search stays within
          // [pos, end): an unbounded indexOf ran on to the next newline past `end`, so a long line
          // pushed in small pieces cost a scan of the rest of the buffer per piece.
          const found = b.subarray(pos, end).indexOf(10);
          const nl = found < 0 ? -1 : pos + found;
          if (nl < 0) {
            this.keep(b, pos, end);
            return;
          }
          this.keep(b, pos, nl);
          this.line(this.carry, 0, this.carried);
          this.carried = 0;
          pos = nl + 1;
          continue;
        }
        const pieceEnd = Math.min(end, pos + MAX_WINDOW);
        const [at, stopped] = this.sum.lines(b, pos, pieceEnd, this.stop);
        if (stopped) {
          this.stopped = true;
          return;
        }
        this.keep(b, at, pieceEnd);
        pos = pieceEnd;
      }
    }

    /**
     * The rows of pg_dump archive chunks from b[pos] (a chunk's length) on,
     * as far as the module's scan goes (archiveChunks in rowScan.wat);
     * returns where the caller's parser goes on. Only between lines.
     */
    archiveChunks(b: Uint8Array, pos: number, end: number): number {
      if (this.carried > 0 || this.stopped) return pos;
      const [at, w] = this.sum.framed('archiveChunks', b, pos, end);
      if (w.stopped.value === 1) {
        w.stopped.value = 0;
        this.stopped = true;
      }
      return at;
    }

    /** The same for a COPY TO's CopyData messages from b[pos] (a message's first byte). */
    copyData(b: Uint8Array, pos: number, end: number): number {
      if (this.carried > 0 || this.stopped) return pos;
      return this.sum.framed('copyData', b, pos, end)[0];
    }

    /** Bytes after the last line terminator (0 at a clean end). */
    get pending(): number {
      return this.carried;
    }

    private line(b: Uint8Array, start: number, end: number): void {
      if (
        this.stop !== 0 &&
        end - start === 2 &&
        ((b[start] as number) | ((b[start + 1] as number) << 8)) === this.stop
      ) {
        this.stopped = true;
        return;
      }
      this.sum.add(b, start, end);
    }

    private keep(b: Uint8Array, start: number, end: number): void {
      if (end <= start) return;
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

/**
 * A shared memory the module works in: a row reader's worker (rowReaderWorker.ts) has its slots in it, so the
 * bytes it is handed are scanned in place; only other bytes are copied, to `copyAt`.
 */
export interface RowScanMemory {
  memory: WebAssembly.Memory;
  copyAt: number;
}

export const { RowHashSum, LineHasher } = rowHashCode(createHash, ROW_SCAN_WASM);

/**
 * A CommonJS expression that evaluates to this module's classes, in a row reader's worker (rowReaderWorker.ts),
 * whose workerData holds the memory of its slots.
 */
export const rowHashSource = `(${rowHashCode.toString()})(require('node:crypto').createHash, '${ROW_SCAN_WASM}', require('node:worker_threads').workerData.rowScanMemory)`;
export type RowHashSum = InstanceType<typeof RowHashSum>;
export type LineHasher = InstanceType<typeof LineHasher>;
