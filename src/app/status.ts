/**
 * `lifeboat status`: per job, how old the newest good restore point is in each of its
 * repositories against the RPO, when it runs next, the last drill against the RTO, and
 * whether enough copies exist. A repository that cannot be opened is shown as unknown — never
 * as ok. The judging is pure (policy/rpo.ts, policy/rto.ts); this file gathers the facts.
 */
import type { JobConfig, LifeboatConfig, PolicyConfig } from '../config/schema.js';
import { ExitCode, worseExitCode } from '../errors.js';
import { formatDuration } from '../policy/duration.js';
import {
  evaluateCopies,
  evaluateRpo,
  worstState,
  type CopiesResult,
  type TargetState,
} from '../policy/rpo.js';
import {
  evaluateRto,
  measuredRestoreMs,
  rtoWeight,
  type DrillEvidence,
  type RtoState,
} from '../policy/rto.js';
import { nextTick, scheduleLabel } from '../policy/ticks.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { JournalError, JournalRecord } from '../repository/journal.js';
import type { Repository } from '../repository/repository.js';
import type { Deps } from './deps.js';
import { repositoryImmutability, type ImmutabilityStatus } from './immutability.js';
import { jobRepositoryNames, openConfiguredRepository, repositoryConfig } from './repositories.js';
import { describeFailure, exitCodeOfFailure, isoTime } from './runRecord.js';

/** Re-exported for callers that judge recorded failures next to status. */
export { exitCodeOfFailure };
import { selectJobs } from './backup.js';

const DAY = 86_400_000;

export interface StatusOptions {
  /** Jobs to show; empty means all. */
  jobs?: string[];
  /** Also measure each repository's stored bytes (for metrics). */
  sizes?: boolean;
}

/** What status learned about one repository. */
export interface RepositoryFacts {
  repository: string;
  offsite: boolean;
  /** Set when the repository could not be opened or read. */
  error?: JournalError;
  snapshots: SnapshotEntry[];
  /** Drill records from the evidence window, oldest first. */
  drills: JournalRecord[];
  /** Every journal record read (all kinds), oldest first. */
  records: JournalRecord[];
  /** Journal records that could not be used. */
  journalProblems: Array<{ key: string; reason: string }>;
  storedBytes?: number;
  /** Jobs whose policy asks for immutability: is their newest restore point here locked? (immutability.ts) */
  immutability?: ImmutabilityStatus[];
}

export interface JobRepositoryStatus {
  repository: string;
  offsite: boolean;
  state: TargetState;
  reason: string;
  /** Good (complete) restore points of the job in this repository. */
  restorePoints: number;
  newestSnapshotId?: string;
  newestStartedAt?: string;
  newestEndedAt?: string;
  ageMs?: number;
  /** When the policy asks for immutability: unavailable or not-locked is a breach. */
  immutability?: ImmutabilityStatus;
}

export interface DrillStatus {
  state: RtoState;
  reason: string;
  rtoMs?: number;
  measuredMs?: number;
  lastRunId?: string;
  lastStartedAt?: string;
  lastOutcome?: string;
}

export interface JobStatus {
  job: string;
  kind: string;
  policy: string;
  /** The worst of the RPO per repository, the drill (no drill counts as at risk) and copies. */
  state: TargetState;
  rpoMs?: number;
  repositories: JobRepositoryStatus[];
  schedule?: string;
  nextRunAt?: string;
  drill: DrillStatus;
  copies?: CopiesResult;
}

export interface RepositoryStatus {
  repository: string;
  offsite: boolean;
  ok: boolean;
  error?: JournalError;
  snapshots: number;
  storedBytes?: number;
  journalProblems: number;
}

export interface StatusResult {
  generatedAt: string;
  /** False when any job is breached. */
  ok: boolean;
  breached: string[];
  jobs: JobStatus[];
  repositories: RepositoryStatus[];
  warnings: string[];
  /** 4 when anything is breached; a repository error's code when one could not be opened. */
  exitCode: number;
}

