/**
 * Every control of the pure model with pass, warning, fail and unknown cases, table-driven:
 * each case builds the evidence of one job `app` and names the status (and words) it expects.
 */
import { describe, expect, it } from 'vitest';
import {
  buildReport,
  type Control,
  type ControlId,
  type ControlStatus,
  type JobReport,
  type PolicyTargets,
  type ReportEvidence,
  type RepositoryEvidence,
  type RestorePointEvidence,
  type RunEvidence,
} from '../../../src/report/index.js';
import { retentionPromise } from '../../../src/report/retentionControl.js';
import { backup, check, D, drill, H, jobTarget, MIN, NOW, point, repo, run, targets } from './fixture.js';

const POLICY: PolicyTargets = { name: 'p', rpoMs: H, copies: 1, offsite: 0 };

interface Setup {
  policy?: Partial<PolicyTargets>;
  repositories?: RepositoryEvidence[];
  points?: RestorePointEvidence[];
  runs?: RunEvidence[];
  windowMs?: number;
}

function judge(s: Setup): JobReport {
  const repositories = s.repositories ?? [repo('local')];
  const evidence: ReportEvidence = { repositories, restorePoints: s.points ?? [], runs: s.runs ?? [] };
  const job = jobTarget(
    'app',
    'files',
    { ...POLICY, ...s.policy },
    repositories.map((r) => r.name),
  );
  return buildReport(evidence, targets([job], { windowMs: s.windowMs ?? 30 * D }), NOW).jobs[0]!;
}

function control(s: Setup, id: ControlId): Control {
  const job = judge(s);
  const c = job.controls.find((x) => x.id === id);
  if (!c) throw new Error(`no control ${id}; not applicable: ${JSON.stringify(job.notApplicable)}`);
  return c;
}

/** Backups (and their snapshots) of `app` into `repository` at the given times. */
function backups(
  times: number[],
  repository = 'local',
): { points: RestorePointEvidence[]; runs: RunEvidence[] } {
  const made = times.map((t) => backup('app', repository, t));
  return { points: made.map((b) => b.point!), runs: made.map((b) => b.run) };
}

/** Times from `from` to `to` (inclusive) every `step`. */
function every(step: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = from; t <= to; t += step) out.push(t);
  return out;
}

interface Case {
  name: string;
  setup: () => Setup;
  status: ControlStatus;
  measured?: RegExp;
}

function table(id: ControlId, cases: Case[]): void {
  describe(id, () => {
    it.each(cases)('$status: $name', ({ setup, status, measured }) => {
      const c = control(setup(), id);
      expect(c.status, c.measured).toBe(status);
      if (measured) expect(c.measured).toMatch(measured);
      expect(c.title.length).toBeGreaterThan(0);
      expect(c.target.length).toBeGreaterThan(0);
    });
  });
}

table('rpo-now', [
  {
    name: 'newest point 10m old, RPO 1h',
    setup: () => backups([NOW - 10 * MIN]),
    status: 'pass',
    measured: /10m ago, within the RPO of 1h/,
  },
  {
    name: 'newest point 50m old (>= 80%)',
    setup: () => backups([NOW - 50 * MIN]),
    status: 'warning',
    measured: /close to/,
  },
  {
    name: 'newest point 2h old',
    setup: () => backups([NOW - 2 * H]),
    status: 'fail',
    measured: /older than the RPO/,
  },
  { name: 'no restore point', setup: () => ({}), status: 'fail', measured: /no restore point/ },
  {
    name: 'a partial snapshot is not a restore point',
    setup: () => ({ points: [point('app', 'local', NOW - 5 * MIN, { partial: true })] }),
    status: 'fail',
  },
  {
    name: 'a lagging offsite copy counts',
    setup: () => ({
      repositories: [repo('local'), repo('offsite', { offsite: true })],
      points: [point('app', 'local', NOW - 5 * MIN), point('app', 'offsite', NOW - 3 * H)],
    }),
    status: 'fail',
    measured: /offsite \(offsite\): newest restore point 3h ago, older than/,
  },
  {
    name: 'the repository cannot be opened',
    setup: () => ({
      repositories: [
        repo('local', { opened: false, error: { code: 'E_ACCESS_DENIED', message: 'wrong password' } }),
      ],
    }),
    status: 'unknown',
    measured: /cannot tell: repository local could not be read: wrong password/,
  },
]);

