import { describe, expect, it } from 'vitest';
import {
  checkSchedule,
  describeSchedule,
  longestGap,
  nextRuns,
  parseSchedule,
  previousRun,
  runsBetween,
  type Schedule,
} from '../../../src/policy/schedule.js';
import { canonicalTimeZone, localTime, offsetTransitions } from '../../../src/policy/timeZone.js';

const H = 3_600_000;
const D = 24 * H;
const utc = (s: string) => Date.parse(s);
const sched = (cron: string, timezone = 'UTC'): Schedule => parseSchedule(cron, timezone);

describe('checkSchedule', () => {
  it.each([
    ['0 * * * *', 'UTC'],
    ['*/15 * * * *', 'Europe/Berlin'],
    ['0 3 * * 1-5', 'America/New_York'],
    ['@daily', 'UTC'],
    ['@hourly', 'UTC'],
    ['0 0 L * *', 'UTC'],
    ['0 12 * * 5#2', 'UTC'],
    ['0 0 29 2 *', 'UTC'],
    ['0 0 * * MON', 'UTC'],
  ])('accepts %s in %s', (cron, tz) => {
    expect(checkSchedule(cron, tz)).toEqual({ ok: true, schedule: { cron, timezone: tz } });
  });

  it('canonicalises the time zone name', () => {
    expect(checkSchedule('0 * * * *', 'europe/berlin')).toMatchObject({
      schedule: { timezone: 'Europe/Berlin' },
    });
  });

  it.each([
    ['0 0 30 2 *', /never fires: day 30 does not exist in February/],
    ['0 0 31 4,6 *', /never fires: day 31 does not exist in April, June/],
    ['61 * * * *', /minute field "61": value 61 is outside 0-59/],
    ['0 25 * * *', /hour field "25": value 25 is outside 0-23/],
    ['0 0 * * 8', /day-of-week field "8"/],
    ['0 0 * foo *', /month field "foo"/],
    ['* * *', /has 3 fields/],
    ['0 0 * * * *', /has 6 fields; lifeboat schedules have minute resolution/],
    ['H * * * *', /hashed values \(H\) are not supported/],
    ['@reboot', /@reboot is not a schedule/],
    ['@fortnightly', /unknown shorthand "@fortnightly"/],
    ['', /empty cron expression/],
  ])('rejects %j with a precise message', (cron, message) => {
    const result = checkSchedule(cron, 'UTC');
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toMatch(message);
      expect(result.problem).toBe('cron');
    }
  });

  it('accepts a rare day but rejects one that never comes', () => {
    // A fifth Friday in February happens (2008, 2036); a sixth never does.
    expect(checkSchedule('0 0 * 2 5#5', 'UTC').ok).toBe(true);
    expect(checkSchedule('0 0 * 2 5#6', 'UTC')).toMatchObject({ ok: false });
  });

  it('rejects a non-string', () => {
    expect(checkSchedule(5, 'UTC')).toMatchObject({ ok: false, message: /expected a cron expression/ });
  });

  it('rejects an unknown time zone', () => {
    expect(checkSchedule('0 * * * *', 'Europe/Berln')).toMatchObject({
      ok: false,
      problem: 'timezone',
      message: 'unknown time zone "Europe/Berln"',
    });
  });

  it('throws from parseSchedule and describes schedules', () => {
    expect(() => parseSchedule('nope', 'UTC')).toThrow(RangeError);
    expect(describeSchedule(sched('0 * * * *', 'Europe/Berlin'))).toBe('"0 * * * *" (Europe/Berlin)');
  });
});

describe('nextRuns / previousRun', () => {
  it('lists runs strictly after the start', () => {
    const runs = nextRuns(sched('0 * * * *'), utc('2025-01-01T00:00:00Z'), 3);
    expect(runs.map((t) => new Date(t).toISOString())).toEqual([
      '2025-01-01T01:00:00.000Z',
      '2025-01-01T02:00:00.000Z',
      '2025-01-01T03:00:00.000Z',
    ]);
  });

  it('honours the time zone', () => {
    const [run] = nextRuns(sched('0 3 * * *', 'Europe/Berlin'), utc('2025-07-01T00:00:00Z'), 1);
    expect(new Date(run!).toISOString()).toBe('2025-07-01T01:00:00.000Z');
  });

  it('runsBetween lists the runs in a span', () => {
    const s = sched('*/30 * * * *');
    expect(runsBetween(s, utc('2025-01-01T00:00:00Z'), utc('2025-01-01T02:00:00Z'))).toEqual([
      utc('2025-01-01T00:30:00Z'),
      utc('2025-01-01T01:00:00Z'),
      utc('2025-01-01T01:30:00Z'),
      utc('2025-01-01T02:00:00Z'),
    ]);
  });

  it('keeps going where cron-parser gives up (Lord Howe, 30-minute daylight saving)', () => {
    const runs = runsBetween(
      sched('0 * * * *', 'Australia/Lord_Howe'),
      utc('2025-04-05T12:00:00Z'),
      utc('2025-04-06T00:00:00Z'),
    );
    expect(runs.length).toBeGreaterThan(8);
    expect(runs.at(-1)).toBeGreaterThan(utc('2025-04-05T22:00:00Z'));
  });

  it('previousRun includes a run exactly at the given time', () => {
    const s = sched('0 * * * *');
    expect(previousRun(s, utc('2025-01-01T05:00:00Z'))).toBe(utc('2025-01-01T05:00:00Z'));
    expect(previousRun(s, utc('2025-01-01T05:59:59Z'))).toBe(utc('2025-01-01T05:00:00Z'));
  });
});

