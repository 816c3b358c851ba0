/**
 * The chunker's hot loop — the 32-bit gear hash over a span of bytes until
 * (h & mask) === 0 — in a tiny WebAssembly module, about three times the
 * speed of the same loop in JavaScript (docs/performance.md). WebAssembly is
 * part of Node.js: nothing is installed or built. The module is assembled
 * below from its text form (shown in the comment), so it can be read and
 * checked; gearScanJs is the same loop in JavaScript, the reference the unit
 * tests compare it with.
 *
 *   (module
 *     (memory (export "memory") 5 5)           ;; [0,1024) gear table, [1024,1024+SCRATCH) bytes
 *     (global (export "h") (mut i32) (i32.const 0))
 *     (func (export "scan") (param $i i32) (param $end i32) (param $h i32) (param $mask i32) (result i32)
 *       block $done
 *         loop $next
 *           (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
 *           (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
 *                                  (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
 *           (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *           (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
 *             (then (global.set 0 (local.get $h)) (return (local.get $i))))
 *           br $next
 *         end
 *       end
 *       (global.set 0 (local.get $h))
 *       (i32.const 0)))
 *
 * scan returns the address just past the byte whose hash matched, or 0 when
 * none did; either way the global `h` holds the hash after the last byte.
 */

const GEAR_AT = 0;
const DATA_AT = 1024;
/** Bytes copied into the module's memory per call (5 pages of 64 KiB minus the gear table). */
const SCRATCH = 5 * 65536 - DATA_AT;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];

const I32 = 0x7f;
// prettier-ignore
const SCAN_BODY = [
  0x00, // no locals
  0x02, 0x40, // block $done
  0x03, 0x40, //   loop $next
  0x20, 0x00, 0x20, 0x01, 0x4f, 0x0d, 0x01, // br_if $done (i >= end)
  0x20, 0x02, 0x41, 0x01, 0x74, // h << 1
  0x20, 0x00, 0x2d, 0x00, 0x00, 0x41, 0x02, 0x74, 0x28, 0x02, 0x00, // gear[mem[i]]
  0x6a, 0x21, 0x02, // h = sum
  0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00, // i++
  0x20, 0x02, 0x20, 0x03, 0x71, 0x45, // (h & mask) == 0
  0x04, 0x40, 0x20, 0x02, 0x24, 0x00, 0x20, 0x00, 0x0f, 0x0b, // if: global h = h; return i
  0x0c, 0x00, // br $next
  0x0b, // end loop
  0x0b, // end block
  0x20, 0x02, 0x24, 0x00, 0x41, 0x00, // global h = h; 0
  0x0b, // end func
];

// prettier-ignore
const MODULE_BYTES = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [0x01, 0x60, 0x04, I32, I32, I32, I32, 0x01, I32]), // type 0: (i32 i32 i32 i32) -> i32
  ...section(3, [0x01, 0x00]), // function 0 has type 0
  ...section(5, [0x01, 0x01, 0x05, 0x05]), // memory: min 5, max 5 pages
  ...section(6, [0x01, I32, 0x01, 0x41, 0x00, 0x0b]), // global 0: mut i32 = 0
  ...section(7, [0x03, ...name('memory'), 0x02, 0x00, ...name('h'), 0x03, 0x00, ...name('scan'), 0x00, 0x00]),
  ...section(10, [0x01, ...uleb(SCAN_BODY.length), ...SCAN_BODY]),
]);

interface ScanExports {
  memory: { buffer: ArrayBuffer };
  h: { value: number };
  scan: (from: number, end: number, h: number, mask: number) => number;
}

let compiled: WebAssembly.Module | undefined;

/** Result of a scan: the index just past the matching byte (or -1 when none matched) and the hash after the last byte hashed. */
export interface GearScanResult {
  end: number;
  hash: number;
}

/** A gear scanner for one gear table. */
export interface GearScanner {
  /** Hash buf[from, to) starting from `hash`; stop after the first byte where (h & mask) === 0. */
  scan(buf: Uint8Array, from: number, to: number, hash: number, mask: number): GearScanResult;
}

/** The reference loop in JavaScript (the chunker's original hot loop). */
export function gearScanJs(gear: Int32Array): GearScanner {
  return {
    scan(buf, from, to, hash, mask) {
      let h = hash;
      for (let i = from; i < to; i++) {
        h = ((h << 1) + gear[buf[i]!]!) | 0;
        if ((h & mask) === 0) return { end: i + 1, hash: h };
      }
      return { end: -1, hash: h };
    },
  };
}

/** The WebAssembly scanner (one instance, 320 KiB, per gear table). */
export function gearScanWasm(gear: Int32Array): GearScanner {
  compiled ??= new WebAssembly.Module(MODULE_BYTES);
  const exports = new WebAssembly.Instance(compiled).exports as ScanExports;
  const mem = new Uint8Array(exports.memory.buffer);
  // WebAssembly memory is little-endian whatever the host: store the table explicitly so.
  const table = new DataView(exports.memory.buffer, GEAR_AT, 1024);
  for (let b = 0; b < 256; b++) table.setInt32(b * 4, gear[b]!, true);
  const scanFn = exports.scan;
  const hGlobal = exports.h;
  return {
    scan(buf, from, to, hash, mask) {
      let h = hash;
      for (let i = from; i < to;) {
        const n = Math.min(to - i, SCRATCH);
        mem.set(buf.subarray(i, i + n), DATA_AT);
        const at = scanFn(DATA_AT, DATA_AT + n, h, mask);
        h = hGlobal.value;
        if (at !== 0) return { end: i + (at - DATA_AT), hash: h };
        i += n;
      }
      return { end: -1, hash: h };
    },
  };
}

const scanners = new WeakMap<Int32Array, GearScanner>();

/**
 * The scanner for `gear` (WebAssembly; shared by every cutter of that table — scans never overlap).
 * The table is copied into the module: it must not change afterwards (gear tables never do).
 */
export function gearScanner(gear: Int32Array): GearScanner {
  let s = scanners.get(gear);
  if (!s) {
    s = gearScanWasm(gear);
    scanners.set(gear, s);
  }
  return s;
}
