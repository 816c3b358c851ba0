import { describe, expect, it } from 'vitest';
import { canDump, majorOf, parseToolVersion } from '../../../../src/sources/postgres/tools.js';
import { tableKey } from '../../../../src/sources/postgres/fingerprint.js';

describe('pg_dump version checks', () => {
  it.each([
    ['pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)', 150020],
    ['pg_dump (PostgreSQL) 9.6.24', 90624],
    ['pg_dump (PostgreSQL) 16beta1', 160000],
    ['pg_dump (PostgreSQL) 17.0', 170000],
  ])('parses %s', (text, num) => {
    expect(parseToolVersion(text)).toBe(num);
  });

  it('returns undefined for other output', () => {
    expect(parseToolVersion('mysqldump  Ver 8.0.36')).toBeUndefined();
  });

  it('allows the same or a newer major version only', () => {
    expect(canDump(150020, 150001)).toBe(true);
    expect(canDump(150001, 150020)).toBe(true); // minor releases do not matter
    expect(canDump(160002, 150020)).toBe(true);
    expect(canDump(150020, 160001)).toBe(false);
    expect(canDump(90624, 100001)).toBe(false);
    expect(canDump(100001, 90624)).toBe(true);
    expect(canDump(90500, 90624)).toBe(false);
  });

  it('names major versions the way PostgreSQL does', () => {
    expect(majorOf(150020)).toBe('15');
    expect(majorOf(90624)).toBe('9.6');
  });
});

describe('tableKey', () => {
  it('quotes a part only when it holds a dot or a quote', () => {
    expect(tableKey({ schema: 'public', name: 'orders' })).toBe('public.orders');
    expect(tableKey({ schema: 'a.b', name: 'c' })).toBe('"a.b".c');
    expect(tableKey({ schema: 'a', name: 'b.c' })).toBe('a."b.c"');
    expect(tableKey({ schema: 'public', name: 'we"ird ü' })).toBe('public."we""ird ü"');
  });
});
