/**
 * A fixed body of evidence for the report and runbook tests: three configured jobs over three
 * repositories (one unreadable), a retired job with a hostile name, a journal record from a
 * newer lifeboat, and texts that must be escaped. Everything is deterministic: times are
 * relative to NOW, IDs derive from counters.
 */
import { createHash } from 'node:crypto';
import type {
  ImmutabilityEvidence,
  JobTargets,
  PolicyTargets,
  ReportEvidence,
  ReportTargets,
  RepositoryEvidence,
  RestorePointEvidence,
  RunEvidence,
} from '../../../src/report/index.js';

export const MIN = 60_000;
export const H = 60 * MIN;
export const D = 24 * H;
export const NOW = Date.parse('2024-06-01T12:00:00Z');

let counter = 0;
/** A deterministic 64-hex ID. */
export function hexId(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}
function runId(): string {
  counter++;
  return hexId(`run-${counter}`).slice(0, 16);
}

export function repo(name: string, over: Partial<RepositoryEvidence> = {}): RepositoryEvidence {
  return {
    name,
    offsite: false,
    opened: true,
    encryption: { repositoryId: hexId(`repo-${name}`), keyId: hexId(`key-${name}`), passwordSource: 'env' },
    journalSince: NOW - 31 * D,
    journalProblems: [],
    immutability: {},
    ...over,
  };
}

export function point(
  job: string,
  repository: string,
  startedAt: number,
  over: Partial<RestorePointEvidence> = {},
): RestorePointEvidence {
  return {
    id: hexId(`snap-${job}-${repository}-${startedAt}`),
    job,
    repository,
    startedAt,
    endedAt: startedAt + 2 * MIN,
    partial: false,
    pointKey: `${job}@${startedAt}`,
    ...over,
  };
}

export function run(
  kind: string,
  job: string | undefined,
  repository: string,
  startedAt: number,
  over: Partial<RunEvidence> = {},
): RunEvidence {
  return {
    id: runId(),
    kind,
    ...(job === undefined ? {} : { job }),
    repository,
    startedAt,
    endedAt: startedAt + 2 * MIN,
    outcome: 'success',
    snapshotIds: [],
    details: {},
    toolVersion: '0.1.0',
    ...over,
  };
}

/** A backup run and the snapshot it made (the snapshot only when it succeeded). */
export function backup(
  job: string,
  repository: string,
  at: number,
  outcome: RunEvidence['outcome'] = 'success',
): { run: RunEvidence; point?: RestorePointEvidence } {
  if (outcome !== 'success') {
    return {
      run: run('backup', job, repository, at, {
        outcome,
        error: { code: 'E_SOURCE', message: 'source unreadable' },
      }),
    };
  }
  const p = point(job, repository, at);
  return {
    run: run('backup', job, repository, at, { snapshotIds: [p.id], details: { repository } }),
    point: p,
  };
}

/** A drill record as docs/drills.md describes it. */
export function drill(
  job: string,
  repository: string,
  at: number,
  opts: {
    verdict: 'pass' | 'fail' | 'breach';
    measuredMs: number;
    rtoMs: number | null;
    snapshotId?: string;
    failedStep?: { name: string; message: string };
  },
): RunEvidence {
  const rtoStatus = opts.rtoMs === null ? 'skip' : opts.measuredMs <= opts.rtoMs ? 'pass' : 'fail';
  const steps = [
    { name: 'select snapshot', status: 'pass', durationMs: 5 },
    { name: 'restore', status: 'pass', durationMs: opts.measuredMs },
    { name: 'content', status: 'pass', durationMs: 900 },
    ...(opts.failedStep ? [{ ...opts.failedStep, status: 'fail', durationMs: 40 }] : []),
    { name: 'rto', status: rtoStatus, message: `restore took ${opts.measuredMs} ms`, durationMs: 0 },
  ];
  return run('drill', job, repository, at, {
    endedAt: at + opts.measuredMs + 2 * MIN,
    outcome: opts.verdict === 'pass' ? 'success' : 'failure',
    snapshotIds: opts.snapshotId ? [opts.snapshotId] : [],
    details: {
      verdict: opts.verdict,
      repository,
      selection: 'latest',
      scratch: 'directory',
      phases: { provisionMs: 10, restoreMs: opts.measuredMs, verifyMs: 900, teardownMs: 20 },
      measuredRtoMs: opts.measuredMs,
      rtoMs: opts.rtoMs,
      steps,
    },
    ...(opts.verdict === 'pass'
      ? {}
      : { error: { code: 'E_POLICY_BREACH', message: opts.failedStep?.message ?? 'restore too slow' } }),
  });
}

