import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, readDuration } from '../../../src/policy/duration.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('readDuration', () => {
  it.each([
    ['90s', 90 * S],
    ['15m', 15 * M],
    ['1h', H],
    ['7d', 7 * D],
    ['2w', 14 * D],
    ['1h30m', 90 * M],
    ['1d12h', 36 * H],
    ['1h 30m', 90 * M],
    ['1d 4h', 28 * H],
    ['250ms', 250],
    ['0s', 0],
    [' 5m ', 5 * M],
  ])('%j is %d ms', (text, ms) => {
    expect(readDuration(text)).toEqual({ ok: true, ms });
  });

  it.each([
    ['90', /"90" has no unit/, /write 90s, 90m, 90h or 90d/],
    [90, /90 has no unit/, /ambiguous/],
    ['1.5h', /fractions are not supported/, /1h30m/],
    ['30m1h', /largest to smallest/, /1h30m/],
    ['1h1h', /largest to smallest/, undefined],
    ['5M', /"M" is ambiguous/, /write 5m for minutes/],
    ['1H', /must be lowercase/, /write 1h/],
    ['2 days', /unknown unit "days"/, /write 2d/],
    ['1month', /unknown unit "month"/, /30d/],
    ['1y', /unknown unit "y"/, /365d/],
    ['3x', /unknown unit "x"/, /units: ms, s, m, h, d, w/],
    ['h', /cannot read "h"/, undefined],
    ['1h-', /cannot read "1h-"/, undefined],
    ['', /empty duration/, undefined],
    [true, /expected a duration/, undefined],
    ['99999999999999w', /too long/, undefined],
  ])('%j is refused precisely', (text, message, hint) => {
    const result = readDuration(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toMatch(message);
      if (hint) expect(result.hint).toMatch(hint);
    }
  });
});

describe('parseDuration', () => {
  it('returns ms or throws a RangeError with the reason', () => {
    expect(parseDuration('2h')).toBe(2 * H);
    expect(() => parseDuration('2')).toThrow(/has no unit/);
    expect(() => parseDuration('2')).toThrow(RangeError);
  });
});

describe('formatDuration', () => {
  it.each([
    [2 * H, '2h'],
    [28 * H, '1d 4h'],
    [90 * M, '1h 30m'],
    [7 * D, '7d'],
    [90 * S, '1m 30s'],
    [250, '250ms'],
    [0, '0s'],
    [2 * H - 1 * S, '2h'], // rounded at the last shown unit
    [D + H + M, '1d 1h'],
    [-5 * M, '-5m'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('shows more units on request and parses back', () => {
    const ms = D + H + M + S;
    expect(formatDuration(ms, 4)).toBe('1d 1h 1m 1s');
    expect(parseDuration(formatDuration(ms, 4))).toBe(ms);
  });
});
