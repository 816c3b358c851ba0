/**
 * `lifeboat run [--due] [--job J…] [--dry-run]`: the cron entry point. Plans every activity
 * (policy/due.ts), runs the due ones — or, without --due, every activity of the named jobs —
 * phase by phase (backups, copies, drills, retention, checks) with `defaults.concurrency`
 * at once, and reports each outcome. One run per host at a time (hostRunLock.ts); runs killed
 * before they could record their end are recorded as interrupted at the next start
 * (interruptedRuns.ts). A failing activity never stops the others; notifications never fail
 * the run.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { LifeboatConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { ExitCode, worseExitCode } from '../errors.js';
import { createLogTail } from '../notify/logTail.js';
import { eventOf, type NotificationEvent } from '../notify/events.js';
import { Notifier, type NotifierSettings } from '../notify/notifier.js';
import type { MetricsModel } from '../notify/prometheus.js';
import { addRunCounts, runCountSamples } from '../notify/runCounters.js';
import {
  ACTIVITY_KINDS,
  journalHorizon,
  planActivities,
  type ActivityKind,
  type JournalView,
  type PlanJob,
  type PlannedActivity,
  type PlanRepository,
  type RunFacts,
} from '../policy/due.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { registerCleanup } from '../platform/cleanup.js';
import { monotonicMs } from '../platform/clock.js';
import { registerSecret } from '../platform/redact.js';
import { describeReadData, summarizeCheck, type ReadDataSelection } from '../repository/check.js';
import type { JournalError, JournalInput, JournalKind, JournalRecord } from '../repository/journal.js';
import { VERSION } from '../version.js';
import { backupJobs, selectJobs } from './backup.js';
import { runDrills } from './drill.js';
import { copyActivity } from './copy.js';
import { checkRepositories } from './check.js';
import { forgetSnapshots } from './forget.js';
import type { Deps, ProgressListener } from './deps.js';
import { acquireHostRunLock, type HostRunLockInfo } from './hostRunLock.js';
import {
  findStaleMarkers,
  recordInterruptedRuns,
  touchRunningMarkers,
  writeRunningMarker,
  type KnownRun,
} from './interruptedRuns.js';
import { appendLocalRuns, readLocalRuns, type LocalRun } from './localRunLog.js';
import { jobRepositoryNames, openConfiguredRepository } from './repositories.js';
import { describeFailure, isoTime } from './runRecord.js';
import { stateDir } from './stateDir.js';
import { collectStatus, exitCodeOfFailure, type StatusResult } from './status.js';

export interface RunOptions {
  /** Only what is due now; otherwise every activity of the selected jobs. */
  due: boolean;
  /** Jobs to consider; empty means all. */
  jobs: string[];
  /** Plan and explain, change nothing. */
  dryRun: boolean;
  onProgress?: ProgressListener;
  /** Told when an activity starts and ends (progress display). */
  onActivity?: (event: { phase: 'start' | 'end'; activity: PlannedActivity; run?: ActivityRun }) => void;
}

export type ActivityOutcome = 'success' | 'partial' | 'failure' | 'interrupted' | 'skipped';

/** What an executor reports about one activity. */
export interface ActivityResult {
  outcome: Exclude<ActivityOutcome, 'skipped'>;
  /** Exit code this outcome maps to (0 for success). */
  exitCode: number;
  /** One line for people. */
  summary: string;
  runIds: string[];
  snapshotIds: string[];
  stats?: Record<string, number>;
  error?: JournalError;
  warnings?: string[];
}

export interface ExecutorContext {
  config: LifeboatConfig;
  deps: Deps;
  onProgress?: ProgressListener;
}

/** Runs one planned activity; must not throw for ordinary failures (it may; that is a failure). */
export type ActivityExecutor = (activity: PlannedActivity, ctx: ExecutorContext) => Promise<ActivityResult>;
export type ActivityExecutors = Partial<Record<ActivityKind, ActivityExecutor>>;

/** A planned activity with what `run` will do about it. */
export interface PlanItem extends PlannedActivity {
  /** It will run (due, or asked for without --due). */
  selected: boolean;
  /** This version can execute this kind of activity. */
  available: boolean;
}

