import { describe, expect, it } from 'vitest';
import { closest, editDistance, suggestion } from '../../../src/config/didYouMean.js';

describe('editDistance', () => {
  it.each([
    ['schedule', 'schedule', 0],
    ['shedule', 'schedule', 1],
    ['scheduel', 'schedule', 1], // adjacent swap
    ['polcy', 'policy', 1],
    ['', 'abc', 3],
    ['kitten', 'sitting', 3],
  ])('%s → %s is %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });
});

describe('closest', () => {
  const keys = ['schedule', 'policy', 'repositories', 'dependsOn', 'tags'];
  it('finds plausible typos, case-insensitively', () => {
    expect(closest('shedule', keys)).toBe('schedule');
    expect(closest('Policy', keys)).toBe('policy');
    expect(closest('repositores', keys)).toBe('repositories');
    expect(closest('dependson', keys)).toBe('dependsOn');
  });
  it('does not guess wildly', () => {
    expect(closest('xyz', keys)).toBeUndefined();
    expect(closest('tag', ['tags', 'taps'])).toBe('tags');
    expect(closest('ab', ['cd'])).toBeUndefined();
  });
});

describe('suggestion', () => {
  it('names the closest or lists what is allowed', () => {
    expect(suggestion('shedule', ['schedule', 'policy'])).toBe('did you mean `schedule`?');
    expect(suggestion('zzz', ['a', 'b'], 'policies defined')).toBe('policies defined: `a`, `b`');
    expect(suggestion('zzz', [], 'policies defined')).toBe('there is nothing policies defined here');
  });
});
