import { describe, expect, it } from 'vitest';
import {
  journalHorizon,
  planActivities,
  type JournalView,
  type PlanInput,
  type PlanJob,
  type PlannedActivity,
  type RunFacts,
  type RunOutcome,
} from '../../../src/policy/due.js';
import { checkSchedule, parseSchedule } from '../../../src/policy/schedule.js';
import { latestTick } from '../../../src/policy/ticks.js';

const MIN = 60_000;
const H = 60 * MIN;
const D = 24 * H;
const t = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

function job(cron: string | undefined, tz = 'UTC', extra: Partial<PlanJob> = {}): PlanJob {
  return {
    name: 'web',
    schedule: cron === undefined ? undefined : parseSchedule(cron, tz),
    repositories: ['local'],
    retention: false,
    ...extra,
  };
}

function run(
  kind: string,
  startedAt: string,
  outcome: RunOutcome = 'success',
  opts: { job?: string | null; minutes?: number; id?: string } = {},
): RunFacts {
  const start = t(startedAt);
  return {
    kind,
    ...(opts.job === null ? {} : { job: opts.job ?? 'web' }),
    startedAt,
    endedAt: iso(start + (opts.minutes ?? 1) * MIN),
    outcome,
    ...(opts.id ? { id: opts.id } : {}),
  };
}

function plan(
  now: string | number,
  jobs: PlanJob[],
  journals: Record<string, JournalView | RunFacts[]>,
  extra: Partial<PlanInput> = {},
): PlannedActivity[] {
  const views: Record<string, JournalView> = {};
  for (const [name, v] of Object.entries(journals)) views[name] = Array.isArray(v) ? { records: v } : v;
  return planActivities({
    now: typeof now === 'number' ? now : t(now),
    jobs,
    repositories: [{ name: 'local' }],
    journals: views,
    ...extra,
  });
}

const backupItem = (items: PlannedActivity[]) => items.find((i) => i.kind === 'backup')!;

