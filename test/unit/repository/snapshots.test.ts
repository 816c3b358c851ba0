import { describe, expect, it } from 'vitest';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import { resolveSnapshotRef, validateSnapshotRecord } from '../../../src/repository/snapshots.js';
import { snapshotRecord } from './helpers.js';

const entry = (id: string, job: string, startedAt: string): SnapshotEntry => ({
  ...snapshotRecord('ab'.repeat(32), { job, startedAt }),
  id,
});

const list = [
  entry('aaaa1111' + '0'.repeat(56), 'web', '2025-01-01T00:00:00.000Z'),
  entry('aaaa2222' + '0'.repeat(56), 'db', '2025-01-03T00:00:00.000Z'),
  entry('bbbb3333' + '0'.repeat(56), 'web', '2025-01-02T00:00:00.000Z'),
];

describe('resolveSnapshotRef', () => {
  it.each([
    ['latest', undefined, 'aaaa2222'],
    ['latest', 'web', 'bbbb3333'],
    ['aaaa1', undefined, 'aaaa1111'],
    ['AAAA2', undefined, 'aaaa2222'],
    ['aaaa', 'web', 'aaaa1111'],
    [list[2]!.id, undefined, 'bbbb3333'],
  ])('resolves %s (job %s)', (ref, job, expected) => {
    expect(resolveSnapshotRef(list, ref, job, 'memory://r').id.slice(0, 8)).toBe(expected);
  });

  it('names the candidates of an ambiguous prefix', () => {
    expect(() => resolveSnapshotRef(list, 'aaaa', undefined, 'memory://r')).toThrow(
      /ambiguous: it matches 2 snapshots \(aaaa11110000, aaaa22220000\)/,
    );
  });

  it.each(['abc', 'zzzz', '', 'latest!'])('rejects the malformed reference %j as a usage error', (ref) => {
    expect(() => resolveSnapshotRef(list, ref, undefined, 'memory://r')).toThrow(
      expect.objectContaining({ code: 'E_USAGE' }),
    );
  });

  it('says which job and repository had no match', () => {
    expect(() => resolveSnapshotRef(list, 'cccc', 'web', 'memory://r')).toThrow(
      'no snapshot cccc of job web in memory://r',
    );
    expect(() => resolveSnapshotRef([], 'latest', undefined, 'memory://r')).toThrow(
      'no snapshots in memory://r',
    );
  });
});

describe('validateSnapshotRecord', () => {
  it('accepts a complete record and explains what is missing otherwise', () => {
    expect(validateSnapshotRecord(snapshotRecord('ab'.repeat(32)))).not.toBeTypeOf('string');
    expect(validateSnapshotRecord({ ...snapshotRecord('ab'.repeat(32)), v: 2 })).toMatch(/newer/);
    expect(validateSnapshotRecord({ ...snapshotRecord('xyz') })).toMatch(/root tree/);
    const { stats: _s, ...noStats } = snapshotRecord('ab'.repeat(32));
    expect(validateSnapshotRecord(noStats)).toMatch(/stats/);
  });
});
