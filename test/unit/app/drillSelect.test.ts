import { describe, expect, it } from 'vitest';
import {
  chooseSnapshot,
  coverageOf,
  drillCandidates,
  drilledSnapshotIds,
} from '../../../src/app/drillSelect.js';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import type { JournalRecord } from '../../../src/repository/journal.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-03-31T00:00:00Z');

function snap(id: string, daysAgo: number, partial = false, job = 'web'): SnapshotEntry {
  const t = new Date(NOW - daysAgo * DAY).toISOString();
  return {
    id,
    v: 1,
    job,
    kind: 'files',
    host: 'h',
    startedAt: t,
    endedAt: t,
    tree: 't',
    paths: [],
    tags: [],
    partial,
    fingerprint: {},
    stats: { files: 0, dirs: 0, bytes: 0, addedBytes: 0, storedBytes: 0, blobs: 0 },
    toolVersion: 'x',
  };
}

const drill = (ids: string[], outcome: JournalRecord['outcome'] = 'success', job = 'web'): JournalRecord => ({
  v: 1,
  id: '0'.repeat(16),
  kind: 'drill',
  job,
  startedAt: '',
  endedAt: '',
  outcome,
  snapshotIds: ids,
  host: 'h',
  toolVersion: 'x',
});

const snaps = [
  snap('old', 45),
  snap('a', 20),
  snap('b', 10),
  snap('p', 5, true),
  snap('c', 1),
  snap('other', 1, false, 'db'),
];
const ctx = (drilled: string[] = [], r = 0) => ({
  now: NOW,
  windowMs: 30 * DAY,
  drilled: new Set(drilled),
  random: () => r,
});

describe('choosing the restore point of a drill', () => {
  it('latest is the newest complete snapshot of the job', () => {
    expect(chooseSnapshot('latest', snaps, 'web', ctx())).toMatchObject({
      selection: 'latest',
      snapshot: { id: 'c' },
    });
  });

  it('random picks among complete snapshots of the window, never-drilled first', () => {
    expect(drillCandidates(snaps, 'web', NOW, 30 * DAY).map((s) => s.id)).toEqual(['a', 'b', 'c']);
    expect(chooseSnapshot('random', snaps, 'web', ctx([], 0)).snapshot.id).toBe('a');
    expect(chooseSnapshot('random', snaps, 'web', ctx([], 0.99)).snapshot.id).toBe('c');
    expect(chooseSnapshot('random', snaps, 'web', ctx(['a', 'c'], 0.99)).snapshot.id).toBe('b');
    // All drilled: any of the window again.
    expect(chooseSnapshot('random', snaps, 'web', ctx(['a', 'b', 'c'], 0.5)).snapshot.id).toBe('b');
  });

  it('random falls back to the newest when the window is empty', () => {
    const r = chooseSnapshot('random', [snap('old', 45)], 'web', ctx());
    expect(r).toMatchObject({ selection: 'random', snapshot: { id: 'old' } });
    expect(r.reason).toContain('no complete restore point');
  });

  it('uses a partial snapshot only when there is no complete one, and fails without any', () => {
    expect(chooseSnapshot('latest', [snap('p', 1, true)], 'web', ctx()).reason).toContain('partial');
    expect(() => chooseSnapshot('latest', snaps, 'nope', ctx())).toThrow(/no snapshot of job 'nope'/);
  });

  it('coverage counts drilled points of the window, this drill included, interrupted ones not', () => {
    const drilled = drilledSnapshotIds(
      [drill(['a']), drill(['b'], 'interrupted'), drill(['c'], 'success', 'db'), drill(['old'], 'failure')],
      'web',
    );
    expect([...drilled].sort()).toEqual(['a', 'old']);
    const candidates = drillCandidates(snaps, 'web', NOW, 30 * DAY);
    expect(coverageOf(candidates, drilled, 30 * DAY)).toMatchObject({ points: 3, drilled: 1 });
    expect(coverageOf(candidates, drilled, 30 * DAY, 'c')).toMatchObject({
      points: 3,
      drilled: 2,
      share: 2 / 3,
    });
    expect(coverageOf([], drilled, 30 * DAY).share).toBe(1);
  });
});