describe('backup due-ness', () => {
  it.each([
    {
      name: 'hourly, backed up this hour',
      cron: '0 * * * *',
      tz: 'UTC',
      runs: [run('backup', '2024-06-01T13:00:05Z')],
      now: '2024-06-01T13:30:00Z',
      due: false,
      reason: 'not due: next run 14:00 UTC (last backup 30m ago)',
      nextAt: '2024-06-01T14:00:00.000Z',
    },
    {
      name: 'hourly, the 13:00 run has not happened',
      cron: '0 * * * *',
      tz: 'UTC',
      runs: [run('backup', '2024-06-01T12:00:05Z')],
      now: '2024-06-01T13:10:00Z',
      due: true,
      reason: 'due: last good backup 1h 10m ago, schedule hourly (0 * * * *)',
    },
    {
      name: 'never backed up',
      cron: '0 * * * *',
      tz: 'UTC',
      runs: [],
      now: '2024-06-01T13:10:00Z',
      due: true,
      reason: 'due: no good backup, schedule hourly (0 * * * *)',
    },
    {
      name: 'daily 03:00 Berlin, before today’s run',
      cron: '0 3 * * *',
      tz: 'Europe/Berlin',
      runs: [run('backup', '2024-05-31T01:00:10Z')],
      now: '2024-06-01T00:30:00Z',
      due: false,
      reason: 'not due: next run 03:00 Europe/Berlin (last backup 23h 30m ago)',
      nextAt: '2024-06-01T01:00:00.000Z',
    },
    {
      name: 'daily 03:00 Berlin, after today’s run time',
      cron: '0 3 * * *',
      tz: 'Europe/Berlin',
      runs: [run('backup', '2024-05-31T01:00:10Z')],
      now: '2024-06-01T01:30:00Z',
      due: true,
      reason: 'due: last good backup 1d 1h ago, schedule daily (0 3 * * * Europe/Berlin)',
    },
    {
      name: 'every 15 minutes, cron step',
      cron: '*/15 * * * *',
      tz: 'UTC',
      runs: [run('backup', '2024-06-01T10:15:02Z')],
      now: '2024-06-01T10:29:59Z',
      due: false,
      reason: 'not due: next run 10:30 UTC (last backup 15m ago)',
      nextAt: '2024-06-01T10:30:00.000Z',
    },
    {
      name: 'weekday schedule on a Saturday',
      cron: '0 22 * * 1-5',
      tz: 'America/New_York',
      runs: [run('backup', '2024-06-01T02:00:05Z')], // Friday 22:00 EDT
      now: '2024-06-01T18:00:00Z',
      due: false,
      reason: 'not due: next run 2024-06-03 22:00 America/New_York (last backup 16h ago)',
      nextAt: '2024-06-04T02:00:00.000Z',
    },
  ])('$name', ({ cron, tz, runs, now, due, reason, nextAt }) => {
    const item = backupItem(plan(now, [job(cron, tz)], { local: runs }));
    expect(item).toMatchObject({ id: 'backup:web', job: 'web', repository: 'local', due, reason });
    expect(item.nextAt === undefined ? undefined : iso(item.nextAt)).toBe(nextAt);
  });

  it('a job without a schedule is never due by itself', () => {
    const item = backupItem(plan('2024-06-01T13:10:00Z', [job(undefined)], { local: [] }));
    expect(item.due).toBe(false);
    expect(item.reason).toMatch(
      /no schedule; the job runs only when started by hand \(lifeboat run --job web\)/,
    );
  });

  it('a machine off for three days catches up once, not once per missed run', () => {
    const j = job('0 * * * *');
    const records = [run('backup', '2024-06-01T10:00:05Z')];
    const first = backupItem(plan('2024-06-04T10:20:00Z', [j], { local: records }));
    expect(first.due).toBe(true);
    expect(first.reason).toBe(
      'due: last good backup 3d ago, schedule hourly (0 * * * *); 72 scheduled runs missed since the last attempt, caught up once',
    );
    // The catch-up backup runs; every later invocation before 11:00 finds nothing to do.
    const { starts } = simulate(j, t('2024-06-04T10:20:00Z'), t('2024-06-04T10:59:00Z'), 5 * MIN, records);
    expect(starts.map(iso)).toEqual(['2024-06-04T10:20:00.000Z']);
  });

  it('a backup that took longer than the interval is due again at once (ticks overlapped it)', () => {
    const records = [run('backup', '2024-06-01T10:00:05Z', 'success', { minutes: 90 })];
    const item = backupItem(plan('2024-06-01T11:35:00Z', [job('0 * * * *')], { local: records }));
    expect(item.due).toBe(true);
    expect(item.reason).toBe('due: last good backup 1h 35m ago, schedule hourly (0 * * * *)');
  });

  it('invocations every 5 minutes run exactly one backup per scheduled run', () => {
    const initial = [run('backup', '2024-05-31T23:30:05Z')];
    const { starts } = simulate(
      job('*/30 * * * *'),
      t('2024-06-01T00:00:00Z'),
      t('2024-06-01T23:59:00Z'),
      5 * MIN,
      initial,
    );
    expect(starts).toHaveLength(48);
    expect(starts.every((s) => new Date(s).getUTCMinutes() % 30 === 0)).toBe(true);
  });

  it('overlapping ticks of a cron with two triggers in one window are caught up once', () => {
    // 10:00 and 10:02 both fall between two invocations at 10:00:30 and 10:05.
    const initial = [run('backup', '2024-06-01T09:02:05Z')];
    const { starts } = simulate(
      job('0,2 * * * *'),
      t('2024-06-01T09:55:30Z'),
      t('2024-06-01T10:04:00Z'),
      5 * MIN,
      initial,
    );
    expect(starts.map(iso)).toEqual(['2024-06-01T10:00:30.000Z']);
  });

  describe('daylight-saving changes', () => {
    it('spring forward in Berlin: the 02:30 run that does not exist runs at 03:30 CEST', () => {
      const j = job('30 2 * * *', 'Europe/Berlin');
      const records = [run('backup', '2024-03-30T01:30:10Z')];
      expect(backupItem(plan('2024-03-31T01:29:00Z', [j], { local: records })).due).toBe(false);
      const item = backupItem(plan('2024-03-31T05:00:00Z', [j], { local: records }));
      expect(item.due).toBe(true);
      expect(latestTick(j.schedule!, t('2024-03-31T05:00:00Z'))).toBe(t('2024-03-31T01:30:00Z'));
    });

    it('fall back in Berlin: 02:30 happens twice on the wall clock, the backup runs once', () => {
      const j = job('30 2 * * *', 'Europe/Berlin');
      const initial = [run('backup', '2024-10-26T00:30:05Z')];
      const { starts } = simulate(j, t('2024-10-26T22:00:00Z'), t('2024-10-27T23:00:00Z'), 15 * MIN, initial);
      expect(starts.map(iso)).toEqual(['2024-10-27T00:30:00.000Z']);
      const after = backupItem(
        plan('2024-10-27T01:45:00Z', [j], { local: [run('backup', '2024-10-27T00:30:05Z')] }),
      );
      expect(after).toMatchObject({ due: false });
      expect(after.reason).toMatch(/^not due: next run 2024-10-28 02:30 Europe\/Berlin/);
    });

    it.each([
      ['Europe/Berlin fall-back day has 25 hourly runs', 'Europe/Berlin', '2024-10-26T22:00:00Z', 25],
      ['Europe/Berlin spring-forward day has 23 hourly runs', 'Europe/Berlin', '2024-03-30T23:00:00Z', 23],
      ['America/New_York fall-back day has 25 hourly runs', 'America/New_York', '2024-11-03T04:00:00Z', 25],
      [
        'America/New_York spring-forward day has 23 hourly runs',
        'America/New_York',
        '2024-03-10T05:00:00Z',
        23,
      ],
    ])('%s', (_name, tz, localMidnight, expected) => {
      const j = job('0 * * * *', tz);
      const from = t(localMidnight);
      // One local day: from local midnight to just before the next local midnight.
      const until = latestTick(parseSchedule('0 0 * * *', tz), from + 26 * H)! - MIN;
      const initial = [run('backup', iso(from - H + 5000))];
      const { starts } = simulate(j, from + 30_000, until, 15 * MIN, initial);
      expect(starts).toHaveLength(expected);
    });

    it('spring forward in New York: 02:30 runs at 03:30 EDT, once', () => {
      const j = job('30 2 * * *', 'America/New_York');
      const initial = [run('backup', '2024-03-09T07:30:05Z')];
      const { starts } = simulate(j, t('2024-03-09T12:00:00Z'), t('2024-03-11T12:00:00Z'), 15 * MIN, initial);
      expect(starts.map(iso)).toEqual(['2024-03-10T07:30:00.000Z', '2024-03-11T06:30:00.000Z']);
    });

    it('fall back in New York: 01:30 happens twice on the wall clock, the backup runs once', () => {
      const j = job('30 1 * * *', 'America/New_York');
      const initial = [run('backup', '2024-11-02T05:30:05Z')];
      const { starts } = simulate(j, t('2024-11-02T12:00:00Z'), t('2024-11-04T12:00:00Z'), 15 * MIN, initial);
      expect(starts.map(iso)).toEqual(['2024-11-03T05:30:00.000Z', '2024-11-04T06:30:00.000Z']);
    });
  });

  describe('a job whose last run failed', () => {
    const j = job('0 * * * *');
    const failed = run('backup', '2024-06-01T13:00:05Z', 'failure', { minutes: 1 });

    it.each([
      [
        'waits for the retry delay',
        '2024-06-01T13:10:00Z',
        false,
        'not due: last backup failed 9m ago; one retry at 13:16 UTC',
      ],
      [
        'retries once after 15 minutes',
        '2024-06-01T13:20:00Z',
        true,
        'due: last backup failed 19m ago; retrying once before the next run 14:00 UTC',
      ],
    ])('%s', (_name, now, due, reason) => {
      expect(backupItem(plan(now, [j], { local: [failed] }))).toMatchObject({ due, reason });
    });

    it('after a failed retry it waits for the next scheduled run', () => {
      const records = [failed, run('backup', '2024-06-01T13:20:02Z', 'failure')];
      expect(backupItem(plan('2024-06-01T13:40:00Z', [j], { local: records }))).toMatchObject({
        due: false,
        reason: 'not due: last backup failed 19m ago; next run 14:00 UTC',
        nextAt: t('2024-06-01T14:00:00Z'),
      });
      const item = backupItem(plan('2024-06-01T14:00:30Z', [j], { local: records }));
      expect(item.due).toBe(true);
      expect(item.reason).toBe(
        'due: no good backup, schedule hourly (0 * * * *); last attempt failed 39m ago',
      );
    });

    it('an interrupted run counts as failed', () => {
      const interrupted = { ...failed, outcome: 'interrupted' as const };
      expect(backupItem(plan('2024-06-01T13:20:00Z', [j], { local: [interrupted] })).reason).toMatch(
        /^due: last backup was interrupted 19m ago; retrying once/,
      );
    });

    it('no retry when the next scheduled run comes first', () => {
      const quarter = job('*/15 * * * *');
      const late = run('backup', '2024-06-01T13:00:05Z', 'failure', { minutes: 5 });
      expect(backupItem(plan('2024-06-01T13:10:00Z', [quarter], { local: [late] }))).toMatchObject({
        due: false,
        reason: 'not due: last backup failed 5m ago; next run 13:15 UTC',
      });
    });

    it('retries can be switched off', () => {
      expect(
        backupItem(
          plan('2024-06-01T13:30:00Z', [j], { local: [failed] }, { options: { backupRetryDelayMs: 0 } }),
        ),
      ).toMatchObject({ due: false, reason: 'not due: last backup failed 29m ago; next run 14:00 UTC' });
    });
  });

  it('a journal that cannot be read does not block the backup, and the reason says so', () => {
    const item = backupItem(
      plan('2024-06-01T13:10:00Z', [job('0 * * * *')], { local: { records: [], error: 'wrong password' } }),
    );
    expect(item.due).toBe(true);
    expect(item.reason).toBe(
      'due: no good backup, schedule hourly (0 * * * *) (journal of local unreadable: wrong password)',
    );
  });

  it('runs seen twice (journal and this host’s local record) count once', () => {
    const a = run('backup', '2024-06-01T13:00:05Z', 'failure', { id: 'aaaaaaaaaaaaaaaa' });
    const item = backupItem(plan('2024-06-01T13:20:00Z', [job('0 * * * *')], { local: [a, { ...a }] }));
    expect(item.due).toBe(true); // one failed attempt since 13:00, so the single retry is still allowed
  });

  it('says since when the journal was read', () => {
    const item = backupItem(
      plan('2024-06-01T13:10:00Z', [job('0 * * * *')], { local: [] }, { since: t('2024-05-30T00:00:00Z') }),
    );
    expect(item.reason).toBe('due: no good backup since 2024-05-30 00:00 UTC, schedule hourly (0 * * * *)');
  });

  it('a cron that never fires is an error of the configuration', () => {
    const r = checkSchedule('0 0 30 2 *', 'UTC');
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(/never fires/);
  });
});

