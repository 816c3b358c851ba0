import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LineHasher, RowHashSum } from '../../../../src/sources/database/rowHash.js';

/** 5,000 rows of 0-257 random bytes (no line end), from a fixed seed: every length, tail and alignment. */
function corpus(): Buffer[] {
  let x = 0x2545f491;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const rows: Buffer[] = [];
  for (let i = 0; i < 5000; i++) {
    const row = Buffer.alloc(next() % 258);
    for (let j = 0; j < row.length; j++) {
      const c = next() & 0xff;
      row[j] = c === 10 ? 11 : c;
    }
    rows.push(row);
  }
  return rows;
}

const sumOf = (rows: string[]): RowHashSum => {
  const s = new RowHashSum();
  for (const r of rows) {
    const b = Buffer.from(r);
    s.add(b, 0, b.length);
  }
  return s;
};

describe('RowHashSum', () => {
  const rows = ['1\talice\t10.50', '2\tbob\t\\N', '3\t\tx', '', '4\tü\t-0'];

  it('does not depend on row order', () => {
    expect(sumOf([...rows].reverse()).checksum()).toBe(sumOf(rows).checksum());
  });

  it('changes with any one byte, a lost row, or a duplicated row', () => {
    const base = sumOf(rows).checksum();
    expect(sumOf(['1\talice\t10.51', ...rows.slice(1)]).checksum()).not.toBe(base);
    expect(sumOf(rows.slice(1)).checksum()).not.toBe(base);
    expect(sumOf([...rows, rows[0] as string]).checksum()).not.toBe(base);
    // Moving bytes between columns of one row, or between rows, is a different content.
    expect(sumOf(['1\talic\te10.50', ...rows.slice(1)]).checksum()).not.toBe(base);
    expect(sumOf(['1\talice', '\t10.50', ...rows.slice(1)]).checksum()).not.toBe(base);
  });

  it('tells apart rows of every length up to 64 bytes that differ in one position', () => {
    const seen = new Set<string>();
    for (let len = 0; len <= 64; len++) {
      const row = Buffer.alloc(len, 0x61);
      const s = new RowHashSum();
      s.add(row, 0, len);
      seen.add(s.checksum());
      for (let i = 0; i < len; i++) {
        const changed = Buffer.from(row);
        changed[i] = 0x62;
        const c = new RowHashSum();
        c.add(changed, 0, len);
        seen.add(c.checksum());
      }
    }
    expect(seen.size).toBe(1 + (64 * 65) / 2 + 64);
  });

  it('keeps its value: backups made with it are verified against it later', () => {
    // The hash is part of the repository format (fingerprints store it); a change breaks old snapshots.
    expect(sumOf(rows).checksum()).toBe(PINNED);
    expect(new RowHashSum().checksum()).toBe(PINNED_EMPTY);
    // Pinned with the JavaScript implementation that came before the WebAssembly one.
    const all = corpus();
    const s = new RowHashSum();
    for (const row of all) s.add(row, 0, row.length);
    expect([s.rows, s.checksum()]).toEqual([5000, PINNED_CORPUS]);
    // Rows at every offset of one buffer (unaligned word loads).
    const packed = Buffer.concat(all);
    const p = new RowHashSum();
    let at = 0;
    for (const row of all) p.add(packed, at, (at += row.length));
    expect(p.checksum()).toBe(PINNED_CORPUS);
  });

  it('is the module compiled from rowScan.wat', () => {
    execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { stdio: 'pipe' });
  });
});

describe('LineHasher', () => {
  const text = '1\ta\n22\tbb\n\n333\tccc\n\\.\n\n\n';

  it('hashes the same rows however the stream is cut, and stops at the end marker', () => {
    const whole = new LineHasher(Buffer.from('\\.'));
    whole.push(Buffer.from(text));
    expect(whole.sum.rows).toBe(4);
    expect(whole.sum.checksum()).toBe(sumOf(['1\ta', '22\tbb', '', '333\tccc']).checksum());
    for (const size of [1, 2, 3, 7]) {
      const cut = new LineHasher(Buffer.from('\\.'));
      const b = Buffer.from(text);
      for (let i = 0; i < b.length; i += size) cut.push(b, i, Math.min(b.length, i + size));
      expect(cut.sum.checksum()).toBe(whole.sum.checksum());
      expect(cut.pending).toBe(0);
    }
  });

  it('hashes lines in pushes larger than its window and lines longer than it, as one row each', () => {
    const all = corpus();
    const text = Buffer.concat(all.flatMap((row) => [row, Buffer.from('\n')]));
    const long = Buffer.alloc(3 << 20, 0x41);
    const stream = Buffer.concat([text, long, Buffer.from('\n'), text]);
    const expected = new RowHashSum();
    for (const row of [...all, long, ...all]) expected.add(row, 0, row.length);
    for (const size of [1, 4095, 65536, 1 << 20, stream.length]) {
      const h = new LineHasher();
      for (let i = 0; i < stream.length; i += size) h.push(stream, i, Math.min(stream.length, i + size));
      expect([h.sum.rows, h.sum.checksum(), h.pending], `pieces of ${size}`).toEqual([
        10001,
        expected.checksum(),
        0,
      ]);
    }
  });

  it('takes only a two-byte stop line', () => {
    expect(() => new LineHasher(Buffer.from('END'))).toThrow(/two bytes/);
  });

  it('reports an unterminated last row as pending', () => {
    const h = new LineHasher();
    h.push(Buffer.from('1\ta\n2\tb'));
    expect(h.sum.rows).toBe(1);
    expect(h.pending).toBe(3);
  });
});

const PINNED = '301e04f6c89cd1a07c8f2330bbd44565';
const PINNED_EMPTY = 'f34ed00773b401bbc0d2165b69c2c6fc';
const PINNED_CORPUS = 'f478ba0edc52aefe7a5a1b9e23454fe9';