/** How far back drill records are read: the report window, and two drill intervals. */
function drillWindow(config: LifeboatConfig, jobs: JobConfig[]): number {
  let window = config.defaults.reportWindow;
  for (const job of jobs) {
    const every = config.policies[job.policy]?.drill?.every;
    if (every !== undefined) window = Math.max(window, 2 * every);
  }
  return Math.max(window, DAY);
}

/** Open each repository once and read what status needs; failures are recorded, not thrown. */
export async function gatherRepositoryFacts(
  config: LifeboatConfig,
  names: string[],
  sinceMs: number,
  opts: {
    sizes: boolean;
    /** Also look at the open repository (reports: key slot, object locks); must not throw. */
    inspect?: (repo: Repository, facts: RepositoryFacts) => Promise<void>;
  },
  deps: Deps,
): Promise<RepositoryFacts[]> {
  const out: RepositoryFacts[] = [];
  for (const name of names) {
    const offsite = Boolean(config.repositories[name]?.offsite);
    try {
      repositoryConfig(config, name);
      const repo = await openConfiguredRepository(config, name, deps);
      try {
        const snapshots = await repo.listSnapshots();
        const journal = await repo.listJournal({ since: sinceMs });
        const facts: RepositoryFacts = {
          repository: name,
          offsite,
          snapshots,
          drills: journal.records.filter((r) => r.kind === 'drill'),
          records: journal.records,
          journalProblems: journal.problems,
        };
        if (opts.sizes) facts.storedBytes = (await repo.stats()).storedBytes;
        if (opts.inspect) await opts.inspect(repo, facts);
        out.push(facts);
      } finally {
        await repo.close();
      }
    } catch (err) {
      out.push({
        repository: name,
        offsite,
        error: describeFailure(err),
        snapshots: [],
        drills: [],
        records: [],
        journalProblems: [],
      });
    }
  }
  return out;
}

function drillEvidence(r: JournalRecord): DrillEvidence {
  const restoreMs = measuredRestoreMs(r);
  return {
    runId: r.id,
    startedAt: Date.parse(r.startedAt),
    endedAt: Date.parse(r.endedAt),
    outcome: r.outcome,
    ...(restoreMs === undefined ? {} : { restoreMs }),
  };
}