describe('drills', () => {
  const j = job('0 * * * *', 'UTC', { drillEvery: 7 * D });
  const drillItem = (items: PlannedActivity[]) => items.find((i) => i.kind === 'drill');

  it.each([
    {
      name: 'never drilled',
      runs: [],
      due: true,
      reason: 'due: no successful drill; the policy requires one every 7d',
    },
    {
      name: 'drilled two days ago',
      runs: [run('drill', '2024-05-30T12:00:00Z')],
      due: false,
      reason: 'not due: last successful drill 2d ago; next due 2024-06-06 12:00 UTC',
    },
    {
      name: 'drilled eight days ago',
      runs: [run('drill', '2024-05-24T12:00:00Z')],
      due: true,
      reason: 'due: last successful drill 8d ago; the policy requires one every 7d',
    },
    {
      name: 'a failed drill is retried a day later',
      runs: [
        run('drill', '2024-05-24T12:00:00Z'),
        run('drill', '2024-06-01T10:00:00Z', 'failure', { minutes: 10 }),
      ],
      due: false,
      reason: 'not due: last drill failed 1h 50m ago; next attempt 2024-06-02 10:10 UTC',
    },
  ])('$name', ({ runs, due, reason }) => {
    const item = drillItem(plan('2024-06-01T12:00:00Z', [j], { local: runs }));
    expect(item).toMatchObject({ id: 'drill:web', job: 'web', repository: 'local', due, reason });
  });

  it('drill records in any of the job’s repositories count', () => {
    const two = { ...j, repositories: ['local', 'offsite'] };
    const item = drillItem(
      plan('2024-06-01T12:00:00Z', [two], { local: [], offsite: [run('drill', '2024-05-31T12:00:00Z')] }),
    );
    expect(item?.due).toBe(false);
  });

  it('no drill item when the policy asks for none', () => {
    expect(drillItem(plan('2024-06-01T12:00:00Z', [job('0 * * * *')], { local: [] }))).toBeUndefined();
  });
});

