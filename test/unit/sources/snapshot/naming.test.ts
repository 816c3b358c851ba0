import { describe, expect, it } from 'vitest';
import { keptName, parseSnapshotName, snapshotName } from '../../../../src/sources/snapshot/naming.js';

const T = Date.parse('2025-03-01T12:34:56.789Z');

describe('snapshot names', () => {
  it('carry the prefix, the job and a UTC timestamp, and parse back', () => {
    const name = snapshotName('data-vol', T);
    expect(name).toBe('lifeboat-data-vol-20250301T123456.789Z');
    expect(parseSnapshotName(name, 'data-vol')).toEqual({ createdAt: T, kept: false });
    expect(parseSnapshotName(keptName(name), 'data-vol')).toEqual({ createdAt: T, kept: true });
    expect(keptName(keptName(name))).toBe(keptName(name));
  });

  it.each([
    ['lifeboat-data-vol-20250301T123456.789Z', 'data'],
    ['lifeboat-data-20250301T123456.789Z', 'data-vol'],
    ['lifeboat-data-vol-20250301T123456Z', 'data-vol'],
    ['manual-snap', 'data-vol'],
    ['lifeboat-data-vol-20250301T123456.789Z.old', 'data-vol'],
    ['lifeboat-data.vol-20250301T123456.789Z', 'data-vol'],
  ])('%s is not a snapshot of job %s', (name, job) => {
    expect(parseSnapshotName(name, job)).toBeUndefined();
  });

  it('treats dots in job names literally', () => {
    expect(parseSnapshotName(snapshotName('a.b', T), 'a.b')).toBeDefined();
    expect(parseSnapshotName('lifeboat-axb-20250301T123456.789Z', 'a.b')).toBeUndefined();
  });
});
