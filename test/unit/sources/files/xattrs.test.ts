import { describe, expect, it } from 'vitest';
import { majorMinor } from '../../../../src/sources/files/specialNodes.js';
import { parseGetfattr, quote, unquote } from '../../../../src/sources/files/xattrs.js';

describe('getfattr/setfattr text format', () => {
  it('parses dump output with escapes', () => {
    const out = [
      '# file: /t/a b',
      'user.k1=0saGVsbG8=',
      '',
      '# file: /t/n\\012l',
      'user.k2=0s',
      '',
      '# file: /t/e=q',
      'user.eq\\075x=0sAAEC',
      '',
    ].join('\n');
    const parsed = parseGetfattr(out);
    expect(parsed.get('/t/a b')).toEqual({ 'user.k1': 'aGVsbG8=' });
    expect(parsed.get('/t/n\nl')).toEqual({ 'user.k2': '' });
    expect(parsed.get('/t/e=q')).toEqual({ 'user.eq=x': 'AAEC' });
  });

  it('quotes so that unquote gives the bytes back', () => {
    const raw = Buffer.from('/a\nb\\c=d e\x7ff\tg', 'latin1');
    const quoted = quote(raw).toString('latin1');
    expect(quoted).not.toMatch(/[\n\t =]/);
    expect(unquote(quoted).equals(raw)).toBe(true);
  });
});

describe('majorMinor', () => {
  it.each([
    [0x0103, 1, 3], // /dev/null
    [0x0805, 8, 5],
    [66309, 259, 5],
    [1050668, 8, 300],
  ])('splits %i', (rdev, major, minor) => {
    const mm = majorMinor(rdev);
    expect(mm.major).toBe(major);
    expect(mm.minor).toBe(minor);
  });
});
