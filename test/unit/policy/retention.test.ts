import { describe, expect, it } from 'vitest';
import {
  NO_RULES_REASON,
  SAFETY_REASON,
  formatDuration,
  isoWeek,
  selectRetention,
  type RetentionPoint,
  type RetentionResult,
  type RetentionRules,
} from '../../../src/policy/retention.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A point named by its UTC time, e.g. p('2026-11-20T14:30'). */
function p(iso: string, id = iso): RetentionPoint {
  return { id, time: Date.parse(`${iso}Z`) };
}

const at = (iso: string): number => Date.parse(`${iso}Z`);
const kept = (r: RetentionResult): string[] => r.keep.map((k) => k.id);
const forgotten = (r: RetentionResult): string[] => r.forget.map((f) => f.id);
const reasonsOf = (r: RetentionResult): Record<string, string[]> =>
  Object.fromEntries(r.keep.map((k) => [k.id, k.reasons]));

/** Every input id exactly once across keep and forget. */
function expectPartition(points: RetentionPoint[], r: RetentionResult): void {
  const all = [...kept(r), ...forgotten(r)];
  expect(all.length).toBe(points.length);
  expect(new Set(all)).toEqual(new Set(points.map((x) => x.id)));
  for (const k of r.keep) expect(k.reasons.length).toBeGreaterThan(0);
}

const NOW = at('2026-11-20T18:00');

// Three points per day over 2026-11-14 .. 2026-11-20 except 11-17 (no backups that day).
const week: RetentionPoint[] = ['14', '15', '16', '18', '19', '20'].flatMap((d) =>
  ['01:00', '09:00', '17:00'].map((t) => p(`2026-11-${d}T${t}`)),
);