table('rpo-window', [
  {
    name: 'a point every 30m',
    setup: () => backups(every(30 * MIN, NOW - 40 * D, NOW - 10 * MIN)),
    status: 'pass',
    measured: /largest gap 30m .*100% of the window within the RPO/,
  },
  {
    name: 'one gap of 55m (>= 80%)',
    setup: () =>
      backups([
        ...every(30 * MIN, NOW - 40 * D, NOW - 5 * D),
        ...every(30 * MIN, NOW - 5 * D + 55 * MIN, NOW),
      ]),
    status: 'warning',
    measured: /largest gap 55m/,
  },
  {
    name: 'a gap of exactly the RPO never reaches it',
    setup: () => backups(every(H, NOW - 40 * D, NOW)),
    status: 'warning',
    measured: /largest gap 1h .*100% of the window within the RPO/,
  },
  {
    name: 'a 3h gap in the window',
    setup: () =>
      backups([...every(30 * MIN, NOW - 40 * D, NOW - 5 * D), ...every(30 * MIN, NOW - 5 * D + 3 * H, NOW)]),
    status: 'fail',
    measured: /largest gap 3h .*99\.7% of the window within the RPO/,
  },
  {
    name: 'the open gap up to now',
    setup: () => backups(every(30 * MIN, NOW - 40 * D, NOW - 2 * H)),
    status: 'fail',
    measured: /largest gap 2h \(since .*, still open\)/,
  },
  {
    name: 'a job younger than the window is judged from its first restore point',
    setup: () => backups(every(30 * MIN, NOW - 2 * D, NOW)),
    status: 'pass',
    measured: /judged from the first restore point/,
  },
  {
    name: 'restore points forgotten by retention still count (from the journal)',
    setup: () => {
      const b = backups(every(30 * MIN, NOW - 3 * D, NOW));
      return { runs: b.runs, points: b.points.slice(-3) };
    },
    status: 'pass',
  },
  {
    name: 'no restore point, failed attempts',
    setup: () => ({ runs: [backup('app', 'local', NOW - 2 * H, 'failure').run] }),
    status: 'fail',
    measured: /no good restore point; 1 backup attempt/,
  },
  {
    name: 'no restore point and no backup',
    setup: () => ({}),
    status: 'unknown',
    measured: /no restore point and no backup in the window/,
  },
]);

table('backup-success-rate', [
  {
    name: '10 of 10',
    setup: () => backups(every(H, NOW - 10 * H, NOW - H)),
    status: 'pass',
    measured: /^10 of 10 succeeded \(100%\)$/,
  },
  {
    name: '9 of 10 (one partial)',
    setup: () => {
      const b = backups(every(H, NOW - 9 * H, NOW - H));
      return { ...b, runs: [...b.runs, backup('app', 'local', NOW - 10 * H, 'partial').run] };
    },
    status: 'warning',
    measured: /9 of 10 succeeded \(90%\); 1 partial/,
  },
  {
    name: '5 of 10',
    setup: () => {
      const b = backups(every(H, NOW - 5 * H, NOW - H));
      const bad = every(H, NOW - 10 * H, NOW - 6 * H).map((t) => backup('app', 'local', t, 'failure').run);
      return { ...b, runs: [...b.runs, ...bad] };
    },
    status: 'fail',
    measured: /5 of 10 succeeded \(50%\); 5 failed/,
  },
  {
    name: 'runs before the window do not count',
    setup: () => ({ runs: [backup('app', 'local', NOW - 40 * D, 'failure').run] }),
    status: 'unknown',
    measured: /no backup in the window/,
  },
]);

const RTO = { rtoMs: 30 * MIN };
const d = (at: number, verdict: 'pass' | 'fail' | 'breach', measuredMs: number, extra = {}) =>
  drill('app', 'local', at, { verdict, measuredMs, rtoMs: 30 * MIN, ...extra });