/** One activity as it ran (or was skipped). */
export interface ActivityRun {
  id: string;
  kind: ActivityKind;
  job?: string;
  repository: string;
  reason: string;
  outcome: ActivityOutcome;
  exitCode: number;
  summary: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  runIds: string[];
  snapshotIds: string[];
  stats?: Record<string, number>;
  error?: JournalError;
  warnings: string[];
}

export interface RunDueResult {
  mode: 'due' | 'all';
  dryRun: boolean;
  /** Set when another run holds this host's run lock: nothing was done. */
  locked?: { path: string; holder?: HostRunLockInfo };
  plan: PlanItem[];
  activities: ActivityRun[];
  /** Things the user should know that are not failures (unavailable activity kinds). */
  notes: string[];
  /** Runs found interrupted (killed) and recorded in the journal now. */
  recovered: Array<{ activity: string; repository: string; startedAt: string; runId?: string }>;
  warnings: string[];
  /** The worst exit code of the activities. */
  exitCode: number;
  ok: boolean;
}

const PLURAL: Record<ActivityKind, string> = {
  backup: 'backups',
  copy: 'copies',
  drill: 'drills',
  retention: 'retention runs',
  check: 'integrity checks',
};

/** The journal kind a run of this activity records. */
export function journalKindOf(kind: ActivityKind): JournalKind {
  return kind === 'retention' ? 'prune' : kind;
}

function exitCodeOf(outcome: ActivityOutcome, error: JournalError | undefined): number {
  if (outcome === 'success' || outcome === 'skipped') return ExitCode.ok;
  if (outcome === 'partial') return ExitCode.partial;
  if (outcome === 'interrupted') return ExitCode.interrupted;
  if (error?.code === 'E_POLICY_BREACH') return ExitCode.policyBreach;
  return error ? exitCodeOfFailure(error) : ExitCode.internal;
}

/** How much pack data a scheduled check reads: the largest share any policy using the repository asks for. */
function readDataFor(config: LifeboatConfig, repository: string): ReadDataSelection {
  let fraction = 0;
  for (const job of Object.values(config.jobs)) {
    if (!jobRepositoryNames(config, job).includes(repository)) continue;
    fraction = Math.max(fraction, config.policies[job.policy]?.check?.readData ?? 0);
  }
  if (fraction <= 0) return { kind: 'none' };
  if (fraction >= 1) return { kind: 'all' };
  return { kind: 'fraction', fraction };
}

/** A prune waits this long for backups elsewhere to release their shared locks. */
const RETENTION_LOCK_WAIT_MS = 120_000;