/** Judge one job from the repository facts. Pure apart from reading the facts. */
export function judgeJob(
  config: LifeboatConfig,
  job: JobConfig,
  facts: Map<string, RepositoryFacts>,
  now: number,
  windowMs: number,
): JobStatus {
  const policy: PolicyConfig | undefined = config.policies[job.policy];
  const names = jobRepositoryNames(config, job);
  const repositories: JobRepositoryStatus[] = names.map((name) => {
    const f = facts.get(name);
    const offsite = Boolean(config.repositories[name]?.offsite);
    const good = (f?.snapshots ?? []).filter((s) => s.job === job.name && !s.partial);
    const newest = good.reduce<SnapshotEntry | undefined>(
      (best, s) => (!best || Date.parse(s.startedAt) > Date.parse(best.startedAt) ? s : best),
      undefined,
    );
    const immutability = f?.immutability?.find((i) => i.job === job.name);
    const base = {
      repository: name,
      offsite,
      restorePoints: good.length,
      ...(immutability ? { immutability } : {}),
      ...(newest
        ? { newestSnapshotId: newest.id, newestStartedAt: newest.startedAt, newestEndedAt: newest.endedAt }
        : {}),
    };
    if (!policy) {
      return {
        ...base,
        state: 'unknown' as const,
        reason: `the job names no policy${job.policy ? ` (unknown policy ${job.policy})` : ''}`,
      };
    }
    const rpo = evaluateRpo({
      now,
      rpoMs: policy.rpo,
      newestAt: newest ? Date.parse(newest.startedAt) : undefined,
      ...(f?.error ? { error: `repository ${name} could not be opened: ${f.error.message}` } : {}),
      ...(f ? {} : { error: `repository ${name} was not read` }),
    });
    return {
      ...base,
      state: rpo.state,
      reason: rpo.reason,
      ...(rpo.ageMs === undefined ? {} : { ageMs: rpo.ageMs }),
    };
  });

  const drills = names
    .flatMap((name) => facts.get(name)?.drills ?? [])
    .filter((r) => r.job === job.name)
    .filter((r, i, all) => all.findIndex((x) => x.id === r.id) === i)
    .sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const last = drills[drills.length - 1];
  const lastSuccess = [...drills].reverse().find((r) => r.outcome === 'success');
  const rto = evaluateRto({
    now,
    ...(policy?.rto === undefined ? {} : { rtoMs: policy.rto }),
    ...(policy?.drill ? { drillEveryMs: policy.drill.every } : {}),
    ...(last ? { last: drillEvidence(last) } : {}),
    ...(lastSuccess ? { lastSuccess: drillEvidence(lastSuccess) } : {}),
  });
  const drill: DrillStatus = {
    state: rto.state,
    // The journal is read for a window; say so rather than claim there never was a drill.
    reason: rto.state === 'no-drill' ? `no drill in the last ${formatDuration(windowMs)}` : rto.reason,
    ...(policy?.rto === undefined ? {} : { rtoMs: policy.rto }),
    ...(rto.measuredMs === undefined ? {} : { measuredMs: rto.measuredMs }),
    ...(last ? { lastRunId: last.id, lastStartedAt: last.startedAt, lastOutcome: last.outcome } : {}),
  };

  const copies = policy
    ? evaluateCopies(
        repositories.map((r) => ({ repository: r.repository, offsite: r.offsite, state: r.state })),
        policy.copies,
        policy.offsite,
      )
    : undefined;

  const next = job.schedule ? nextTick(job.schedule, now) : undefined;
  return {
    job: job.name,
    kind: job.kind,
    policy: job.policy,
    state: worstState([
      ...repositories.map((r) => r.state),
      ...repositories.map((r) => r.immutability?.targetState ?? 'ok'),
      rtoWeight(rto.state),
      copies?.state ?? 'ok',
    ]),
    ...(policy ? { rpoMs: policy.rpo } : {}),
    repositories,
    ...(job.schedule ? { schedule: scheduleLabel(job.schedule) } : {}),
    ...(next === undefined ? {} : { nextRunAt: isoTime(next) }),
    drill,
    ...(copies ? { copies } : {}),
  };
}

/** Gather and judge the status of the selected jobs. */
export async function collectStatus(
  config: LifeboatConfig,
  opts: StatusOptions,
  deps: Deps,
): Promise<StatusResult> {
  const now = deps.clock.now();
  const jobs = selectJobs(config, opts.jobs ?? []).map((name) => config.jobs[name]!);
  const names = [...new Set(jobs.flatMap((j) => jobRepositoryNames(config, j)))];
  const windowMs = drillWindow(config, jobs);
  const facts = await gatherRepositoryFacts(
    config,
    names,
    now - windowMs,
    {
      sizes: Boolean(opts.sizes),
      inspect: async (repo, f) => {
        f.immutability = await repositoryImmutability(config, f.repository, repo, f.snapshots, now);
      },
    },
    deps,
  );
  const byName = new Map(facts.map((f) => [f.repository, f]));
  const judged = jobs.map((job) => judgeJob(config, job, byName, now, windowMs));

  const warnings: string[] = [];
  let exitCode: number = ExitCode.ok;
  for (const f of facts) {
    if (f.error) exitCode = worseExitCode(exitCode, exitCodeOfFailure(f.error));
    for (const p of f.journalProblems) {
      warnings.push(`repository ${f.repository}: journal record ${p.key} skipped: ${p.reason}`);
    }
  }
  const breached = judged.filter((j) => j.state === 'breached').map((j) => j.job);
  if (breached.length) exitCode = worseExitCode(exitCode, ExitCode.policyBreach);
  return {
    generatedAt: isoTime(now),
    ok: breached.length === 0,
    breached,
    jobs: judged,
    repositories: facts.map((f) => ({
      repository: f.repository,
      offsite: f.offsite,
      ok: !f.error,
      ...(f.error ? { error: f.error } : {}),
      snapshots: f.snapshots.length,
      ...(f.storedBytes === undefined ? {} : { storedBytes: f.storedBytes }),
      journalProblems: f.journalProblems.length,
    })),
    warnings,
    exitCode,
  };
}