describe('checks', () => {
  const checkItem = (items: PlannedActivity[]) => items.find((i) => i.kind === 'check');
  const repos = [{ name: 'local', checkEvery: 7 * D }];

  it.each([
    { name: 'never checked', runs: [], due: true },
    {
      name: 'checked yesterday',
      runs: [run('check', '2024-05-31T12:00:00Z', 'success', { job: null })],
      due: false,
    },
    {
      name: 'checked 7 days ago',
      runs: [run('check', '2024-05-25T12:00:00Z', 'success', { job: null })],
      due: true,
    },
  ])('$name', ({ runs, due }) => {
    const item = checkItem(
      plan('2024-06-01T12:00:00Z', [job('0 * * * *')], { local: runs }, { repositories: repos }),
    );
    expect(item).toMatchObject({ id: 'check:local', repository: 'local', due });
  });
});

describe('retention', () => {
  const j = job('0 * * * *', 'UTC', { retention: true });
  const retentionItem = (items: PlannedActivity[]) => items.find((i) => i.kind === 'retention');
  const backup = run('backup', '2024-06-01T11:00:05Z');

  it.each([
    {
      name: 'never ran, backups exist',
      runs: [backup],
      due: true,
      reason: 'due: restore points and no retention run',
    },
    {
      name: 'ran 25h ago, new backups since',
      runs: [run('prune', '2024-05-31T11:00:00Z', 'success', { job: null }), backup],
      due: true,
      reason: 'due: new restore points since the retention run 1d 1h ago',
    },
    {
      name: 'ran 2h ago',
      runs: [run('prune', '2024-06-01T10:00:00Z', 'success', { job: null }), backup],
      due: false,
      reason: 'not due: retention ran 2h ago; next 2024-06-02 10:00 UTC at the earliest',
    },
    {
      name: 'failed 2h ago: retried after an hour',
      runs: [run('prune', '2024-06-01T10:00:00Z', 'failure', { job: null }), backup],
      due: true,
    },
    {
      name: 'no new restore points',
      runs: [
        backup,
        run('prune', '2024-05-30T12:00:00Z', 'success', { job: null }),
        run('forget', '2024-06-01T11:30:00Z'),
      ],
      due: false,
      reason: 'not due: no new restore points since the last retention run',
    },
    { name: 'no backups at all', runs: [], due: false, reason: 'not due: no new restore points to thin out' },
  ])('$name', ({ runs, due, reason }) => {
    const item = retentionItem(plan('2024-06-01T12:00:00Z', [j], { local: runs }));
    expect(item).toMatchObject({ id: 'retention:local', repository: 'local', jobs: ['web'], due });
    if (reason) expect(item?.reason).toBe(reason);
  });

  it('no retention item for repositories without jobs with retention rules', () => {
    expect(
      retentionItem(plan('2024-06-01T12:00:00Z', [job('0 * * * *')], { local: [backup] })),
    ).toBeUndefined();
  });
});

