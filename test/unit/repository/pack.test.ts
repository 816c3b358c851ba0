import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  buildPackTrailer,
  checkPackLayout,
  decodePackHeader,
  encodePackHeader,
  parsePackTail,
  type PackEntry,
} from '../../../src/repository/pack.js';
import { seal } from '../../../src/repository/crypto.js';
import { flipByte } from './helpers.js';

const key = randomBytes(32);
const entries: PackEntry[] = [
  { id: 'a'.repeat(64), type: 'data', compression: 'zstd', offset: 0, length: 40, rawLength: 100 },
  { id: 'b'.repeat(64), type: 'data', compression: 'none', offset: 40, length: 29, rawLength: 1 },
];

describe('pack format', () => {
  it('encodes 48-byte entries after a 12-byte prefix and decodes them back', () => {
    const header = encodePackHeader(entries);
    expect(header.length).toBe(12 + 2 * 48);
    expect(header.subarray(0, 4).toString()).toBe('LBPK');
    expect(decodePackHeader(header)).toEqual(entries);
  });

  it('rejects malformed headers with a reason', () => {
    const header = encodePackHeader(entries);
    expect(decodePackHeader(Buffer.concat([header, Buffer.alloc(1)]))).toMatch(/length/);
    const badType = Buffer.from(header);
    badType[12] = 7;
    expect(decodePackHeader(badType)).toMatch(/unknown blob type/);
    const badMagic = Buffer.from(header);
    badMagic[0] = 0;
    expect(decodePackHeader(badMagic)).toMatch(/magic/);
  });

  it('checks that blob records tile the pack', () => {
    expect(checkPackLayout(entries, 69)).toBeUndefined();
    expect(checkPackLayout(entries, 70)).toMatch(/header starts at 70/);
    expect(checkPackLayout([entries[1]!], 29)).toMatch(/starts at 40, expected 0/);
  });

  it('parses the sealed trailer of a whole pack and detects tampering', () => {
    const blobs = [seal(key, Buffer.alloc(12), 'x'), seal(key, Buffer.alloc(1), 'y')];
    const pack = Buffer.concat([...blobs, buildPackTrailer(key, entries)]);
    expect(parsePackTail(key, pack)).toEqual(entries);
    const tampered = Buffer.from(pack);
    flipByte(tampered, pack.length - 10);
    expect(parsePackTail(key, tampered)).toMatch(/authentication/);
    expect(parsePackTail(randomBytes(32), pack)).toMatch(/authentication/);
    expect(parsePackTail(key, pack.subarray(0, 20))).toMatch(/too short/);
  });
});