export function check(
  repository: string,
  at: number,
  readData: string,
  over: Partial<RunEvidence> = {},
): RunEvidence {
  return run('check', undefined, repository, at, {
    details: { repository, readData, problems: [] },
    stats: { problems: 0, packsRead: readData === 'no pack data' ? 0 : 3 },
    ...over,
  });
}

export const STANDARD: PolicyTargets = {
  name: 'standard',
  rpoMs: 6 * H,
  rtoMs: 30 * MIN,
  retention: { daily: 7 },
  drill: { everyMs: 7 * D, snapshot: 'latest', windowMs: 30 * D },
  copies: 2,
  offsite: 1,
  immutableForMs: 14 * D,
  check: { everyMs: 7 * D, readData: 0.1 },
};

export const CRITICAL: PolicyTargets = {
  name: 'critical',
  rpoMs: H,
  rtoMs: 10 * MIN,
  drill: { everyMs: D, snapshot: 'random', windowMs: 7 * D },
  copies: 1,
  offsite: 0,
  check: { everyMs: 7 * D, readData: 0 },
};

export const BASIC: PolicyTargets = { name: 'basic', rpoMs: D, copies: 1, offsite: 0 };

export function targets(jobs: JobTargets[], over: Partial<ReportTargets> = {}): ReportTargets {
  return {
    jobs,
    configuredJobs: jobs.map((j) => j.job),
    windowMs: 30 * D,
    timeZone: 'UTC',
    generator: { name: 'lifeboat', version: '0.1.0' },
    ...over,
  };
}

export function jobTarget(
  job: string,
  kind: string,
  policy: PolicyTargets | undefined,
  repositories: string[],
  dependsOn: string[] = [],
): JobTargets {
  return {
    job,
    kind,
    policyName: policy?.name ?? 'missing',
    ...(policy ? { policy } : {}),
    repositories,
    dependsOn,
  };
}