table('rto', [
  {
    name: 'last drill 10m of 30m',
    setup: () => ({ policy: RTO, runs: [d(NOW - D, 'pass', 10 * MIN)] }),
    status: 'pass',
    measured: /restore took 10m of an RTO of 30m/,
  },
  {
    name: 'last drill 25m of 30m (>= 80%)',
    setup: () => ({ policy: RTO, runs: [d(NOW - D, 'pass', 25 * MIN)] }),
    status: 'warning',
  },
  {
    name: 'last drill fast, but the p95 of the window close to the RTO',
    setup: () => ({
      policy: RTO,
      runs: [
        d(NOW - 4 * D, 'pass', 29 * MIN),
        d(NOW - 3 * D, 'pass', 29 * MIN),
        d(NOW - 2 * D, 'pass', 29 * MIN),
        d(NOW - D, 'pass', 10 * MIN),
      ],
    }),
    status: 'warning',
    measured: /worst 29m, p95 29m over 4 timed drills; the p95 is 96.7% of the RTO/,
  },
  {
    name: 'last drill too slow (breach)',
    setup: () => ({ policy: RTO, runs: [d(NOW - 3 * D, 'pass', 5 * MIN), d(NOW - D, 'breach', 40 * MIN)] }),
    status: 'fail',
    measured: /restore took 40m of an RTO of 30m/,
  },
  {
    name: 'last drill failed (as lifeboat status judges it)',
    setup: () => ({
      policy: RTO,
      runs: [d(NOW - D, 'fail', 5 * MIN, { failedStep: { name: 'content', message: 'differs' } })],
    }),
    status: 'fail',
    measured: /last drill failed/,
  },
  { name: 'no drill', setup: () => ({ policy: RTO }), status: 'unknown', measured: /no drill in the window/ },
  {
    name: 'drills only before the window',
    setup: () => ({ policy: RTO, runs: [d(NOW - 40 * D, 'pass', 5 * MIN)] }),
    status: 'unknown',
  },
]);

const DRILL = { drill: { everyMs: 7 * D, snapshot: 'latest' as const, windowMs: 30 * D } };
const young = () => backups([NOW - 2 * D]);
const old = () => backups([NOW - 10 * D, NOW - 30 * MIN]);

table('drill-freshness', [
  {
    name: 'success 2d ago, every 7d',
    setup: () => ({ policy: DRILL, ...old(), runs: [...old().runs, d(NOW - 2 * D, 'pass', MIN)] }),
    status: 'pass',
    measured: /last successful drill 2d ago/,
  },
  {
    name: 'success 6d ago (>= 80%)',
    setup: () => ({ policy: DRILL, runs: [d(NOW - 6 * D, 'pass', MIN)] }),
    status: 'warning',
  },
  {
    name: 'success 8d ago',
    setup: () => ({ policy: DRILL, runs: [d(NOW - 8 * D, 'pass', MIN)] }),
    status: 'fail',
  },
  {
    name: 'only failed drills, job older than 7d',
    setup: () => ({ policy: DRILL, points: old().points, runs: [...old().runs, d(NOW - D, 'fail', MIN)] }),
    status: 'fail',
    measured: /no successful drill in the last 31d \(1 failed or interrupted\)/,
  },
  {
    name: 'only a failed drill, job 2d old',
    setup: () => ({ policy: DRILL, ...young(), runs: [...young().runs, d(NOW - D, 'breach', 40 * MIN)] }),
    status: 'unknown',
    measured: /^no successful drill yet \(1 failed or interrupted\); the job is younger than 7d/,
  },
  {
    name: 'no drill, job 2d old',
    setup: () => ({ policy: DRILL, ...young() }),
    status: 'unknown',
    measured: /the job is younger than 7d/,
  },
  {
    name: 'no drill, no backup',
    setup: () => ({ policy: DRILL }),
    status: 'unknown',
    measured: /no backup of the job/,
  },
  {
    name: 'repository unreadable',
    setup: () => ({
      policy: DRILL,
      repositories: [repo('local', { opened: false, error: { code: 'E_REPO_MISSING', message: 'gone' } })],
    }),
    status: 'unknown',
    measured: /local could not be read/,
  },
]);

table('drill-verification', [
  {
    name: 'last drill passed',
    setup: () => ({ policy: DRILL, runs: [d(NOW - D, 'pass', MIN)] }),
    status: 'pass',
    measured: /1 of 1 check passed/,
  },
  {
    name: 'too slow is not a verification failure',
    setup: () => ({ policy: DRILL, runs: [d(NOW - D, 'breach', 40 * MIN)] }),
    status: 'pass',
  },
  {
    name: 'an earlier drill in the window failed verification',
    setup: () => ({
      policy: DRILL,
      runs: [
        d(NOW - 3 * D, 'fail', MIN, { failedStep: { name: 'content', message: 'x' } }),
        d(NOW - D, 'pass', MIN),
      ],
    }),
    status: 'warning',
    measured: /1 of 2 drills in the window failed verification/,
  },
  {
    name: 'last drill failed an assertion',
    setup: () => ({
      policy: DRILL,
      runs: [d(NOW - D, 'fail', MIN, { failedStep: { name: 'assertion 1', message: 'orders is empty' } })],
    }),
    status: 'fail',
    measured: /failed: assertion 1: orders is empty/,
  },
  {
    name: 'an older record without a verdict that failed',
    setup: () => ({
      policy: DRILL,
      runs: [
        run('drill', 'app', 'local', NOW - D, {
          outcome: 'failure',
          error: { code: 'E_X', message: 'restore broke' },
        }),
      ],
    }),
    status: 'fail',
    measured: /restore broke/,
  },
  { name: 'no drill', setup: () => ({ policy: DRILL }), status: 'unknown', measured: /no drill yet/ },
  {
    name: 'only an interrupted drill',
    setup: () => ({
      policy: DRILL,
      runs: [run('drill', 'app', 'local', NOW - D, { outcome: 'interrupted' })],
    }),
    status: 'unknown',
    measured: /interrupted/,
  },
]);

