/**
 * `lifeboat report`: gather the evidence of the selected jobs from every repository they use —
 * snapshot lists and run journals, so any machine with the passwords can produce the same
 * report — and judge it (src/report/buildReport.ts, pure). Repositories are opened once each
 * through status.ts's gatherRepositoryFacts; one that cannot be opened makes its controls
 * unknown and sets the exit code. Also here: the exit code for --fail-on, and the evidence
 * bundle (report, raw records, SHA-256 manifest).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobConfig, LifeboatConfig, PolicyConfig } from '../config/schema.js';
import { ExitCode, UsageError, worseExitCode } from '../errors.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import type { RetentionRules } from '../policy/retention.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { JournalError, JournalRecord } from '../repository/journal.js';
import {
  buildReport,
  renderHtml,
  renderJson,
  type EncryptionEvidence,
  type ImmutabilityEvidence,
  type JobTargets,
  type PolicyTargets,
  type Report,
  type ReportEvidence,
  type ReportTargets,
  type RepositoryEvidence,
  type RestorePointEvidence,
  type RunEvidence,
} from '../report/index.js';
import { VERSION } from '../version.js';
import { selectJobs } from './backup.js';
import type { Deps } from './deps.js';
import { immutabilityState } from './immutability.js';
import { jobRepositoryNames } from './repositories.js';
import { describeFailure } from './runRecord.js';
import { exitCodeOfFailure, gatherRepositoryFacts, type RepositoryFacts } from './status.js';

const DAY = 86_400_000;

export const FAIL_ON = ['breach', 'warning', 'never'] as const;
export type FailOn = (typeof FAIL_ON)[number];

export interface ReportOptions {
  /** Jobs to judge; empty: all. */
  jobs?: string[];
  /** The evidence window in ms; default defaults.reportWindow. */
  windowMs?: number;
}

/** Everything gathered: the evidence as the pure model reads it, and the raw records behind it. */
export interface GatheredEvidence {
  evidence: ReportEvidence;
  /** Journal records of the selected jobs and checks of their repositories, with their repository. */
  records: Array<{ repository: string; record: JournalRecord }>;
  /** Snapshots of the selected jobs, with their repository. */
  snapshots: Array<{ repository: string; snapshot: SnapshotEntry }>;
  /** Repositories that could not be opened, with why. */
  failures: Array<{ repository: string; error: JournalError }>;
}

export interface ReportRun extends GatheredEvidence {
  report: Report;
}

/** A policy's targets as the report model reads them. */
export function policyTargets(policy: PolicyConfig): PolicyTargets {
  const r = policy.retention;
  const retention: RetentionRules | undefined = r
    ? Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))
    : undefined;
  return {
    name: policy.name,
    rpoMs: policy.rpo,
    ...(policy.rto === undefined ? {} : { rtoMs: policy.rto }),
    ...(retention ? { retention } : {}),
    ...(policy.drill
      ? {
          drill: {
            everyMs: policy.drill.every,
            snapshot: policy.drill.snapshot,
            windowMs: policy.drill.window,
          },
        }
      : {}),
    copies: policy.copies,
    offsite: policy.offsite,
    ...(policy.immutableFor === undefined ? {} : { immutableForMs: policy.immutableFor }),
    ...(policy.check ? { check: { everyMs: policy.check.every, readData: policy.check.readData } } : {}),
  };
}

/** A configured job's targets (its policy may be missing from a hand-made config: then undefined). */
export function jobTargets(config: LifeboatConfig, job: JobConfig): JobTargets {
  const policy = config.policies[job.policy];
  return {
    job: job.name,
    kind: job.kind,
    policyName: job.policy,
    ...(policy ? { policy: policyTargets(policy) } : {}),
    repositories: jobRepositoryNames(config, job),
    dependsOn: [...job.dependsOn],
  };
}

/** The report's targets for the selected jobs. */
export function reportTargets(config: LifeboatConfig, jobs: JobConfig[], windowMs: number): ReportTargets {
  return {
    jobs: jobs.map((j) => jobTargets(config, j)),
    configuredJobs: Object.keys(config.jobs),
    windowMs,
    timeZone: config.defaults.timezone,
    generator: { name: 'lifeboat', version: VERSION },
  };
}

/**
 * How far back the journals are read: the window, and far enough to find the last successful
 * drill and check (twice their cadence) and every drill of a random-drill window; plus a day.
 */
