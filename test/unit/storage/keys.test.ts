import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../../../src/storage/errors.js';
import {
  isTempName,
  keyProblem,
  validateKey,
  validatePrefix,
  validateRange,
} from '../../../src/storage/keys.js';

describe('keyProblem', () => {
  it.each([
    ['config'],
    ['data/ab/abcdef0123'],
    ['a b/ü=€+x'],
    ['x/.hidden'],
    ['x/..dots'],
    ['x/...'],
    [`a/${'x'.repeat(200)}`],
  ])('accepts %j', (key) => {
    expect(keyProblem(key)).toBeUndefined();
  });

  it.each([
    ['', /empty key/],
    ['/etc/passwd', /absolute/],
    ['a//b', /empty path segment/],
    ['a/', /empty path segment/],
    ['..', /".." segments/],
    ['a/../b', /".." segments/],
    ['./a', /"\." segments/],
    ['a\0b', /control/],
    ['a\tb', /control/],
    ['a\u007fb', /control/],
    [`a/${'x'.repeat(201)}`, /segment is longer than 200/],
    [`${'abcdefgh/'.repeat(114)}z`, /longer than 1024 bytes/],
    ['data/.obj.tmp-0123456789ab', /reserved/],
  ])('rejects %j', (key, reason) => {
    expect(keyProblem(key)).toMatch(reason);
    expect(() => validateKey(key)).toThrow(InvalidKeyError);
  });

  it('counts bytes, not characters', () => {
    expect(keyProblem('€'.repeat(66))).toBeUndefined(); // 198 bytes
    expect(keyProblem('€'.repeat(67))).toMatch(/longer than 200/); // 201 bytes
  });

  it('shows the offending key escaped in the message', () => {
    expect(() => validateKey('a\0b')).toThrow(
      'invalid storage key "a\\u0000b": contains a NUL or control character',
    );
  });
});

describe('validatePrefix', () => {
  it.each(['', 'data', 'data/', 'data/a', 'data/ab/', 'x/..', 'x/.'])('accepts %j', (prefix) => {
    expect(() => validatePrefix(prefix)).not.toThrow();
  });
  it.each(['/', '/data', '../', 'a/../', 'a//', './x', 'a\0'])('rejects %j', (prefix) => {
    expect(() => validatePrefix(prefix)).toThrow(InvalidKeyError);
  });
});

describe('validateRange', () => {
  it('accepts non-negative integer ranges', () => {
    expect(() => validateRange(undefined)).not.toThrow();
    expect(() => validateRange({ offset: 0, length: 0 })).not.toThrow();
    expect(() => validateRange({ offset: 5, length: Number.MAX_SAFE_INTEGER - 5 })).not.toThrow();
  });
  it.each([
    { offset: -1, length: 1 },
    { offset: 0, length: -1 },
    { offset: 0.5, length: 1 },
    { offset: 0, length: Number.NaN },
    { offset: 0, length: Infinity },
  ])('rejects %j', (range) => {
    expect(() => validateRange(range)).toThrow(RangeError);
  });
});

describe('isTempName', () => {
  it.each([
    ['.obj.tmp-0123456789ab', true],
    ['.a.b.tmp-abcdefabcdef', true],
    ['obj.tmp-0123456789ab', false],
    ['.obj.tmp-0123456789', false],
    ['.obj.tmp-0123456789AB', false],
    ['.hidden', false],
  ])('%s -> %s', (name, expected) => {
    expect(isTempName(name)).toBe(expected);
  });
});