const RANDOM = { drill: { everyMs: D, snapshot: 'random' as const, windowMs: 7 * D } };
/** Daily backups for 10 days, and drills of the `drilled` newest of them. */
function coverage(drilled: number, opts: { offsite?: boolean } = {}): Setup {
  const b = backups(every(D, NOW - 10 * D + H, NOW - H));
  const points = [...b.points];
  const repositories = [repo('local')];
  if (opts.offsite) {
    repositories.push(repo('offsite', { offsite: true }));
    points.push(...b.points.map((p) => ({ ...p, id: `copy-${p.id}`, repository: 'offsite' })));
  }
  const targetsOf = b.points.slice(-drilled);
  const runs = [
    ...b.runs,
    ...targetsOf.map((p) =>
      drill('app', opts.offsite ? 'offsite' : 'local', p.startedAt + 30 * MIN, {
        verdict: 'pass',
        measuredMs: MIN,
        rtoMs: null,
        snapshotId: opts.offsite ? `copy-${p.id}` : p.id,
      }),
    ),
  ];
  return { policy: RANDOM, points, runs, repositories };
}

table('drill-coverage', [
  {
    name: '7 of 7 points of the window drilled',
    setup: () => coverage(7),
    status: 'pass',
    measured: /^7 of 7 restore points drilled \(100%\); 7 expected$/,
  },
  {
    name: 'drills of copies count for the restore point',
    setup: () => coverage(7, { offsite: true }),
    status: 'pass',
  },
  {
    name: '6 of 7 expected (>= 80%)',
    setup: () => coverage(6),
    status: 'warning',
  },
  {
    name: '2 of 7 expected',
    setup: () => coverage(2),
    status: 'fail',
    measured: /2 of 7 restore points drilled/,
  },
  {
    name: 'no restore point in the drill window',
    setup: () => ({ policy: RANDOM, ...backups([NOW - 20 * D]) }),
    status: 'unknown',
  },
]);

const DAILY7 = { retention: { daily: 7 } };
table('retention-coverage', [
  {
    name: 'oldest point 6d old (daily 7 promises 5d)',
    setup: () => ({ policy: DAILY7, ...backups([NOW - 6 * D, NOW - 10 * MIN]) }),
    status: 'pass',
  },
  {
    name: 'job 10d old, oldest point 4.5d (>= 80%)',
    setup: () => {
      const b = backups(every(12 * H, NOW - 10 * D, NOW - H));
      return { policy: DAILY7, runs: b.runs, points: b.points.filter((p) => p.startedAt >= NOW - 4.5 * D) };
    },
    status: 'warning',
  },
  {
    name: 'job 10d old, oldest point 1d: restore points were lost',
    setup: () => {
      const b = backups(every(12 * H, NOW - 10 * D, NOW - H));
      return { policy: DAILY7, runs: b.runs, points: b.points.filter((p) => p.startedAt >= NOW - D) };
    },
    status: 'fail',
    measured: /oldest restore point 1d ago/,
  },
  {
    name: 'job 2d old',
    setup: () => ({ policy: DAILY7, ...backups([NOW - 2 * D]) }),
    status: 'unknown',
    measured: /the job is younger than that/,
  },
  {
    name: 'the journal does not reach back far enough to tell',
    setup: () => ({
      policy: { retention: { monthly: 12 } },
      repositories: [repo('local', { journalSince: NOW - 31 * D })],
      ...backups([NOW - 20 * D]),
    }),
    status: 'unknown',
    measured: /cannot tell whether the job is that old/,
  },
  {
    name: 'repository unreadable',
    setup: () => ({ policy: DAILY7, repositories: [repo('local', { opened: false })] }),
    status: 'unknown',
  },
]);

