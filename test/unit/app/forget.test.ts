import { describe, expect, it } from 'vitest';
import { planJobRetention, protectedSnapshots, rulesFromConfig } from '../../../src/app/forget.js';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import type { JournalRecord } from '../../../src/repository/journal.js';

const DAY = 86_400_000;
const T0 = Date.parse('2025-03-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** A snapshot of job `web` taken `daysAgo` days before T0. */
function snap(id: string, daysAgo: number, partial = false, job = 'web'): SnapshotEntry {
  const at = iso(T0 - daysAgo * DAY);
  return {
    id: id.padEnd(64, '0'),
    v: 1,
    job,
    kind: 'files',
    host: 'h',
    startedAt: at,
    endedAt: at,
    tree: 'f'.repeat(64),
    paths: ['/srv'],
    tags: [],
    partial,
    fingerprint: {},
    stats: { files: 1, dirs: 1, bytes: 1, addedBytes: 1, storedBytes: 1, blobs: 1 },
    toolVersion: 'test',
  };
}

let runs = 0;
function run(
  kind: JournalRecord['kind'],
  outcome: JournalRecord['outcome'],
  daysAgo: number,
  extra: Partial<JournalRecord> = {},
): JournalRecord {
  const at = iso(T0 - daysAgo * DAY);
  return {
    v: 1,
    id: (runs++).toString(16).padStart(16, '0'),
    kind,
    job: 'web',
    startedAt: at,
    endedAt: at,
    outcome,
    host: 'h',
    toolVersion: 'test',
    ...extra,
  };
}

const id = (s: string) => s.padEnd(64, '0');
const plan = (snapshots: SnapshotEntry[], journal: JournalRecord[], rules = {}) =>
  planJobRetention({ job: 'web', snapshots, journal, rules, rulesFrom: 'test', now: T0 });

describe('forget retention safety', () => {
  it('applies the rules per job and explains every kept snapshot', () => {
    const snaps = [snap('a', 5), snap('b', 4), snap('c', 3), snap('d', 2), snap('e', 1)];
    const p = plan(snaps, [], { last: 2 });
    expect(p.keep.map((k) => k.id)).toEqual([id('e'), id('d')]);
    expect(p.keep[0]!.reasons).toEqual(['last 2']);
    expect(p.forget.map((f) => f.id)).toEqual([id('c'), id('b'), id('a')]);
  });

  it('keeps the newest snapshot that passed a restore drill', () => {
    const snaps = [snap('a', 5), snap('b', 4), snap('c', 3), snap('d', 1)];
    const drills = [
      run('drill', 'success', 4.5, { snapshotIds: [id('a')] }),
      run('drill', 'success', 3.5, { snapshotIds: [id('b')] }),
      run('drill', 'failure', 2.5, { snapshotIds: [id('c')] }),
      run('drill', 'success', 2.5, { snapshotIds: [id('c')], job: 'other' }),
    ];
    const p = plan(snaps, drills, { last: 1 });
    expect(p.keep.map((k) => k.id)).toEqual([id('d'), id('b')]);
    expect(p.keep[1]!.reasons.join()).toMatch(/passed a restore drill \(run [0-9a-f]{16}/);
    expect(p.forget.map((f) => f.id)).toEqual([id('c'), id('a')]);
  });

  it('keeps the newest complete snapshot while every newer backup failed or was partial', () => {
    // a good, then two partial snapshots and failed runs: `last 2` alone would drop a.
    const snaps = [snap('z', 9), snap('a', 6), snap('b', 2, true), snap('c', 1, true)];
    const journal = [
      run('backup', 'success', 6, { snapshotIds: [id('a')] }),
      run('backup', 'failure', 5),
      run('backup', 'interrupted', 4),
      run('backup', 'partial', 2, { snapshotIds: [id('b')] }),
      run('backup', 'partial', 1, { snapshotIds: [id('c')] }),
    ];
    const p = plan(snaps, journal, { last: 2 });
    expect(p.keep.map((k) => k.id)).toEqual([id('c'), id('b'), id('a')]);
    const why = p.keep[2]!.reasons.join();
    expect(why).toMatch(/newest complete snapshot/);
    expect(why).toMatch(/2 newer backup runs failed/);
    expect(why).toMatch(/2 newer snapshots are partial/);
    expect(p.forget.map((f) => f.id)).toEqual([id('z')]);
  });

  it('keeps the last good snapshot through a string of failures under time-based rules', () => {
    // Backups have failed for ten days; `within 2d` matches nothing.
    const snaps = [snap('old', 20), snap('good', 10)];
    const journal = [run('backup', 'success', 10, { snapshotIds: [id('good')] })];
    for (let d = 9; d >= 1; d--) journal.push(run('backup', 'failure', d));
    const p = plan(snaps, journal, { within: 2 * DAY });
    expect(p.keep.map((k) => k.id)).toEqual([id('good')]);
    expect(p.keep[0]!.reasons.join()).toMatch(/9 newer backup runs failed/);
    expect(p.forget.map((f) => f.id)).toEqual([id('old')]);
  });

  it('adds no protection when the newest snapshot is complete and nothing failed since', () => {
    const snaps = [snap('a', 3), snap('b', 2)];
    const journal = [run('backup', 'failure', 2.5), run('backup', 'success', 2, { snapshotIds: [id('b')] })];
    expect(protectedSnapshots('web', snaps, journal).size).toBe(0);
    expect(plan(snaps, journal, { last: 1 }).forget.map((f) => f.id)).toEqual([id('a')]);
  });

  it('keeps everything without rules and converts configured retention', () => {
    const p = plan([snap('a', 3), snap('b', 2)], []);
    expect(p.forget).toEqual([]);
    expect(rulesFromConfig({ last: 3, daily: 7, within: DAY })).toEqual({ last: 3, daily: 7, within: DAY });
    expect(rulesFromConfig(undefined)).toEqual({});
  });
});