/** The slow truth: every run from cron-parser, one by one. */
function bruteForceGap(schedule: Schedule, from: number, horizon: number): number | undefined {
  const end = from + horizon;
  const prev = previousRun(schedule, from - 1);
  const runs = [
    ...(prev === undefined ? [] : [prev]),
    ...runsBetween(schedule, from - 1, end),
    ...nextRuns(schedule, end, 1),
  ];
  let best: number | undefined;
  for (let i = 1; i < runs.length; i++) best = Math.max(best ?? 0, runs[i]! - runs[i - 1]!);
  return best;
}

describe('longestGap', () => {
  it('hourly is one hour', () => {
    expect(longestGap(sched('0 * * * *'), utc('2025-01-01T00:00:00Z'), 365 * D)?.ms).toBe(H);
  });

  it('every two hours is two hours', () => {
    expect(longestGap(sched('0 */2 * * *'), utc('2025-01-01T00:00:00Z'), 30 * D)?.ms).toBe(2 * H);
  });

  it('monthly on the 1st: the longest month is 31 days', () => {
    const gap = longestGap(sched('0 0 1 * *'), utc('2025-01-01T00:00:00Z'), 365 * D);
    expect(gap?.ms).toBe(31 * D);
  });

  it('weekdays only: the weekend is the longest gap', () => {
    const gap = longestGap(sched('0 3 * * 1-5'), utc('2025-01-01T00:00:00Z'), 30 * D);
    expect(gap?.ms).toBe(3 * D);
    expect(new Date(gap!.start).getUTCDay()).toBe(5); // Friday's run opens it
  });

  it('daily at 02:30 in Berlin: 25 hours when the clocks go back', () => {
    const gap = longestGap(sched('30 2 * * *', 'Europe/Berlin'), utc('2025-01-01T00:00:00Z'), 365 * D);
    expect(gap?.ms).toBe(25 * H);
    expect(new Date(gap!.end).toISOString().slice(0, 10)).toBe('2025-10-27');
  });

  it('an inner gap is reported with the runs that bound it', () => {
    const gap = longestGap(sched('0 1,2,9 * * *'), utc('2025-03-01T00:00:00Z'), 7 * D);
    expect(gap?.ms).toBe(16 * H); // 09:00 → 01:00 next day
    const inner = longestGap(sched('0 1,2,9,23 * * *'), utc('2025-03-01T00:00:00Z'), 7 * D);
    expect(inner?.ms).toBe(14 * H); // 09:00 → 23:00
    expect(new Date(inner!.start).getUTCHours()).toBe(9);
    expect(new Date(inner!.end).getUTCHours()).toBe(23);
  });

  it('counts the gap that reaches past the horizon', () => {
    const gap = longestGap(sched('0 0 1 1 *'), utc('2025-06-01T00:00:00Z'), 30 * D);
    expect(gap?.ms).toBe(365 * D);
  });

  it('Feb 29 only: a four-year gap', () => {
    const gap = longestGap(sched('0 0 29 2 *'), utc('2025-01-01T00:00:00Z'), 365 * D);
    expect(gap?.ms).toBe(utc('2028-02-29T00:00:00Z') - utc('2024-02-29T00:00:00Z'));
  });

  const zones = [
    'Europe/Berlin',
    'America/New_York',
    'Australia/Sydney',
    'Australia/Lord_Howe',
    'America/Santiago',
    'Antarctica/Troll',
    'Asia/Kolkata',
  ];
  const expressions = [
    '0 * * * *',
    '30 2 * * *',
    '0 */2 * * *',
    '*/20 * * * *',
    '15 1,2,3 * * 1-5',
    '0 0 L * *',
    '0 3 * * 5L',
    '0 0 13 * 5',
    '45 0,23 * * *',
    '0 12 * * 5#2',
  ];
  for (const zone of zones) {
    const transitions = offsetTransitions(zone, utc('2025-01-01T00:00:00Z'), utc('2026-01-01T00:00:00Z'));
    const starts = transitions.length > 0 ? transitions.map((t) => t - 4 * D) : [utc('2025-03-20T00:00:00Z')];
    // cron-parser is very slow where it gives up (Lord Howe's 30-minute change): fewer cases there.
    const cases = zone === 'Australia/Lord_Howe' ? ['0 * * * *', '30 2 * * *', '*/20 * * * *'] : expressions;
    it(`matches cron-parser around the offset changes of ${zone}`, () => {
      for (const cron of cases) {
        for (const from of starts) {
          const s = sched(cron, zone);
          expect({ cron, from, gap: longestGap(s, from, 9 * D)?.ms }).toEqual({
            cron,
            from,
            gap: bruteForceGap(s, from, 9 * D),
          });
        }
      }
    });
  }

  it('is fast: a year of a five-minute schedule', () => {
    const s = sched('*/5 * * * *', 'Europe/Berlin');
    longestGap(s, utc('2024-01-01T00:00:00Z'), 365 * D); // warm the transition cache
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) longestGap(s, utc('2025-01-01T00:00:00Z') + i * H, 365 * D);
    const perCall = (performance.now() - t0) / 10;
    expect(longestGap(s, utc('2025-01-01T00:00:00Z'), 365 * D)?.ms).toBe(5 * 60_000);
    expect(perCall).toBeLessThan(250); // measured ≈ 50 ms on the 2-core build machine
  });
});

describe('UTC without Intl', () => {
  it('gives the same answers as Intl does for Etc/UTC', () => {
    for (const t of [0, 951_782_400_000, 1_709_164_799_999, 1_764_042_000_123, 4_102_444_800_000])
      expect(localTime('UTC', t)).toEqual(localTime('Etc/UTC', t));
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('Etc/UTC')).toBe('UTC');
    expect(canonicalTimeZone('')).toBeUndefined();
    expect(offsetTransitions('UTC', 0, 4_102_444_800_000)).toEqual([]);
  });
});
