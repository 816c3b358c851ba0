/**
 * What `lifeboat run --due` should do now: from each job's schedule and policy and from the
 * run journal, decide per activity (backup, copy, drill, retention, check) whether it is due,
 * and say why. Pure: time, configuration and journal records come in as arguments.
 *
 * The rules (docs/scheduling.md):
 * - backup: due when the latest scheduled run at or before now is later than the start of the
 *   last backup attempt. A machine that was off for three days catches up once, not once per
 *   missed run. A failed (or interrupted) attempt is retried once, `backupRetryDelayMs` after it
 *   ended, when that comes before the next scheduled run; otherwise the next run is the retry.
 * - copy: due when the newest good backup in the job's first repository ended after the last
 *   copy into the other repository started.
 * - drill: due when no successful drill started within the policy's `drill.every`; a failed
 *   drill is retried after `drill.every` or one day, whichever is shorter.
 * - check: the same per repository, with the shortest `check.every` of the policies using it.
 * - retention (forget + prune): due when restore points arrived in the repository since the
 *   last retention run, at most once per `retentionIntervalMs` (a failed one after
 *   `retentionRetryMs`).
 */
import { formatDuration } from './duration.js';
import type { Schedule } from './schedule.js';
import { latestTick, nextTick, scheduleLabel, ticksBetween } from './ticks.js';
import { formatAgo, formatInstant } from './timeText.js';

/** Activities in the order `run` executes them (each phase after the one before). */
export const ACTIVITY_KINDS = ['backup', 'copy', 'drill', 'retention', 'check'] as const;
export type ActivityKind = (typeof ACTIVITY_KINDS)[number];

export type RunOutcome = 'success' | 'partial' | 'failure' | 'interrupted';

/** The facts of one run record (from a repository journal or this host's local record). */
export interface RunFacts {
  /** Run ID: records with the same ID are one run (seen in the journal and locally). */
  id?: string;
  /** Journal kind: backup, copy, drill, check, prune, forget. */
  kind: string;
  job?: string;
  /** ISO-8601. */
  startedAt: string;
  endedAt: string;
  outcome: RunOutcome;
}

/** A job as the planner sees it. */
export interface PlanJob {
  name: string;
  /** undefined: the job runs only when started by hand. */
  schedule: Schedule | undefined;
  /** Repositories in order: backups go to the first, copies to the others. */
  repositories: string[];
  /** The policy's `drill.every` in ms, when the policy asks for drills. */
  drillEvery?: number;
  /** The policy has retention rules (forget + prune apply to this job). */
  retention: boolean;
}

/** A repository as the planner sees it. */
export interface PlanRepository {
  name: string;
  /** The shortest `check.every` (ms) of the policies of jobs using this repository. */
  checkEvery?: number;
}

/** The journal of one repository: its records, or why it could not be read. */
export interface JournalView {
  records: RunFacts[];
  /** Set when the journal could not be read; records then holds only what is known locally. */
  error?: string;
}