export function journalSince(
  config: LifeboatConfig,
  jobs: JobConfig[],
  windowMs: number,
  now: number,
): number {
  let span = windowMs;
  for (const job of jobs) {
    const policy = config.policies[job.policy];
    if (policy?.drill) span = Math.max(span, 2 * policy.drill.every, policy.drill.window);
    if (policy?.check) span = Math.max(span, 2 * policy.check.every);
  }
  return now - span - DAY;
}

function passwordSource(
  config: LifeboatConfig,
  name: string,
  deps: Deps,
): EncryptionEvidence['passwordSource'] {
  const ref = config.repositories[name]?.password;
  if (ref) return ref.kind;
  return deps.env.LIFEBOAT_PASSWORD ? 'environment' : 'prompt';
}

function runEvidence(repository: string, r: JournalRecord): RunEvidence | undefined {
  const startedAt = Date.parse(r.startedAt);
  const endedAt = Date.parse(r.endedAt);
  if (!Number.isFinite(startedAt)) return undefined;
  const details = typeof r.details === 'object' && r.details !== null ? r.details : {};
  return {
    id: r.id,
    kind: r.kind,
    ...(r.job === undefined ? {} : { job: r.job }),
    repository,
    startedAt,
    endedAt: Number.isFinite(endedAt) ? Math.max(endedAt, startedAt) : startedAt,
    outcome: r.outcome,
    snapshotIds: Array.isArray(r.snapshotIds) ? r.snapshotIds.filter((s) => typeof s === 'string') : [],
    ...(r.error ? { error: { code: r.error.code, message: r.error.message } } : {}),
    ...(r.stats ? { stats: r.stats } : {}),
    details,
    toolVersion: r.toolVersion,
  };
}

function pointEvidence(repository: string, s: SnapshotEntry): RestorePointEvidence | undefined {
  const startedAt = Date.parse(s.startedAt);
  const endedAt = Date.parse(s.endedAt);
  if (!Number.isFinite(startedAt) || !Number.isFinite(endedAt)) return undefined;
  return {
    id: s.id,
    job: s.job,
    repository,
    startedAt,
    endedAt,
    partial: s.partial,
    // A copy keeps job, host, start and end (src/repository/copy.ts): together they name the backup.
    pointKey: JSON.stringify([s.job, s.host, s.startedAt, s.endedAt]),
  };
}

/**
 * Open every repository the jobs use (once each) and collect snapshots, journal records since
 * `sinceMs`, the key slot it opened with, and — for jobs whose policy sets immutableFor — the
 * object-lock state of the newest restore point. Never throws for a repository: it is recorded.
 */
export async function gatherEvidence(
  config: LifeboatConfig,
  jobs: JobConfig[],
  sinceMs: number,
  deps: Deps,
): Promise<GatheredEvidence> {
  const now = deps.clock.now();
  const names = [...new Set(jobs.flatMap((j) => jobRepositoryNames(config, j)))];
  const extra = new Map<
    string,
    { encryption: EncryptionEvidence; immutability: Record<string, ImmutabilityEvidence> }
  >();
  const facts: RepositoryFacts[] = await gatherRepositoryFacts(
    config,
    names,
    sinceMs,
    {
      sizes: false,
      inspect: async (repo, f) => {
        const immutability: Record<string, ImmutabilityEvidence> = {};
        for (const job of jobs) {
          const policy = config.policies[job.policy];
          if (policy?.immutableFor === undefined || !jobRepositoryNames(config, job).includes(f.repository))
            continue;
          // A failure here must not make the whole repository look unreadable.
          immutability[job.name] = await immutabilityState(
            repo,
            f.repository,
            job.name,
            policy,
            f.snapshots,
            now,
          ).then(
            (state): ImmutabilityEvidence => ({
              state: state.state,
              reason: state.reason,
              ...(state.lockedUntil ? { lockedUntil: Date.parse(state.lockedUntil) } : {}),
              ...(state.snapshotId ? { snapshotId: state.snapshotId } : {}),
            }),
            (err: unknown): ImmutabilityEvidence => ({
              state: 'unknown',
              reason: `could not read the object locks: ${describeFailure(err).message}`,
            }),
          );
        }
        extra.set(f.repository, {
          encryption: {
            repositoryId: repo.id,
            keyId: repo.keyId,
            passwordSource: passwordSource(config, f.repository, deps),
          },
          immutability,
        });
      },
    },
    deps,
  );
  const selected = new Set(jobs.map((j) => j.name));
  const evidence: ReportEvidence = { repositories: [], restorePoints: [], runs: [] };
  const records: GatheredEvidence['records'] = [];
  const snapshots: GatheredEvidence['snapshots'] = [];
  const failures: GatheredEvidence['failures'] = [];
  for (const f of facts) {
    const more = extra.get(f.repository);
    const repository: RepositoryEvidence = {
      name: f.repository,
      offsite: f.offsite,
      opened: !f.error,
      ...(f.error ? { error: { ...f.error } } : {}),
      ...(more ? { encryption: more.encryption } : {}),
      journalSince: sinceMs,
      journalProblems: [...f.journalProblems],
      immutability: more?.immutability ?? {},
    };
    if (f.error) failures.push({ repository: f.repository, error: f.error });
    for (const s of f.snapshots) {
      const p = pointEvidence(f.repository, s);
      if (!p) {
        repository.journalProblems.push({ key: `snapshot ${s.id}`, reason: 'its times are not valid' });
        continue;
      }
      evidence.restorePoints.push(p);
      if (selected.has(s.job)) snapshots.push({ repository: f.repository, snapshot: s });
    }
    for (const r of f.records) {
      const run = runEvidence(f.repository, r);
      if (!run) {
        repository.journalProblems.push({
          key: `journal record ${r.id}`,
          reason: 'its start time is not valid',
        });
        continue;
      }
      evidence.runs.push(run);
      if (r.kind === 'check' || (r.job !== undefined && selected.has(r.job))) {
        records.push({ repository: f.repository, record: r });
      }
    }
    evidence.repositories.push(repository);
  }
  return { evidence, records, snapshots, failures };
}