const TWO = { copies: 2, offsite: 1 };
const twoRepos = (local: number, offsite: number, offsiteOpened = true): Setup => ({
  policy: TWO,
  repositories: [repo('local'), repo('offsite', { offsite: true, opened: offsiteOpened })],
  points: [point('app', 'local', local), ...(offsiteOpened ? [point('app', 'offsite', offsite)] : [])],
});
table('copies', [
  {
    name: 'both copies fresh',
    setup: () => twoRepos(NOW - 10 * MIN, NOW - 20 * MIN),
    status: 'pass',
    measured: /2 of 2 copies within the RPO, 1 of 1 offsite/,
  },
  {
    name: 'the offsite copy close to the RPO',
    setup: () => twoRepos(NOW - 10 * MIN, NOW - 55 * MIN),
    status: 'warning',
    measured: /some are close to the RPO/,
  },
  {
    name: 'the offsite copy lags',
    setup: () => twoRepos(NOW - 10 * MIN, NOW - 5 * H),
    status: 'fail',
    measured: /1 of 2 copies within the RPO, 0 of 1 offsite/,
  },
  {
    name: 'the offsite repository is unreadable',
    setup: () => twoRepos(NOW - 10 * MIN, 0, false),
    status: 'unknown',
    measured: /offsite unreadable/,
  },
]);