describe('selectRetention', () => {
  it.each<[string, RetentionRules]>([
    ['no rules', {}],
    ['last', { last: 3 }],
    ['every rule', { last: 1, hourly: 2, daily: 2, weekly: 2, monthly: 2, yearly: 2, within: DAY }],
  ])('returns nothing for no points (%s)', (_label, rules) => {
    expect(selectRetention([], rules, NOW)).toEqual({ keep: [], forget: [] });
  });

  it('keeps everything when no rule is given', () => {
    const r = selectRetention(week, {}, NOW);
    expect(kept(r)).toHaveLength(week.length);
    expect(r.forget).toEqual([]);
    expect(r.keep.every((k) => k.reasons.join() === NO_RULES_REASON)).toBe(true);
  });

  it('treats explicitly undefined rules as absent', () => {
    const r = selectRetention(week, { last: undefined, daily: undefined }, NOW);
    expect(r.forget).toEqual([]);
  });

  it.each<[string, RetentionRules, string[], Record<string, string[]>?]>([
    [
      'last 3',
      { last: 3 },
      ['2026-11-20T17:00', '2026-11-20T09:00', '2026-11-20T01:00'],
      { '2026-11-20T01:00': ['last 3'] },
    ],
    [
      'daily 3 skips the day without backups',
      { daily: 3 },
      ['2026-11-20T17:00', '2026-11-19T17:00', '2026-11-18T17:00'],
      { '2026-11-18T17:00': ['daily 2026-11-18'] },
    ],
    [
      'daily 4 reaches past the gap',
      { daily: 4 },
      ['2026-11-20T17:00', '2026-11-19T17:00', '2026-11-18T17:00', '2026-11-16T17:00'],
    ],
    [
      'hourly 2',
      { hourly: 2 },
      ['2026-11-20T17:00', '2026-11-20T09:00'],
      { '2026-11-20T09:00': ['hourly 2026-11-20 09:00 UTC'] },
    ],
    [
      'weekly 2 uses ISO weeks (Mon 2026-11-16 starts W47)',
      { weekly: 2 },
      ['2026-11-20T17:00', '2026-11-15T17:00'],
      { '2026-11-15T17:00': ['weekly 2026-W46'], '2026-11-20T17:00': ['weekly 2026-W47'] },
    ],
    [
      'monthly 5 with one month of points',
      { monthly: 5 },
      ['2026-11-20T17:00'],
      { '2026-11-20T17:00': ['monthly 2026-11'] },
    ],
    ['yearly 1', { yearly: 1 }, ['2026-11-20T17:00'], { '2026-11-20T17:00': ['yearly 2026'] }],
    [
      'within 1d counts from now, inclusive',
      { within: DAY },
      ['2026-11-20T17:00', '2026-11-20T09:00', '2026-11-20T01:00'],
      { '2026-11-20T01:00': ['within 1d'] },
    ],
    [
      'within 36h',
      { within: 36 * HOUR },
      ['2026-11-20T17:00', '2026-11-20T09:00', '2026-11-20T01:00', '2026-11-19T17:00', '2026-11-19T09:00'],
      { '2026-11-19T09:00': ['within 1d12h'] },
    ],
    [
      'reasons accumulate across rules',
      { last: 1, daily: 2, weekly: 1 },
      ['2026-11-20T17:00', '2026-11-19T17:00'],
      {
        '2026-11-20T17:00': ['last 1', 'daily 2026-11-20', 'weekly 2026-W47'],
        '2026-11-19T17:00': ['daily 2026-11-19'],
      },
    ],
    [
      'unlimited daily keeps one per day',
      { daily: Infinity },
      week
        .filter((x) => x.id.endsWith('17:00'))
        .map((x) => x.id)
        .reverse(),
    ],
    ['last all', { last: Infinity }, week.map((x) => x.id).reverse()],
  ])('%s', (_label, rules, expectedKeep, expectedReasons) => {
    const r = selectRetention(week, rules, NOW);
    expect(kept(r)).toEqual(expectedKeep);
    expectPartition(week, r);
    if (expectedReasons) expect(reasonsOf(r)).toMatchObject(expectedReasons);
    // forget is newest first too
    const times = r.forget.map((f) => at(f.id.replace(/Z$/, '')));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('keeps the newest of a month and a year across a long history', () => {
    const points = Array.from({ length: 800 }, (_, i) => ({
      id: `d${i}`,
      time: at('2024-01-01T12:00') + i * DAY,
    }));
    const r = selectRetention(points, { monthly: 3, yearly: 3 }, at('2026-03-15T00:00'));
    expect(reasonsOf(r)).toEqual({
      d799: ['monthly 2026-03', 'yearly 2026'], // 2026-03-10
      d789: ['monthly 2026-02'], // 2026-02-28
      d761: ['monthly 2026-01'], // 2026-01-31
      d730: ['yearly 2025'], // 2025-12-31
      d365: ['yearly 2024'], // 2024-12-31 (leap year)
    });
  });

  it('never forgets every point: the newest survives rules that keep nothing', () => {
    const stale = week.map((x) => ({ ...x, time: x.time - 90 * DAY }));
    for (const rules of [{ within: 7 * DAY }, { daily: 0 }, { last: 0, within: 0 }]) {
      const r = selectRetention(stale, rules, NOW);
      expect(r.keep).toEqual([{ id: '2026-11-20T17:00', reasons: [SAFETY_REASON] }]);
      expectPartition(stale, r);
    }
  });

  it('keeps a point exactly at the within boundary and forgets one a millisecond older', () => {
    const points = [
      { id: 'edge', time: NOW - DAY },
      { id: 'older', time: NOW - DAY - 1 },
    ];
    const r = selectRetention(points, { within: DAY }, NOW);
    expect(r).toEqual({ keep: [{ id: 'edge', reasons: ['within 1d'] }], forget: [{ id: 'older' }] });
  });

  it('keeps points from the future under within (clock skew)', () => {
    const r = selectRetention(
      [p('2026-11-21T00:00', 'future'), p('2026-11-01T00:00', 'old')],
      { within: HOUR },
      NOW,
    );
    expect(kept(r)).toEqual(['future']);
  });

  it('breaks ties between identical timestamps by id, independent of input order', () => {
    const same = ['c', 'a', 'b'].map((id) => ({ id, time: at('2026-11-20T10:00') }));
    const expected = selectRetention(same, { daily: 1, last: 2 }, NOW);
    expect(reasonsOf(expected)).toEqual({ a: ['last 2', 'daily 2026-11-20'], b: ['last 2'] });
    expect(forgotten(expected)).toEqual(['c']);
    for (const order of [
      ['a', 'b', 'c'],
      ['b', 'c', 'a'],
      ['c', 'b', 'a'],
    ]) {
      const shuffled = order.map((id) => same.find((x) => x.id === id)!);
      expect(selectRetention(shuffled, { daily: 1, last: 2 }, NOW)).toEqual(expected);
    }
  });

  describe('time zones', () => {
    // 23:30 UTC on the 20th is already the 21st in Berlin (UTC+1) and still the 20th in New York.
    const late = [
      p('2026-11-20T23:30', 'late'),
      p('2026-11-20T12:00', 'noon'),
      p('2026-11-19T12:00', 'before'),
    ];

    it.each([
      ['UTC', ['late', 'before'], { late: ['daily 2026-11-20'] }],
      ['Europe/Berlin', ['late', 'noon'], { late: ['daily 2026-11-21'], noon: ['daily 2026-11-20'] }],
      ['Asia/Kolkata', ['late', 'noon'], { late: ['daily 2026-11-21'] }],
      ['America/New_York', ['late', 'before'], { late: ['daily 2026-11-20'] }],
    ])('daily buckets in %s', (timeZone, expected, reasons) => {
      const r = selectRetention(late, { daily: 2 }, NOW, { timeZone });
      expect(kept(r)).toEqual(expected);
      expect(reasonsOf(r)).toMatchObject(reasons);
    });

    it('ISO weeks start on Monday in the local zone', () => {
      // Sunday 2026-11-22 23:30 UTC is Monday 2026-11-23 in Berlin: a new ISO week there.
      const points = [p('2026-11-22T23:30', 'sun-late'), p('2026-11-22T10:00', 'sun')];
      expect(kept(selectRetention(points, { weekly: 2 }, NOW))).toEqual(['sun-late']);
      expect(kept(selectRetention(points, { weekly: 2 }, NOW, { timeZone: 'Europe/Berlin' }))).toEqual([
        'sun-late',
        'sun',
      ]);
    });

    it('tells apart the repeated hour when daylight saving time ends', () => {
      // New York falls back on 2026-11-01: 01:30 EDT (05:30Z) and 01:30 EST (06:30Z).
      const points = [p('2026-11-01T06:30', 'est'), p('2026-11-01T05:30', 'edt')];
      const r = selectRetention(points, { hourly: 5 }, NOW, { timeZone: 'America/New_York' });
      expect(reasonsOf(r)).toEqual({
        est: ['hourly 2026-11-01 01:00 UTC-5'],
        edt: ['hourly 2026-11-01 01:00 UTC-4'],
      });
    });

    it('reports an unknown time zone clearly', () => {
      expect(() => selectRetention(week, { daily: 1 }, NOW, { timeZone: 'Mars/Olympus' })).toThrow(
        /unknown time zone "Mars\/Olympus"/,
      );
    });
  });

  describe('protect', () => {
    it('keeps protected points with their reason, alongside rule reasons', () => {
      const protect = new Map([
        ['2026-11-14T01:00', 'newest restore point that passed a drill'],
        ['2026-11-20T17:00', 'legal hold'],
        ['not-in-input', 'ignored'],
      ]);
      const r = selectRetention(week, { last: 1 }, NOW, { protect });
      expect(r.keep).toEqual([
        { id: '2026-11-20T17:00', reasons: ['last 1', 'legal hold'] },
        { id: '2026-11-14T01:00', reasons: ['newest restore point that passed a drill'] },
      ]);
      expectPartition(week, r);
    });

    it('does not stop the safety net from keeping the newest point', () => {
      const protect = new Map([['2026-11-14T01:00', 'drill']]);
      const r = selectRetention(week, { within: 0 }, at('2027-01-01T00:00'), { protect });
      expect(kept(r)).toEqual(['2026-11-20T17:00', '2026-11-14T01:00']);
    });

    it('adds to "keep everything" when there are no rules', () => {
      const r = selectRetention(week.slice(0, 2), {}, NOW, {
        protect: new Map([['2026-11-14T01:00', 'drill']]),
      });
      expect(reasonsOf(r)['2026-11-14T01:00']).toEqual([NO_RULES_REASON, 'drill']);
    });
  });

  it('partitions every point exactly once under many random rule sets', () => {
    let seed = 42;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const pick = (): number | undefined => (random() < 0.4 ? undefined : Math.floor(random() * 6));
    for (let round = 0; round < 200; round++) {
      const points = Array.from({ length: Math.floor(random() * 60) }, (_, i) => ({
        id: `r${round}-${i}`,
        // many duplicates of the same time, spread over two years
        time: at('2025-01-01T00:00') + Math.floor(random() * 400) * 43 * HOUR,
      }));
      const rules: RetentionRules = {
        last: pick(),
        hourly: pick(),
        daily: pick(),
        weekly: pick(),
        monthly: pick(),
        yearly: pick(),
        within: random() < 0.3 ? Math.floor(random() * 90) * DAY : undefined,
      };
      const timeZone = ['UTC', 'Europe/Berlin', 'Pacific/Auckland'][round % 3];
      const r = selectRetention(points, rules, at('2026-11-20T00:00'), { timeZone });
      expectPartition(points, r);
      if (points.length > 0) expect(r.keep.length).toBeGreaterThan(0);
      // a bucket rule never keeps more points than its count
      for (const rule of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
        const n = r.keep.filter((k) => k.reasons.some((why) => why.startsWith(`${rule} `))).length;
        expect(n).toBeLessThanOrEqual(rules[rule] ?? 0);
      }
    }
  });

  it.each<[string, RetentionPoint[], RetentionRules, number, RegExp]>([
    ['negative count', week, { daily: -1 }, NOW, /daily must be a whole number/],
    ['fractional count', week, { last: 1.5 }, NOW, /last must be a whole number/],
    ['NaN within', week, { within: Number.NaN }, NOW, /within must be a duration/],
    [
      'duplicate ids',
      [p('2026-11-20T10:00', 'x'), p('2026-11-19T10:00', 'x')],
      { last: 1 },
      NOW,
      /x appears twice/,
    ],
    ['invalid time', [{ id: 'bad', time: Number.NaN }], { last: 1 }, NOW, /bad has no valid time/],
    ['invalid now', week, { last: 1 }, Number.NaN, /now must be a finite time/],
  ])('rejects %s', (_label, points, rules, now, message) => {
    expect(() => selectRetention(points, rules, now)).toThrow(message);
  });
});

describe('isoWeek', () => {
  it.each<[number, number, number, string]>([
    [2026, 1, 1, '2026-W01'], // Thursday
    [2026, 11, 16, '2026-W47'], // Monday
    [2026, 11, 22, '2026-W47'], // Sunday
    [2027, 1, 1, '2026-W53'], // Friday of a 53-week year
    [2024, 12, 30, '2025-W01'], // Monday before New Year
    [2021, 1, 3, '2020-W53'], // Sunday after a leap year starting on Wednesday
    [2023, 1, 1, '2022-W52'],
  ])('%i-%i-%i is %s', (y, m, d, expected) => {
    expect(isoWeek(y, m, d)).toBe(expected);
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0s'],
    [45_000, '45s'],
    [90_000, '1m30s'],
    [2 * DAY, '2d'],
    [36 * HOUR, '1d12h'],
    [DAY + 61_000, '1d1m1s'],
    [1500, '1500ms'],
    [Infinity, 'forever'],
  ])('%d ms -> %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