/** A due drill of one job (runDrills writes its own journal record). */
async function drillActivity(
  activity: PlannedActivity,
  { config, deps }: ExecutorContext,
): Promise<ActivityResult> {
  const run = await runDrills(config, { jobs: [activity.job!] }, deps);
  const d = run.drills[0];
  if (!d) {
    const reason = run.notDue[0]?.reason ?? 'no drill ran';
    return { outcome: 'failure', exitCode: ExitCode.internal, summary: reason, runIds: [], snapshotIds: [] };
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  return {
    outcome: d.outcome === 'partial' ? 'failure' : d.outcome,
    // Failed verification and a breached RTO are policy breaches (exit 4), like `lifeboat drill`.
    exitCode: d.verdict === 'pass' ? ExitCode.ok : (d.error?.exitCode ?? ExitCode.policyBreach),
    summary:
      `drill ${d.verdict} of snapshot ${d.snapshotId?.slice(0, 12) ?? '?'}: restore ${seconds(d.measuredRtoMs)}` +
      (d.rtoMs === null ? '' : ` (RTO ${seconds(d.rtoMs)})`),
    runIds: [d.runId],
    snapshotIds: d.snapshotId ? [d.snapshotId] : [],
    stats: { measuredRtoMs: d.measuredRtoMs, durationMs: d.durationMs },
    ...(d.error
      ? {
          error: {
            code: d.error.code,
            message: d.error.message,
            ...(d.error.hint ? { hint: d.error.hint } : {}),
          },
        }
      : {}),
  };
}

/** The executors this version has: backups, copies, drills, integrity checks and retention (forget + prune). */
export function defaultExecutors(): ActivityExecutors {
  return {
    copy: copyActivity,
    drill: drillActivity,
    backup: async (activity, { config, deps, onProgress }) => {
      const [r] = await backupJobs(
        config,
        { jobs: [activity.job!], ...(onProgress ? { onProgress } : {}) },
        deps,
      );
      if (!r) throw new Error(`no backup result for job ${activity.job}`);
      const ok = r.outcome === 'success' || r.outcome === 'partial';
      return {
        outcome: r.outcome,
        exitCode: exitCodeOf(r.outcome, r.error),
        summary: ok
          ? `snapshot ${r.snapshotId!.slice(0, 12)} in ${r.repository}` +
            (r.stats ? `: ${r.stats.files} files, ${r.stats.bytes} bytes (${r.stats.addedBytes} new)` : '') +
            (r.outcome === 'partial' ? `; partial: ${r.warnings.length} entries skipped` : '')
          : `backup ${r.outcome}: ${r.error?.message ?? 'unknown error'}`,
        runIds: r.runId ? [r.runId] : [],
        snapshotIds: r.snapshotId ? [r.snapshotId] : [],
        ...(r.stats ? { stats: { ...r.stats } } : {}),
        ...(r.error ? { error: r.error } : {}),
        warnings: r.warnings,
      };
    },
    check: async (activity, { config, deps, onProgress }) => {
      const readData = readDataFor(config, activity.repository);
      const [r] = await checkRepositories(
        config,
        { repository: activity.repository, readData, ...(onProgress ? { onProgress } : {}) },
        deps,
      );
      if (!r) throw new Error(`no check result for repository ${activity.repository}`);
      const runIds = r.runId ? [r.runId] : [];
      if (r.report) {
        const ok = r.report.ok;
        return {
          outcome: ok ? 'success' : 'failure',
          exitCode: ok ? ExitCode.ok : ExitCode.internal,
          summary: `${summarizeCheck(r.report)} (read ${describeReadData(readData)})`,
          runIds,
          snapshotIds: r.report.affectedSnapshots.map((s) => s.id),
          stats: { problems: r.report.problems.length, affectedSnapshots: r.report.affectedSnapshots.length },
          ...(ok
            ? {}
            : {
                error: {
                  code: 'E_INTEGRITY',
                  message: r.report.problems[0]?.message ?? summarizeCheck(r.report),
                  hint: 'Run `lifeboat check` to see every problem and the snapshots it affects.',
                },
              }),
          warnings: r.report.notes,
        };
      }
      const error = r.error ?? { code: 'E_INTERNAL', message: 'the check did not run' };
      const outcome = error.code === 'E_INTERRUPTED' ? 'interrupted' : 'failure';
      return {
        outcome,
        exitCode: exitCodeOf(outcome, error),
        summary: `check ${outcome}: ${error.message}`,
        runIds,
        snapshotIds: [],
        error,
      };
    },
    retention: async (activity, { config, deps, onProgress }) => {
      const jobs = activity.jobs ?? [];
      if (jobs.length === 0) throw new Error(`retention of ${activity.repository} names no jobs`);
      const [r] = await forgetSnapshots(
        config,
        {
          jobs,
          repository: activity.repository,
          dryRun: false,
          prune: true,
          pruneOptions: { waitMs: RETENTION_LOCK_WAIT_MS },
          ...(onProgress ? { onProgress } : {}),
        },
        deps,
      );
      if (!r) throw new Error(`no retention result for repository ${activity.repository}`);
      const freed = r.prune && 'bytesFreed' in r.prune.summary ? r.prune.summary.bytesFreed : undefined;
      const kept = r.jobs.reduce((n, p) => n + p.keep.length, 0);
      return {
        outcome: 'success',
        exitCode: ExitCode.ok,
        summary:
          `forgot ${r.forgotten} snapshot${r.forgotten === 1 ? '' : 's'}, kept ${kept}` +
          (freed === undefined ? '' : `; prune freed ${freed} bytes`),
        runIds: [r.runId, r.prune?.runId].filter((id): id is string => id !== undefined),
        snapshotIds: r.jobs.flatMap((p) => p.forget.map((s) => s.id)),
        stats: { forgotten: r.forgotten, kept, ...(freed === undefined ? {} : { bytesFreed: freed }) },
      };
    },
  };
}

/** The planner's view of the configuration, restricted to `jobNames`. */
export function planInputs(
  config: LifeboatConfig,
  jobNames: string[],
): { jobs: PlanJob[]; repositories: PlanRepository[] } {
  const jobs = jobNames.map((name) => config.jobs[name]!);
  const planJobs = jobs.map((job): PlanJob => {
    const policy = config.policies[job.policy];
    return {
      name: job.name,
      schedule: job.schedule,
      repositories: jobRepositoryNames(config, job),
      ...(policy?.drill ? { drillEvery: policy.drill.every } : {}),
      retention: policy?.retention !== undefined,
    };
  });
  const repositories = new Map<string, PlanRepository>();
  for (const job of jobs) {
    const every = config.policies[job.policy]?.check?.every;
    for (const name of jobRepositoryNames(config, job)) {
      const r = repositories.get(name) ?? { name };
      if (every !== undefined && (r.checkEvery === undefined || every < r.checkEvery)) r.checkEvery = every;
      repositories.set(name, r);
    }
  }
  return { jobs: planJobs, repositories: [...repositories.values()] };
}

/** Read each repository's journal from `since`; unreadable ones become views with an error. */
async function loadJournals(
  config: LifeboatConfig,
  names: string[],
  since: number,
  deps: Deps,
  warn: (text: string) => void,
): Promise<{ views: Record<string, JournalView>; known: Record<string, KnownRun[]> }> {
  const views: Record<string, JournalView> = {};
  const known: Record<string, KnownRun[]> = {};
  for (const name of names) {
    try {
      const repo = await openConfiguredRepository(config, name, deps);
      try {
        const { records, problems } = await repo.listJournal({ since });
        views[name] = { records: records.map(toFacts) };
        known[name] = records;
        for (const p of problems) {
          const upgrade = /newer than this lifeboat/.test(p.reason)
            ? ' (a newer lifeboat wrote it; upgrade to read it)'
            : '';
          warn(`repository ${name}: journal record ${p.key} skipped: ${p.reason}${upgrade}`);
        }
      } finally {
        await repo.close();
      }
    } catch (err) {
      const failure = describeFailure(err);
      views[name] = { records: [], error: failure.message };
      known[name] = [];
      warn(`repository ${name}: cannot read the journal: ${failure.message}`);
    }
  }
  return { views, known };
}

function toFacts(r: JournalRecord): RunFacts {
  return {
    id: r.id,
    kind: r.kind,
    ...(r.job === undefined ? {} : { job: r.job }),
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    outcome: r.outcome,
  };
}

async function appendToJournal(
  config: LifeboatConfig,
  repository: string,
  input: JournalInput,
  deps: Deps,
): Promise<JournalRecord> {
  const repo = await openConfiguredRepository(config, repository, deps);
  try {
    return await repo.appendJournal(input);
  } finally {
    await repo.close();
  }
}

type NotificationTargets = Pick<NonNullable<LifeboatConfig['notifications']>, 'webhooks' | 'healthchecks'> & {
  prometheus?: NonNullable<LifeboatConfig['notifications']>['prometheus'];
};

/** A notifier for one notifications section; secrets that cannot be resolved become warnings. */
async function notifierFor(n: NotificationTargets | undefined, where: string, deps: Deps): Promise<Notifier> {
  const settings: NotifierSettings = { webhooks: [] };
  const resolve = async (ref: Parameters<typeof resolveSecret>[0], what: string) => {
    try {
      const url = await resolveSecret(ref, { env: deps.env, what, onWarning: (w) => deps.logger.warn(w) });
      registerSecret(url);
      new URL(url);
      return url;
    } catch (err) {
      deps.logger.warn(`${what}: ${describeFailure(err).message}; not notifying there`);
      return undefined;
    }
  };
  for (const [i, hook] of (n?.webhooks ?? []).entries()) {
    const url = await resolve(hook.url, `${where}.webhooks[${i}].url`);
    if (url) settings.webhooks.push({ url, events: hook.events, timeoutMs: hook.timeout });
  }
  if (n?.healthchecks) {
    const url = await resolve(n.healthchecks.url, `${where}.healthchecks.url`);
    if (url) settings.healthchecks = { url };
  }
  if (n?.prometheus) settings.prometheus = { textfileDir: n.prometheus.textfileDir };
  return new Notifier(settings, {
    logger: deps.logger,
    toolVersion: VERSION,
    now: () => isoTime(deps.clock.now()),
  });
}

/** The notifier for the global notifications section. */
export function notifierFromConfig(config: LifeboatConfig, deps: Deps): Promise<Notifier> {
  return notifierFor(config.notifications, 'notifications', deps);
}

/** Notifiers of the jobs that have their own `notifications` section (in addition to the global one). */
async function jobNotifiersFromConfig(
  config: LifeboatConfig,
  jobs: string[],
  deps: Deps,
): Promise<Map<string, Notifier>> {
  const out = new Map<string, Notifier>();
  for (const name of jobs) {
    const own = config.jobs[name]?.notifications;
    if (own) out.set(name, await notifierFor(own, `jobs.${name}.notifications`, deps));
  }
  return out;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/** Why an activity cannot run now because an earlier one in this run failed, if it cannot. */
function blockedBy(item: PlannedActivity, done: ActivityRun[]): string | undefined {
  const failed = (r: ActivityRun) => r.outcome === 'failure' || r.outcome === 'interrupted';
  if ((item.kind === 'copy' || item.kind === 'drill') && item.job) {
    const backup = done.find((r) => r.kind === 'backup' && r.job === item.job && failed(r));
    if (backup) return `the backup of ${item.job} failed in this run`;
  }
  if (item.kind === 'retention') {
    const into = done.find(
      (r) => (r.kind === 'backup' || r.kind === 'copy') && r.repository === item.repository && failed(r),
    );
    if (into)
      return `a ${into.kind} into ${item.repository} failed in this run; retention waits for a good one`;
  }
  return undefined;
}

const BREACH_NOTICES_FILE = 'breach-notices.json';
/** A breach still present is notified again after this long. */
const BREACH_RENOTIFY_MS = 86_400_000;

/** Which breached jobs to notify now (new breaches, or older than a day); updates the record. */
async function breachesToNotify(dir: string, breached: string[], now: number): Promise<string[]> {
  const file = join(dir, BREACH_NOTICES_FILE);
  let previous: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (parsed && typeof parsed === 'object') previous = parsed as Record<string, string>;
  } catch {
    previous = {};
  }
  const next: Record<string, string> = {};
  const notify: string[] = [];
  for (const job of breached) {
    const last = Date.parse(previous[job] ?? '');
    if (!Number.isFinite(last) || now - last >= BREACH_RENOTIFY_MS || last > now) {
      notify.push(job);
      next[job] = isoTime(now);
    } else next[job] = previous[job]!;
  }
  await writeFileAtomic(file, JSON.stringify(next) + '\n', { mode: 0o600 });
  return notify;
}

/** Metrics for the Prometheus textfile from a status evaluation and the run counters. */
export function metricsModel(
  status: StatusResult,
  config: LifeboatConfig,
  runsTotal: MetricsModel['runsTotal'],
): MetricsModel {
  return {
    jobs: status.jobs.map((j) => {
      const policy = config.policies[j.policy];
      return {
        job: j.job,
        ...(policy ? { rpoSeconds: policy.rpo / 1000 } : {}),
        ...(policy?.rto === undefined ? {} : { rtoSeconds: policy.rto / 1000 }),
        ...(j.drill.measuredMs === undefined ? {} : { lastDrillDurationSeconds: j.drill.measuredMs / 1000 }),
        repositories: j.repositories.map((r) => ({
          repository: r.repository,
          ...(r.newestEndedAt ? { lastSuccessTimestamp: Date.parse(r.newestEndedAt) / 1000 } : {}),
          ...(r.ageMs === undefined ? {} : { restorePointAgeSeconds: r.ageMs / 1000 }),
        })),
      };
    }),
    runsTotal,
    repositories: status.repositories.map((r) => ({
      repository: r.repository,
      ...(r.storedBytes === undefined ? {} : { bytes: r.storedBytes }),
    })),
  };
}

/** Plan, and unless dry-running, execute: the `run` use case. */
export async function runDue(
  config: LifeboatConfig,
  opts: RunOptions,
  baseDeps: Deps,
  executors: ActivityExecutors = defaultExecutors(),
): Promise<RunDueResult> {
  const jobNames = selectJobs(config, opts.jobs);
  const dir = stateDir(config, baseDeps.env);
  const startedAt = isoTime(baseDeps.clock.now());
  const result: RunDueResult = {
    mode: opts.due ? 'due' : 'all',
    dryRun: opts.dryRun,
    plan: [],
    activities: [],
    notes: [],
    recovered: [],
    warnings: [],
    exitCode: ExitCode.ok,
    ok: true,
  };

  let lock;
  if (!opts.dryRun) {
    const acquired = await acquireHostRunLock(
      dir,
      { startedAt, command: `run${opts.due ? ' --due' : ''}${opts.jobs.map((j) => ` --job ${j}`).join('')}` },
      { onHeartbeat: () => touchRunningMarkers(dir) },
    );
    if (!acquired.acquired) {
      result.locked = { path: acquired.path, ...(acquired.holder ? { holder: acquired.holder } : {}) };
      return result;
    }
    lock = acquired.lock;
  }
  // On SIGINT/SIGTERM the CLI exits after its cleanups: free the lock then too. Activity
  // markers stay, so the next run records the activities that were cut short.
  const heldLock = lock;
  const unregister = heldLock ? registerCleanup('release the run lock', () => heldLock.release()) : undefined;

  const tail = createLogTail(baseDeps.logger);
  const deps: Deps = { ...baseDeps, logger: tail.logger };
  const warn = (text: string) => {
    result.warnings.push(text);
    deps.logger.warn(text);
  };
  try {
    const notifier = opts.dryRun ? undefined : await notifierFromConfig(config, deps);
    await notifier?.runStarted();
    const jobNotifiers = opts.dryRun
      ? new Map<string, Notifier>()
      : await jobNotifiersFromConfig(config, jobNames, deps);

    const now = deps.clock.now();
    const inputs = planInputs(config, jobNames);
    const since = journalHorizon({ now, ...inputs });
    const { views, known } = await loadJournals(
      config,
      inputs.repositories.map((r) => r.name),
      since,
      deps,
      warn,
    );

    await recoverInterrupted({ config, dir, deps, dryRun: opts.dryRun, known, views, result, warn });

    // What this host remembers covers attempts the journals could not record.
    const localRuns = await readLocalRuns(dir);
    for (const r of localRuns) (views[r.repository] ??= { records: [] }).records.push(r);

    const plan = planActivities({
      now,
      ...inputs,
      journals: views,
      since,
      timeZone: config.defaults.timezone,
    });
    result.plan = plan.map((item) => ({
      ...item,
      selected: opts.due ? item.due : true,
      available: Boolean(executors[item.kind]),
    }));
    for (const item of result.plan) {
      if (item.selected && !item.available) {
        const what = item.job ? `${item.kind} of ${item.job}` : `${item.kind} of ${item.repository}`;
        result.notes.push(
          `${what} ${opts.due ? 'due' : 'requested'}, but ${PLURAL[item.kind]} are not available in this version`,
        );
      }
    }
    if (opts.dryRun) return result;
    // A job's own healthchecks check is pinged only when the job has something to do in this run.
    const busyJobs = new Set(
      result.plan.filter((i) => i.selected && i.available && i.job).map((i) => i.job!),
    );
    for (const [job, jobNotifier] of jobNotifiers) if (busyJobs.has(job)) await jobNotifier.runStarted();

    const newLocalRuns: LocalRun[] = [];
    const concurrency = config.defaults.concurrency ?? 2;
    for (const kind of ACTIVITY_KINDS) {
      const items = result.plan.filter((i) => i.kind === kind && i.selected && i.available);
      await forEachLimit(items, concurrency, async (item) => {
        const run = await runActivity(item, executors[kind]!, {
          config,
          deps,
          dir,
          opts,
          done: result.activities,
        });
        result.activities.push(run);
        result.exitCode = worseExitCode(result.exitCode, run.exitCode);
        if (run.outcome !== 'skipped') {
          newLocalRuns.push({
            activity: item.id,
            repository: item.repository,
            kind: journalKindOf(item.kind),
            ...(item.job === undefined ? {} : { job: item.job }),
            ...(run.runIds[0] ? { id: run.runIds[0] } : {}),
            startedAt: run.startedAt,
            endedAt: run.endedAt,
            outcome: run.outcome,
          });
          const event = activityEvent(run, deps.host);
          notifier?.event(event);
          if (run.job) jobNotifiers.get(run.job)?.event(event);
        }
        tail.add(
          `${run.kind}${run.job ? ` ${run.job}` : ''} → ${run.repository}: ${run.outcome}: ${run.summary}`,
        );
      });
    }
    await appendLocalRuns(dir, newLocalRuns).catch((err: unknown) =>
      warn(`could not update ${join(dir, 'run-history.json')}: ${describeFailure(err).message}`),
    );

    if (notifier?.active) await afterRun(config, jobNames, notifier, deps, dir, warn, result);
    const failed = result.activities.some((a) => a.outcome === 'failure' || a.outcome === 'interrupted');
    await notifier?.runFinished(!failed, tail.text());
    await notifier?.flush();
    // A job's own healthchecks check hears about that job's activities only.
    for (const [job, jobNotifier] of jobNotifiers) {
      if (!busyJobs.has(job)) continue;
      const mine = result.activities.filter((a) => a.job === job && a.outcome !== 'skipped');
      const jobFailed = mine.some((a) => a.outcome === 'failure' || a.outcome === 'interrupted');
      await jobNotifier.runFinished(
        !jobFailed,
        mine.map((a) => `${a.kind} ${a.job} → ${a.repository}: ${a.outcome}: ${a.summary}`).join('\n'),
      );
      await jobNotifier.flush();
    }
    // Already logged by the notifier as they happened.
    for (const n of [notifier, ...jobNotifiers.values()])
      for (const w of n?.problems() ?? []) result.warnings.push(w);
    result.ok = !failed;
    return result;
  } finally {
    unregister?.();
    await lock?.release();
  }
}

/**
 * Runs killed last time (their markers outlived their process): record them in the journal as
 * interrupted, and let the planner see them; dry-running, only say so.
 */
async function recoverInterrupted(ctx: {
  config: LifeboatConfig;
  dir: string;
  deps: Deps;
  dryRun: boolean;
  known: Record<string, KnownRun[]>;
  views: Record<string, JournalView>;
  result: RunDueResult;
  warn: (text: string) => void;
}): Promise<void> {
  const stale = await findStaleMarkers(ctx.dir);
  if (ctx.dryRun) {
    for (const s of stale) {
      ctx.result.notes.push(
        `${s.marker.activity} from ${s.marker.startedAt} was interrupted; the next run records it`,
      );
    }
    return;
  }
  if (stale.length === 0) return;
  const recovery = await recordInterruptedRuns(stale, ctx.known, (repository, input) =>
    appendToJournal(ctx.config, repository, input, ctx.deps),
  );
  for (const r of recovery.recorded) {
    const repository = String(r.details?.repository ?? '');
    const activity = String(r.details?.activity ?? r.kind);
    ctx.result.recovered.push({ activity, repository, startedAt: r.startedAt, runId: r.id });
    (ctx.views[repository] ??= { records: [] }).records.push(toFacts(r));
    ctx.deps.logger.warn(`${activity} started ${r.startedAt} was interrupted; recorded it in ${repository}`);
  }
  for (const k of recovery.kept) {
    ctx.warn(
      `could not record the interrupted ${k.stale.marker.activity} run in ${k.stale.marker.repository}: ` +
        `${k.error}; will try again next time`,
    );
  }
}

function activityEvent(run: ActivityRun, host: string): NotificationEvent {
  return {
    event: eventOf(run.outcome),
    activity: run.kind,
    ...(run.job === undefined ? {} : { job: run.job }),
    repository: run.repository,
    outcome: run.outcome,
    host,
    startedAt: run.startedAt,
    endedAt: run.endedAt,
    durationMs: run.durationMs,
    ...(run.stats ? { stats: run.stats } : {}),
    ...(run.error ? { error: run.error } : {}),
    evidence: { runIds: run.runIds, snapshotIds: run.snapshotIds },
  };
}

async function runActivity(
  item: PlanItem,
  executor: ActivityExecutor,
  ctx: { config: LifeboatConfig; deps: Deps; dir: string; opts: RunOptions; done: ActivityRun[] },
): Promise<ActivityRun> {
  const { deps } = ctx;
  const startMs = deps.clock.now();
  const base = {
    id: item.id,
    kind: item.kind,
    ...(item.job === undefined ? {} : { job: item.job }),
    repository: item.repository,
    reason: item.reason,
    startedAt: isoTime(startMs),
    runIds: [] as string[],
    snapshotIds: [] as string[],
    warnings: [] as string[],
  };
  const skipped = (summary: string): ActivityRun => ({
    ...base,
    outcome: 'skipped',
    exitCode: ExitCode.ok,
    summary,
    endedAt: base.startedAt,
    durationMs: 0,
  });
  const blocked = blockedBy(item, ctx.done);
  if (blocked) return skipped(`skipped: ${blocked}`);
  if (deps.signal?.aborted) return skipped('skipped: the run was interrupted before it started');

  ctx.opts.onActivity?.({ phase: 'start', activity: item });
  const marker = await writeRunningMarker(ctx.dir, {
    activity: item.id,
    kind: journalKindOf(item.kind),
    ...(item.job === undefined ? {} : { job: item.job }),
    repository: item.repository,
    startedAt: base.startedAt,
  }).catch((err: unknown) => {
    deps.logger.warn(`could not write the running marker for ${item.id}: ${describeFailure(err).message}`);
    return undefined;
  });
  const t0 = monotonicMs();
  let r: ActivityResult;
  try {
    r = await executor(item, {
      config: ctx.config,
      deps,
      ...(ctx.opts.onProgress ? { onProgress: ctx.opts.onProgress } : {}),
    });
  } catch (err) {
    const error = describeFailure(err);
    const outcome = error.code === 'E_INTERRUPTED' ? 'interrupted' : 'failure';
    r = {
      outcome,
      exitCode: exitCodeOf(outcome, error),
      summary: `${item.kind} ${outcome}: ${error.message}`,
      runIds: [],
      snapshotIds: [],
      error,
    };
  }
  // The outcome is known (and journaled by the executor), so the marker has done its job.
  await marker?.remove();
  const run: ActivityRun = {
    ...base,
    outcome: r.outcome,
    exitCode: r.exitCode,
    summary: r.summary,
    endedAt: isoTime(deps.clock.now()),
    durationMs: monotonicMs() - t0,
    runIds: r.runIds,
    snapshotIds: r.snapshotIds,
    ...(r.stats ? { stats: r.stats } : {}),
    ...(r.error ? { error: r.error } : {}),
    warnings: r.warnings ?? [],
  };
  ctx.opts.onActivity?.({ phase: 'end', activity: item, run });
  return run;
}

/** Counters, metrics and breach events once the activities are done. */
async function afterRun(
  config: LifeboatConfig,
  jobNames: string[],
  notifier: Notifier,
  deps: Deps,
  dir: string,
  warn: (text: string) => void,
  result: RunDueResult,
): Promise<void> {
  const backups = result.activities
    .filter((a) => a.kind === 'backup' && a.outcome !== 'skipped' && a.job)
    .map((a) => ({ job: a.job!, outcome: a.outcome }));
  let counts = {};
  try {
    counts = await addRunCounts(join(dir, 'run-counts.json'), backups);
  } catch (err) {
    warn(`could not update the run counters: ${describeFailure(err).message}`);
  }
  const wantsMetrics = config.notifications?.prometheus !== undefined;
  if (!wantsMetrics && !notifier.wantsBreaches()) return;
  let status: StatusResult;
  try {
    status = await collectStatus(config, { jobs: jobNames, sizes: wantsMetrics }, deps);
  } catch (err) {
    warn(`could not evaluate the policies for notifications: ${describeFailure(err).message}`);
    return;
  }
  if (wantsMetrics) await notifier.writeMetrics(metricsModel(status, config, runCountSamples(counts)));
  if (!notifier.wantsBreaches()) return;
  const notify = await breachesToNotify(dir, status.breached, deps.clock.now()).catch(() => status.breached);
  for (const job of status.jobs.filter((j) => notify.includes(j.job))) {
    notifier.event(breachEvent(job, deps.host));
  }
}

function breachEvent(job: StatusResult['jobs'][number], host: string): NotificationEvent {
  const reasons = [
    ...job.repositories.filter((r) => r.state === 'breached').map((r) => `${r.repository}: ${r.reason}`),
    ...(job.drill.state === 'breached' ? [`drill: ${job.drill.reason}`] : []),
    ...(job.copies?.state === 'breached' ? [`copies: ${job.copies.reason}`] : []),
  ];
  return {
    event: 'breach',
    activity: 'status',
    job: job.job,
    outcome: 'breached',
    host,
    reason: reasons.join('; '),
    evidence: {
      runIds: job.drill.lastRunId ? [job.drill.lastRunId] : [],
      snapshotIds: job.repositories.flatMap((r) => (r.newestSnapshotId ? [r.newestSnapshotId] : [])),
    },
  };
}