/** The full fixture: web (files), db (postgres), archive (image, unreadable repository). */
export function fixture(): { evidence: ReportEvidence; targets: ReportTargets } {
  counter = 0;
  const runs: RunEvidence[] = [];
  const points: RestorePointEvidence[] = [];
  const add = (b: { run: RunEvidence; point?: RestorePointEvidence }) => {
    runs.push(b.run);
    if (b.point) points.push(b.point);
  };

  // web: every 4h for 12 days into local, copied to offsite; one failure, one late backup (5h gap).
  for (let t = NOW - 12 * D; t <= NOW - 2 * H; t += 4 * H) {
    const late = t === NOW - 6 * D ? H : 0;
    if (t === NOW - 4 * D) {
      add(backup('web', 'local', t, 'failure'));
      add(backup('web', 'local', t + 10 * MIN));
      continue;
    }
    const b = backup('web', 'local', t + late);
    add(b);
    points.push({ ...b.point!, id: hexId(`copy-${b.point!.id}`), repository: 'offsite' });
  }
  const webNewest = points.filter((p) => p.job === 'web' && p.repository === 'local').at(-1)!;
  runs.push(
    drill('web', 'local', NOW - 9 * D, { verdict: 'pass', measuredMs: 5 * MIN, rtoMs: 30 * MIN }),
    drill('web', 'local', NOW - 2 * D, {
      verdict: 'pass',
      measuredMs: 4 * MIN,
      rtoMs: 30 * MIN,
      snapshotId: webNewest.id,
    }),
    check('local', NOW - 3 * D, 'a random 10% of packs'),
    check('offsite', NOW - 6 * D, 'a random 10% of packs'),
  );

  // db: hourly for 3 days; daily random drills, one verification failure, one too slow.
  for (let t = NOW - 3 * D + 10 * MIN; t <= NOW - 50 * MIN; t += H) add(backup('db', 'local', t));
  const dbPoints = points.filter((p) => p.job === 'db');
  const pick = (i: number) => dbPoints[i]!.id;
  runs.push(
    drill('db', 'local', NOW - 3 * D + H, {
      verdict: 'pass',
      measuredMs: 6 * MIN,
      rtoMs: 10 * MIN,
      snapshotId: hexId('forgotten'),
    }),
    drill('db', 'local', NOW - 3 * D + 2 * H, {
      verdict: 'pass',
      measuredMs: 7 * MIN,
      rtoMs: 10 * MIN,
      snapshotId: pick(3),
    }),
    drill('db', 'local', NOW - 2 * D, {
      verdict: 'fail',
      measuredMs: 6.5 * MIN,
      rtoMs: 10 * MIN,
      snapshotId: pick(20),
      failedStep: {
        name: 'assertion 1',
        message: 'select count(*) > 0 from orders returned false <script>alert("x")</script> | ]]> & done',
      },
    }),
    drill('db', 'local', NOW - 20 * H, {
      verdict: 'pass',
      measuredMs: 8 * MIN,
      rtoMs: 10 * MIN,
      snapshotId: pick(40),
    }),
    drill('db', 'local', NOW - 6 * H, {
      verdict: 'breach',
      measuredMs: 14 * MIN,
      rtoMs: 10 * MIN,
      snapshotId: pick(60),
    }),
  );

  // A job no longer configured, with a name only a journal could hold.
  const retired = backup('old<job>&"x"', 'local', NOW - 20 * D);
  add(retired);

  const immutability = (state: ImmutabilityEvidence): Record<string, ImmutabilityEvidence> => ({
    web: state,
  });
  const repositories = [
    repo('local', {
      immutability: immutability({
        state: 'unavailable',
        reason:
          'immutability unavailable for repository local: file:// storage cannot lock objects; policy standard asks for immutableFor 14d',
      }),
      journalProblems: [
        {
          key: 'journal/20240530T000000000Z-00000000000000aa',
          reason: 'it has schema version 2, newer than this lifeboat reads (1)',
        },
      ],
    }),
    repo('offsite', {
      offsite: true,
      encryption: {
        repositoryId: hexId('repo-offsite'),
        keyId: hexId('key-offsite'),
        passwordSource: 'literal',
      },
      immutability: immutability({
        state: 'ok',
        reason: 'newest restore point locked until 2024-06-15T10:02:00.000Z',
        lockedUntil: Date.parse('2024-06-15T10:02:00.000Z'),
        snapshotId: points.filter((p) => p.repository === 'offsite').at(-1)!.id,
      }),
    }),
    repo('vault', {
      opened: false,
      error: {
        code: 'E_REPO_MISSING',
        message: 'no repository at file:///mnt/vault/lifeboat',
        hint: 'Check the URL, or create it with `lifeboat repo init vault`.',
      },
    }),
  ];
  delete repositories[2]!.encryption;
  const jobs = [
    jobTarget('web', 'files', STANDARD, ['local', 'offsite'], ['db']),
    jobTarget('db', 'postgres', CRITICAL, ['local']),
    jobTarget('archive', 'image', BASIC, ['vault']),
  ];
  return { evidence: { repositories, restorePoints: points, runs }, targets: targets(jobs) };
}
