import { describe, expect, it } from 'vitest';
import { LineHasher, RowHashSum } from '../../../../src/sources/database/rowHash.js';

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

  it('reports an unterminated last row as pending', () => {
    const h = new LineHasher();
    h.push(Buffer.from('1\ta\n2\tb'));
    expect(h.sum.rows).toBe(1);
    expect(h.pending).toBe(3);
  });
});

const PINNED = '301e04f6c89cd1a07c8f2330bbd44565';
const PINNED_EMPTY = 'f34ed00773b401bbc0d2165b69c2c6fc';