describe('copies', () => {
  const j = job('0 * * * *', 'UTC', { repositories: ['local', 'offsite'] });
  const copyItem = (items: PlannedActivity[]) => items.find((i) => i.kind === 'copy');
  const backup = run('backup', '2024-06-01T11:00:05Z', 'success', { minutes: 5 });

  it.each([
    { name: 'nothing to copy yet', local: [], offsite: [], due: false },
    { name: 'a backup not yet copied', local: [backup], offsite: [], due: true },
    {
      name: 'copied after the backup',
      local: [backup],
      offsite: [run('copy', '2024-06-01T11:06:00Z')],
      due: false,
    },
    {
      name: 'copy failed 30m ago: retried once',
      local: [backup],
      offsite: [run('copy', '2024-06-01T11:20:00Z', 'failure')],
      due: true,
    },
    {
      name: 'copy failed twice: wait for the next backup',
      local: [backup],
      offsite: [
        run('copy', '2024-06-01T11:06:00Z', 'failure'),
        run('copy', '2024-06-01T11:30:00Z', 'failure'),
      ],
      due: false,
    },
  ])('$name', ({ local, offsite, due }) => {
    const item = copyItem(plan('2024-06-01T12:00:00Z', [j], { local, offsite }));
    expect(item).toMatchObject({ id: 'copy:web:offsite', repository: 'offsite', from: 'local', due });
  });
});

