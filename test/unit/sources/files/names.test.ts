import { describe, expect, it } from 'vitest';
import type { TreeNode } from '../../../../src/repository/tree.js';
import {
  decodeName,
  escapeInvalidUtf8,
  isUtf8,
  joinRaw,
  nameBytes,
  uniqueDisplayNames,
  unsafeNameReason,
} from '../../../../src/sources/files/names.js';

describe('file names as bytes', () => {
  it('keeps valid UTF-8 names as text only', () => {
    expect(decodeName(Buffer.from('héllo'))).toEqual({ name: 'héllo' });
  });

  it('records invalid UTF-8 names as base64 bytes and round-trips them', () => {
    const raw = Buffer.from([0x66, 0xff, 0xfe, 0x6f]);
    const decoded = decodeName(raw);
    expect(decoded.nameRaw).toBe(raw.toString('base64'));
    expect(nameBytes(decoded).equals(raw)).toBe(true);
    expect(isUtf8(raw)).toBe(false);
  });

  it('shows invalid bytes as \\xNN and keeps valid multi-byte characters', () => {
    expect(escapeInvalidUtf8(Buffer.from([0x61, 0xff, 0xc3, 0xa9, 0xe2, 0x82]))).toBe('a\\xffé\\xe2\\x82');
    // Overlong encodings and surrogates are not valid UTF-8.
    expect(escapeInvalidUtf8(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    expect(escapeInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(escapeInvalidUtf8(Buffer.from('😀'))).toBe('😀');
  });

  it('makes escaped names unique among siblings without touching real names', () => {
    const node = (name: string, raw?: Buffer): TreeNode => ({
      name: raw ? escapeInvalidUtf8(raw) : name,
      ...(raw ? { nameRaw: raw.toString('base64') } : {}),
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtimeNs: '0',
    });
    const nodes = [node('a\\xff'), node('', Buffer.from([0x61, 0xff])), node('a\\xff~1')];
    uniqueDisplayNames(nodes);
    expect(nodes.map((n) => n.name)).toEqual(['a\\xff', 'a\\xff~2', 'a\\xff~1']);
    expect(nameBytes(nodes[1]!).equals(Buffer.from([0x61, 0xff]))).toBe(true);
  });

  it('joins without doubling the root slash', () => {
    expect(joinRaw(Buffer.from('/'), Buffer.from('etc')).toString()).toBe('/etc');
    expect(joinRaw(Buffer.from('/srv'), Buffer.from('www')).toString()).toBe('/srv/www');
  });

  it.each([
    ['', 'empty'],
    ['.', '"."'],
    ['..', '".."'],
    ['a/b', '"/"'],
    ['/etc', '"/"'],
    ['a\0b', 'NUL'],
  ])('refuses the name %j', (name, why) => {
    expect(unsafeNameReason(Buffer.from(name))).toContain(why);
  });

  it('accepts ordinary odd names', () => {
    for (const name of ['...', '.hidden', 'a b', '-rf', 'a\\b', 'ü']) {
      expect(unsafeNameReason(Buffer.from(name))).toBeUndefined();
    }
  });
});