table('encryption', [
  {
    name: 'opened with a key',
    setup: () => backups([NOW - MIN]),
    status: 'pass',
    measured: /opened with key slot [0-9a-f]{8} \(AES-256-GCM/,
  },
  {
    name: 'the password is a literal in the configuration',
    setup: () => ({
      repositories: [
        repo('local', { encryption: { repositoryId: 'r', keyId: 'k1234567890', passwordSource: 'literal' } }),
      ],
    }),
    status: 'warning',
    measured: /password is written in the configuration file/,
  },
  {
    name: 'the repository cannot be opened',
    setup: () => ({ repositories: [repo('local', { opened: false })] }),
    status: 'unknown',
  },
]);

const IMMUTABLE = { immutableForMs: 30 * D };
const locked = (state: RepositoryEvidence['immutability'][string]): Setup => ({
  policy: IMMUTABLE,
  repositories: [repo('local', { immutability: { app: state } })],
  ...backups([NOW - 10 * MIN]),
});
table('immutability', [
  {
    name: 'the newest point is locked',
    setup: () => locked({ state: 'ok', reason: 'locked until …', lockedUntil: NOW + 30 * D }),
    status: 'pass',
  },
  {
    name: 'the newest point is older than immutableFor: nothing locked now',
    setup: () =>
      locked({
        state: 'ok',
        reason: 'the newest restore point is older than immutableFor 30d',
        snapshotId: 'abc',
      }),
    status: 'warning',
    measured: /no restore point is locked now/,
  },
  {
    name: 'the storage cannot lock objects',
    setup: () => locked({ state: 'unavailable', reason: 'file storage cannot lock' }),
    status: 'fail',
    measured: /^local: immutability unavailable: file storage cannot lock$/,
  },
  {
    name: 'locked too briefly',
    setup: () => locked({ state: 'not-locked', reason: 'newest restore point is not locked' }),
    status: 'fail',
  },
  {
    name: 'no lock state was read',
    setup: () => ({ policy: IMMUTABLE, ...backups([NOW - 10 * MIN]) }),
    status: 'fail',
    measured: /immutability unavailable/,
  },
  {
    name: 'the retention could not be read',
    setup: () => locked({ state: 'unknown', reason: 'could not read the retention' }),
    status: 'unknown',
  },
  {
    name: 'no restore point to lock yet',
    setup: () => locked({ state: 'ok', reason: 'no restore point to lock yet' }),
    status: 'unknown',
  },
  {
    name: 'the repository cannot be opened',
    setup: () => ({ policy: IMMUTABLE, repositories: [repo('local', { opened: false })] }),
    status: 'unknown',
  },
]);

const CHECK = { check: { everyMs: 7 * D, readData: 0.1 } };
const withChecks = (...checks: RunEvidence[]): Setup => ({
  policy: CHECK,
  ...old(),
  runs: [...old().runs, ...checks],
});
table('integrity', [
  {
    name: 'a check reading data 2d ago',
    setup: () => withChecks(check('local', NOW - 2 * D, 'a random 10% of packs')),
    status: 'pass',
    measured: /last good check 2d ago \(read a random 10% of packs\)/,
  },
  {
    name: 'the last good check 6d ago (>= 80%)',
    setup: () => withChecks(check('local', NOW - 6 * D, 'all packs')),
    status: 'warning',
  },
  {
    name: 'the last good check 8d ago',
    setup: () => withChecks(check('local', NOW - 8 * D, 'all packs')),
    status: 'fail',
  },
  {
    name: 'the last check found problems',
    setup: () =>
      withChecks(
        check('local', NOW - 3 * D, 'all packs'),
        check('local', NOW - D, 'all packs', {
          outcome: 'failure',
          stats: { problems: 2 },
          error: { code: 'E_INTEGRITY', message: 'pack damaged' },
        }),
      ),
    status: 'fail',
    measured: /the last check 1d ago failed with 2 problems: pack damaged/,
  },
  {
    name: 'only structural checks when the policy asks to read data',
    setup: () => withChecks(check('local', NOW - D, 'no pack data')),
    status: 'fail',
    measured: /only structural checks/,
  },
  {
    name: 'a structural check suffices when readData is false',
    setup: () => ({
      ...withChecks(check('local', NOW - D, 'no pack data')),
      policy: { check: { everyMs: 7 * D, readData: 0 } },
    }),
    status: 'pass',
  },
  {
    name: 'no check, job 2d old',
    setup: () => ({ policy: CHECK, ...young() }),
    status: 'unknown',
    measured: /younger than 7d/,
  },
  {
    name: 'repository unreadable',
    setup: () => ({ policy: CHECK, repositories: [repo('local', { opened: false })] }),
    status: 'unknown',
  },
]);

describe('controls a policy does not ask for', () => {
  it('are listed as not applicable, with the reason', () => {
    const job = judge(backups([NOW - MIN]));
    expect(job.controls.map((c) => c.id)).toEqual([
      'rpo-now',
      'rpo-window',
      'backup-success-rate',
      'copies',
      'encryption',
    ]);
    expect(Object.fromEntries(job.notApplicable.map((n) => [n.id, n.reason]))).toEqual({
      rto: 'the policy sets no rto',
      'drill-freshness': 'the policy asks for no drills',
      'drill-verification': 'the policy asks for no drills',
      'drill-coverage': 'the policy asks for no drills',
      'retention-coverage': 'the policy has no retention rules: nothing is forgotten',
      immutability: 'the policy sets no immutableFor',
      integrity: 'the policy sets no check cadence',
    });
  });

  it('a job whose policy does not exist gets one unknown control', () => {
    const evidence: ReportEvidence = { repositories: [repo('local')], restorePoints: [], runs: [] };
    const r = buildReport(evidence, targets([jobTarget('app', 'files', undefined, ['local'])]), NOW);
    expect(r.jobs[0]!.controls).toEqual([
      expect.objectContaining({
        id: 'policy',
        status: 'unknown',
        measured: expect.stringMatching(/not configured/),
      }),
    ]);
    expect(r.status).toBe('unknown');
  });
});

describe('unknown is never shown as pass', () => {
  it('every control of a job whose repository cannot be opened is unknown', () => {
    const job = judge({
      policy: { ...DRILL, ...CHECK, ...IMMUTABLE, ...DAILY7, rtoMs: 30 * MIN },
      repositories: [repo('local', { opened: false, error: { code: 'E_ACCESS_DENIED', message: 'denied' } })],
    });
    expect(job.controls).toHaveLength(11);
    for (const c of job.controls) expect([c.id, c.status]).toEqual([c.id, 'unknown']);
    expect(job.status).toBe('unknown');
  });
});

describe('retentionPromise', () => {
  it.each([
    [{ daily: 7 }, 5 * D, 'daily 7'],
    [{ hourly: 24, daily: 7, weekly: 4 }, 14 * D, 'weekly 4'],
    [{ monthly: 12 }, 10 * 28 * D, 'monthly 12'],
    [{ within: 2 * D }, 2 * D - H, 'within 2d'],
    [{ daily: 7, yearly: Infinity }, 5 * D, 'daily 7'],
  ])('%j promises %d ms (%s)', (rules, ms, rule) => {
    expect(retentionPromise(rules, H)).toEqual({ requiredMs: ms, rule });
  });

  it.each([[{ last: 10 }], [{ daily: 1 }], [{}]])('%j promises no age', (rules) => {
    expect(retentionPromise(rules, H)).toBeUndefined();
  });
});
