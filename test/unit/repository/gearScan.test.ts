import { describe, expect, it } from 'vitest';
import { deriveGearTable } from '../../../src/repository/chunker.js';
import { gearScanJs, gearScanWasm } from '../../../src/repository/gearScan.js';
import { pseudoRandom, textLike } from './helpers.js';

/** Every match of `mask` over buf, as [end, hash] pairs, plus the final hash: the scanner driven to the end. */
function allMatches(scan: ReturnType<typeof gearScanJs>, buf: Uint8Array, from: number, mask: number) {
  const out: [number, number][] = [];
  let r = scan.scan(buf, from, buf.length, 12345, mask);
  while (r.end >= 0) {
    out.push([r.end, r.hash]);
    r = scan.scan(buf, r.end, buf.length, r.hash, mask);
  }
  return { out, last: r.hash };
}

describe('gear scan in WebAssembly', () => {
  const gear = deriveGearTable(Buffer.alloc(32, 9));

  it.each([
    ['random bytes, frequent matches', pseudoRandom(3 * 1024 * 1024 + 7, 'gs'), 8, 1000],
    ['random bytes, rare matches', pseudoRandom(3 * 1024 * 1024, 'gs2'), 15, 10],
    ['text, longer than one scratch copy', textLike(2 * 1024 * 1024 + 99, 'gs3'), 11, 10],
    ['zeros', Buffer.alloc(700_000), 3, 0],
  ])('matches the JavaScript loop exactly: %s', (_name, buf, bits, minMatches) => {
    const mask = (~0 << (32 - bits)) | 0;
    const js = allMatches(gearScanJs(gear), buf, 5, mask);
    const wasm = allMatches(gearScanWasm(gear), buf, 5, mask);
    expect(wasm).toEqual(js);
    expect(js.out.length).toBeGreaterThanOrEqual(minMatches);
  });

  it('honours the end of the span and an empty span', () => {
    const buf = pseudoRandom(100_000, 'span');
    const never = -1; // every bit set: (h & mask) === 0 only when h === 0
    const wasm = gearScanWasm(gear);
    const js = gearScanJs(gear);
    expect(wasm.scan(buf, 10, 90_000, 7, never)).toEqual(js.scan(buf, 10, 90_000, 7, never));
    expect(wasm.scan(buf, 50, 50, 7, never)).toEqual({ end: -1, hash: 7 });
  });
});