describe('planActivities', () => {
  it('lists activities in execution order: backups, copies, drills, retention, checks', () => {
    const j = job('0 * * * *', 'UTC', {
      repositories: ['local', 'offsite'],
      drillEvery: 7 * D,
      retention: true,
    });
    const items = plan(
      '2024-06-01T12:00:00Z',
      [j],
      { local: [run('backup', '2024-06-01T10:00:05Z')] },
      { repositories: [{ name: 'local', checkEvery: D }, { name: 'offsite' }] },
    );
    expect(items.map((i) => i.id)).toEqual([
      'backup:web',
      'copy:web:offsite',
      'drill:web',
      'retention:local',
      'retention:offsite',
      'check:local',
    ]);
  });
});

describe('journalHorizon', () => {
  it('reaches back to the run before the latest scheduled one, a day earlier', () => {
    const now = t('2024-06-01T12:30:00Z');
    expect(iso(journalHorizon({ now, jobs: [job('0 3 * * *')], repositories: [] }))).toBe(
      '2024-05-30T03:00:00.000Z',
    );
  });

  it('covers a drill interval and a check interval', () => {
    const now = t('2024-06-10T00:00:00Z');
    const jobs = [job(undefined, 'UTC', { drillEvery: 7 * D })];
    expect(iso(journalHorizon({ now, jobs, repositories: [] }))).toBe('2024-06-02T00:00:00.000Z');
    expect(iso(journalHorizon({ now, jobs: [], repositories: [{ name: 'r', checkEvery: 30 * D }] }))).toBe(
      '2024-05-10T00:00:00.000Z',
    );
  });
});

/** Invoke the planner every `step` ms from `from` to `until`; each due backup takes a minute and succeeds. */
function simulate(j: PlanJob, from: number, until: number, step: number, initial: RunFacts[] = []) {
  const records = [...initial];
  const starts: number[] = [];
  for (let now = from; now <= until; now += step) {
    const item = backupItem(plan(now, [j], { local: records }));
    if (item.due) {
      starts.push(now);
      records.push({
        kind: 'backup',
        job: j.name,
        startedAt: iso(now + 1000),
        endedAt: iso(now + MIN),
        outcome: 'success',
      });
    }
  }
  return { starts, records };
}