export interface DueOptions {
  /** Wait before the single retry of a failed backup; 0 disables retries. */
  backupRetryDelayMs: number;
  /** Retention runs at most this often. */
  retentionIntervalMs: number;
  /** Wait before retrying a failed retention run. */
  retentionRetryMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const DEFAULT_DUE_OPTIONS: DueOptions = {
  backupRetryDelayMs: 15 * MINUTE,
  retentionIntervalMs: DAY,
  retentionRetryMs: HOUR,
};

export interface PlanInput {
  now: number;
  jobs: PlanJob[];
  repositories: PlanRepository[];
  /** Journal per repository name; a missing entry counts as an empty, readable journal. */
  journals: Record<string, JournalView | undefined>;
  /** The journals were read from this time on (older runs are unknown); undefined: all of it. */
  since?: number;
  /** Zone for times in reasons of activities without a schedule (defaults.timezone). */
  timeZone?: string;
  options?: Partial<DueOptions>;
}

/** One activity the planner considered, due or not, with the reason. */
export interface PlannedActivity {
  /** Stable key: `backup:web`, `copy:web:offsite`, `check:local` … */
  id: string;
  kind: ActivityKind;
  job?: string;
  /** backup: where it goes; copy: the target; drill: the job's first repository; check, retention: the repository. */
  repository: string;
  /** copy: the repository copied from. */
  from?: string;
  /** retention: the jobs whose restore points it thins out. */
  jobs?: string[];
  due: boolean;
  /** `due: …` or `not due: …`, in words. */
  reason: string;
  /** When not due: the earliest time it can become due, if known. */
  nextAt?: number;
}

interface Run {
  id?: string;
  kind: string;
  job?: string;
  start: number;
  end: number;
  outcome: RunOutcome;
}

const isGood = (r: Run) => r.outcome === 'success' || r.outcome === 'partial';
const isFailed = (r: Run) => r.outcome === 'failure' || r.outcome === 'interrupted';

/** Records of the given kinds (and job) from several journals: parsed, de-duplicated, oldest first. */
function runsOf(views: Array<JournalView | undefined>, kinds: readonly string[], job?: string): Run[] {
  const seen = new Set<string>();
  const out: Run[] = [];
  for (const view of views) {
    for (const r of view?.records ?? []) {
      if (!kinds.includes(r.kind) || (job !== undefined && r.job !== job)) continue;
      if (r.id !== undefined) {
        if (seen.has(r.id)) continue;
        seen.add(r.id);
      }
      const start = Date.parse(r.startedAt);
      const end = Date.parse(r.endedAt);
      if (!Number.isFinite(start)) continue;
      out.push({
        ...(r.id === undefined ? {} : { id: r.id }),
        kind: r.kind,
        ...(r.job === undefined ? {} : { job: r.job }),
        start,
        end: Number.isFinite(end) ? Math.max(end, start) : start,
        outcome: r.outcome,
      });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

const lastOf = <T>(list: T[]): T | undefined => list[list.length - 1];

function failedText(what: string, run: Run, now: number): string {
  const verb = run.outcome === 'interrupted' ? 'was interrupted' : 'failed';
  return `last ${what} ${verb} ${formatAgo(run.end, now)}`;
}

class Planner {
  private readonly opts: DueOptions;
  private readonly zone: string;

  constructor(private readonly input: PlanInput) {
    this.opts = { ...DEFAULT_DUE_OPTIONS, ...input.options };
    this.zone = input.timeZone ?? 'UTC';
  }

  private get now(): number {
    return this.input.now;
  }

  private view(repository: string): JournalView | undefined {
    return this.input.journals[repository];
  }

  /** ` since 2024-03-01 …` when the journals were read from a point in time. */
  private sinceText(): string {
    return this.input.since === undefined
      ? ''
      : ` since ${formatInstant(this.input.since, this.zone, this.now)}`;
  }

  /** A note appended to reasons that rest on a journal that could not be read. */
  private unreadable(repositories: string[]): string {
    const notes = repositories.flatMap((name) => {
      const error = this.view(name)?.error;
      return error ? [`journal of ${name} unreadable: ${error}`] : [];
    });
    return notes.length ? ` (${notes.join('; ')})` : '';
  }

  at(ms: number, zone = this.zone): string {
    return formatInstant(ms, zone, this.now);
  }

  backup(job: PlanJob): PlannedActivity {
    const repository = job.repositories[0] ?? '';
    const base = { id: `backup:${job.name}`, kind: 'backup' as const, job: job.name, repository };
    if (!repository) return { ...base, due: false, reason: 'not due: the job has no repository' };
    const note = this.unreadable([repository]);
    const runs = runsOf([this.view(repository)], ['backup'], job.name);
    if (!job.schedule) {
      return {
        ...base,
        due: false,
        reason: `not due: no schedule; the job runs only when started by hand (lifeboat run --job ${job.name})`,
      };
    }
    const schedule = job.schedule;
    const now = this.now;
    const tick = latestTick(schedule, now);
    const next = nextTick(schedule, now);
    const nextText =
      next === undefined
        ? 'the schedule does not fire again'
        : `next run ${this.at(next, schedule.timezone)}`;
    const withNext = next === undefined ? {} : { nextAt: next };
    if (tick === undefined) {
      return {
        ...base,
        due: false,
        reason: `not due: the schedule has not fired yet; ${nextText}`,
        ...withNext,
      };
    }
    const lastGood = lastOf(runs.filter(isGood));
    const lastAttempt = lastOf(runs);
    const goodText = lastGood
      ? `last good backup ${formatAgo(lastGood.start, now)}`
      : `no good backup${this.sinceText()}`;

    if (!lastAttempt || lastAttempt.start < tick) {
      const parts = [`due: ${goodText}, schedule ${scheduleLabel(schedule)}`];
      if (lastAttempt) {
        const missed = ticksBetween(schedule, lastAttempt.start, tick);
        if (missed > 1) {
          parts.push(
            `${missed >= 1000 ? 'over 1000' : missed} scheduled runs missed since the last attempt, caught up once`,
          );
        }
        if (isFailed(lastAttempt)) parts.push(failedText('attempt', lastAttempt, now));
      }
      return { ...base, due: true, reason: parts.join('; ') + note };
    }

    if (isFailed(lastAttempt)) {
      const failed = failedText('backup', lastAttempt, now);
      const attemptsSinceTick = runs.filter((r) => r.start >= tick).length;
      const retryAt = lastAttempt.end + this.opts.backupRetryDelayMs;
      if (
        this.opts.backupRetryDelayMs > 0 &&
        attemptsSinceTick === 1 &&
        (next === undefined || retryAt < next)
      ) {
        if (retryAt <= now) {
          return {
            ...base,
            due: true,
            reason: `due: ${failed}; retrying once before the ${nextText}${note}`,
          };
        }
        return {
          ...base,
          due: false,
          reason: `not due: ${failed}; one retry at ${this.at(retryAt, schedule.timezone)}${note}`,
          nextAt: retryAt,
        };
      }
      return { ...base, due: false, reason: `not due: ${failed}; ${nextText}${note}`, ...withNext };
    }
    return {
      ...base,
      due: false,
      reason: `not due: ${nextText} (last backup ${formatAgo(lastAttempt.start, now)})${note}`,
      ...withNext,
    };
  }

  copies(job: PlanJob): PlannedActivity[] {
    const [primary, ...targets] = job.repositories;
    if (!primary) return [];
    const backups = runsOf([this.view(primary)], ['backup'], job.name).filter(isGood);
    const newest = lastOf(backups);
    return targets.map((target) => {
      const base = {
        id: `copy:${job.name}:${target}`,
        kind: 'copy' as const,
        job: job.name,
        repository: target,
        from: primary,
      };
      const note = this.unreadable([primary, target]);
      if (!newest) {
        return {
          ...base,
          due: false,
          reason: `not due: no good backup of ${job.name} in ${primary} to copy${this.sinceText()}${note}`,
        };
      }
      const copies = runsOf([this.view(target)], ['copy'], job.name).filter((r) => r.start >= newest.end);
      const last = lastOf(copies);
      if (last && isGood(last)) {
        return {
          ...base,
          due: false,
          reason: `not due: ${target} has the newest backup (copied ${formatAgo(last.start, this.now)})${note}`,
        };
      }
      if (last) {
        const retryAt = last.end + this.opts.backupRetryDelayMs;
        const failed = failedText('copy', last, this.now);
        if (this.opts.backupRetryDelayMs > 0 && copies.length === 1) {
          if (retryAt <= this.now)
            return { ...base, due: true, reason: `due: ${failed}; retrying once${note}` };
          return {
            ...base,
            due: false,
            reason: `not due: ${failed}; one retry at ${this.at(retryAt)}${note}`,
            nextAt: retryAt,
          };
        }
        return { ...base, due: false, reason: `not due: ${failed}; waiting for the next backup${note}` };
      }
      return {
        ...base,
        due: true,
        reason: `due: the backup of ${formatAgo(newest.start, this.now)} is not yet in ${target}${note}`,
      };
    });
  }

  /** Drills and checks: a successful run is required every `every` ms. */
  private cadence(
    base: Omit<PlannedActivity, 'due' | 'reason' | 'nextAt'>,
    what: string,
    every: number,
    runs: Run[],
    note: string,
  ): PlannedActivity {
    const now = this.now;
    const lastOk = lastOf(runs.filter((r) => r.outcome === 'success'));
    const last = lastOf(runs);
    const everyText = formatDuration(every);
    if (lastOk && now - lastOk.start < every) {
      const dueAt = lastOk.start + every;
      return {
        ...base,
        due: false,
        reason: `not due: last successful ${what} ${formatAgo(lastOk.start, now)}; next due ${this.at(dueAt)}${note}`,
        nextAt: dueAt,
      };
    }
    const retryWait = Math.min(every, DAY);
    if (last && isFailed(last) && now - last.end < retryWait) {
      const retryAt = last.end + retryWait;
      return {
        ...base,
        due: false,
        reason: `not due: ${failedText(what, last, now)}; next attempt ${this.at(retryAt)}${note}`,
        nextAt: retryAt,
      };
    }
    const head = lastOk
      ? `last successful ${what} ${formatAgo(lastOk.start, now)}`
      : `no successful ${what}${this.sinceText()}`;
    return { ...base, due: true, reason: `due: ${head}; the policy requires one every ${everyText}${note}` };
  }

  drill(job: PlanJob): PlannedActivity | undefined {
    if (job.drillEvery === undefined || job.repositories.length === 0) return undefined;
    const runs = runsOf(
      job.repositories.map((name) => this.view(name)),
      ['drill'],
      job.name,
    );
    const base = {
      id: `drill:${job.name}`,
      kind: 'drill' as const,
      job: job.name,
      repository: job.repositories[0]!,
    };
    return this.cadence(base, 'drill', job.drillEvery, runs, this.unreadable(job.repositories));
  }

  check(repository: PlanRepository): PlannedActivity | undefined {
    if (repository.checkEvery === undefined) return undefined;
    const runs = runsOf([this.view(repository.name)], ['check']);
    const base = { id: `check:${repository.name}`, kind: 'check' as const, repository: repository.name };
    return this.cadence(base, 'check', repository.checkEvery, runs, this.unreadable([repository.name]));
  }

  retention(repository: PlanRepository): PlannedActivity | undefined {
    const jobs = this.input.jobs.filter((j) => j.retention && j.repositories.includes(repository.name));
    if (jobs.length === 0) return undefined;
    const names = jobs.map((j) => j.name);
    const base = {
      id: `retention:${repository.name}`,
      kind: 'retention' as const,
      repository: repository.name,
      jobs: names,
    };
    const now = this.now;
    const view = this.view(repository.name);
    const note = this.unreadable([repository.name]);
    const arrivals = runsOf([view], ['backup', 'copy'])
      .filter((r) => r.job !== undefined && names.includes(r.job))
      .filter(isGood);
    const newest = lastOf(arrivals);
    const last = lastOf(runsOf([view], ['prune', 'forget']));
    if (!newest || (last && newest.end <= last.start)) {
      const what = last ? 'since the last retention run' : `to thin out${this.sinceText()}`;
      return { ...base, due: false, reason: `not due: no new restore points ${what}${note}` };
    }
    if (last) {
      const failed = isFailed(last);
      const wait = failed ? this.opts.retentionRetryMs : this.opts.retentionIntervalMs;
      const from = failed ? last.end : last.start;
      if (now - from < wait) {
        const lastText = failed
          ? failedText('retention run', last, now)
          : `retention ran ${formatAgo(last.start, now)}`;
        return {
          ...base,
          due: false,
          reason: `not due: ${lastText}; next ${this.at(from + wait)} at the earliest${note}`,
          nextAt: from + wait,
        };
      }
    }
    const head = last
      ? `new restore points since the retention run ${formatAgo(last.start, now)}`
      : `restore points and no retention run${this.sinceText()}`;
    return { ...base, due: true, reason: `due: ${head}${note}` };
  }
}

/** Every activity the configuration defines, due or not, in execution order. */
export function planActivities(input: PlanInput): PlannedActivity[] {
  const p = new Planner(input);
  const items: PlannedActivity[] = [];
  for (const job of input.jobs) items.push(p.backup(job));
  for (const job of input.jobs) items.push(...p.copies(job));
  for (const job of input.jobs) {
    const drill = p.drill(job);
    if (drill) items.push(drill);
  }
  for (const repository of input.repositories) {
    const retention = p.retention(repository);
    if (retention) items.push(retention);
  }
  for (const repository of input.repositories) {
    const check = p.check(repository);
    if (check) items.push(check);
  }
  return items;
}

/**
 * How far back the journals must be read for planActivities to decide correctly: the run
 * before the latest scheduled run of every job (so a failed retry and the last good backup
 * show), one drill or check interval, one retention interval — each with a day of margin.
 */
export function journalHorizon(input: Pick<PlanInput, 'now' | 'jobs' | 'repositories' | 'options'>): number {
  const opts = { ...DEFAULT_DUE_OPTIONS, ...input.options };
  const now = input.now;
  let from = now - opts.retentionIntervalMs;
  for (const job of input.jobs) {
    if (job.schedule) {
      const tick = latestTick(job.schedule, now);
      const before = tick === undefined ? undefined : latestTick(job.schedule, tick - 1);
      from = Math.min(from, before ?? tick ?? now);
    }
    if (job.drillEvery !== undefined) from = Math.min(from, now - job.drillEvery);
  }
  for (const repository of input.repositories) {
    if (repository.checkEvery !== undefined) from = Math.min(from, now - repository.checkEvery);
  }
  return from - DAY;
}

/** Order of phases for execution and display. */
export function phaseOf(kind: ActivityKind): number {
  return ACTIVITY_KINDS.indexOf(kind);
}
