import { describe, expect, it } from 'vitest';
import { splitBySize } from '../../../../src/sources/mysql/restore.js';

describe('splitBySize (the tables of the side-by-side verification dumps)', () => {
  it('balances the groups by size, largest table first', () => {
    const tables = [
      { name: 'small', size: 1 },
      { name: 'big', size: 10 },
      { name: 'mid', size: 2 },
      { name: 'large', size: 9 },
    ];
    expect(splitBySize(tables, 2)).toEqual([
      ['big', 'small'],
      ['large', 'mid'],
    ]);
  });

  it('puts every table in exactly one group and makes no empty group', () => {
    const tables = Array.from({ length: 7 }, (_, i) => ({ name: `t${i}`, size: (i * 37) % 11 }));
    const groups = splitBySize(tables, 2);
    expect(groups.flat().sort()).toEqual(tables.map((t) => t.name).sort());
    expect(splitBySize([{ name: 'only', size: 5 }], 2)).toEqual([['only']]);
    expect(splitBySize([], 2)).toEqual([]);
  });
});
