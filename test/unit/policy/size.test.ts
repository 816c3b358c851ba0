import { describe, expect, it } from 'vitest';
import { formatSize, parseSize, readSize } from '../../../src/policy/size.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe('readSize', () => {
  it.each([
    ['512KiB', 512 * KiB],
    ['16MiB', 16 * MiB],
    ['1GiB', GiB],
    ['1G', GiB],
    ['2g', 2 * GiB],
    ['16mib', 16 * MiB],
    ['500MB', 500_000_000],
    ['1kB', 1000],
    ['2048', 2048],
    [2048, 2048],
    ['100B', 100],
    ['1.5GiB', 1.5 * GiB],
    ['4 MiB', 4 * MiB],
  ])('%j is %d bytes', (text, bytes) => {
    expect(readSize(text)).toEqual({ ok: true, bytes });
  });

  it.each([
    ['16MiBs', /unknown unit "MiBs"/],
    ['16XB', /unknown unit "XB"/],
    ['1.5', /not a whole number of bytes/],
    [1.5, /not a whole number of bytes/],
    [-1, /not a whole number of bytes/],
    ['big', /cannot read "big" as a size/],
    ['99999999P', /too large/],
    [false, /expected a size/],
  ])('%j is refused', (text, message) => {
    const result = readSize(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(message);
  });

  it('parseSize throws a RangeError', () => {
    expect(parseSize('1KiB')).toBe(1024);
    expect(() => parseSize('1QiB')).toThrow(RangeError);
  });
});

describe('formatSize', () => {
  it.each([
    [16 * MiB, '16MiB'],
    [1.5 * GiB, '1.5GiB'],
    [512, '512B'],
    [4 * KiB, '4KiB'],
    [3 * 1024 * GiB, '3TiB'],
  ])('%d is %j', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
    expect(parseSize(text)).toBe(bytes);
  });
});