/** Gather the evidence of the selected jobs and build the report. */
export async function collectReport(
  config: LifeboatConfig,
  opts: ReportOptions,
  deps: Deps,
): Promise<ReportRun> {
  const now = deps.clock.now();
  const windowMs = opts.windowMs ?? config.defaults.reportWindow;
  if (!(windowMs > 0))
    throw new UsageError('the report window must be longer than 0', { hint: 'e.g. --since 30d' });
  const jobs = selectJobs(config, opts.jobs ?? []).map((name) => config.jobs[name]!);
  const gathered = await gatherEvidence(config, jobs, journalSince(config, jobs, windowMs, now), deps);
  return { ...gathered, report: buildReport(gathered.evidence, reportTargets(config, jobs, windowMs), now) };
}

/**
 * The exit code of `report --fail-on`: 4 when a control fails (or warns, with `warning`); a
 * repository that could not be opened gives its own code (10, 12 …), which wins; `never` is 0.
 */
export function reportExitCode(
  report: Report,
  failOn: FailOn,
  failures: GatheredEvidence['failures'],
): number {
  if (failOn === 'never') return ExitCode.ok;
  let code: number = ExitCode.ok;
  for (const f of failures) code = worseExitCode(code, exitCodeOfFailure(f.error));
  const breach = report.summary.fail > 0 || (failOn === 'warning' && report.summary.warning > 0);
  if (breach) code = worseExitCode(code, ExitCode.policyBreach);
  return code;
}

/** The files of an evidence bundle, in manifest order. */
export const BUNDLE_FILES = ['report.json', 'report.html', 'journal.jsonl', 'snapshots.jsonl'] as const;

/** A SHA-256 manifest in the format `sha256sum -c` checks. */
export function sha256Manifest(files: Array<{ name: string; data: string }>): string {
  return files.map((f) => `${createHash('sha256').update(f.data).digest('hex')}  ${f.name}\n`).join('');
}

/**
 * Write the evidence bundle into `dir` (created; it must be empty): the report as JSON and
 * HTML, the raw journal records and snapshots it used (JSON lines, one per record, with the
 * repository it was read from) and SHA256SUMS over them.
 */
export async function writeEvidenceBundle(
  dir: string,
  run: ReportRun,
  opts: { timeZone: string },
): Promise<{ dir: string; files: string[] }> {
  await mkdir(dir, { recursive: true });
  const existing = await readdir(dir);
  if (existing.length > 0) {
    throw new UsageError(`evidence directory ${dir} is not empty`, {
      hint: 'Give a new or empty directory, so the bundle holds only what this report used.',
    });
  }
  const lines = <T>(items: T[]) => items.map((i) => JSON.stringify(i) + '\n').join('');
  const files = [
    { name: 'report.json', data: renderJson(run.report) },
    { name: 'report.html', data: renderHtml(run.report, { timeZone: opts.timeZone }) },
    { name: 'journal.jsonl', data: lines(run.records) },
    { name: 'snapshots.jsonl', data: lines(run.snapshots) },
  ];
  for (const f of files) await writeFileAtomic(join(dir, f.name), f.data);
  await writeFileAtomic(join(dir, 'SHA256SUMS'), sha256Manifest(files));
  return { dir, files: [...files.map((f) => f.name), 'SHA256SUMS'] };
}
