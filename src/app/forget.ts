/**
 * `forget`: apply retention rules per job and delete the snapshot objects of
 * restore points no rule keeps. Data stays until `prune`.
 *
 * Safety rules on top of the GFS rules (src/policy/retention.ts), so that
 * retention never removes the restore points that matter most:
 * - the newest snapshot of a job that passed a restore drill is kept (it is
 *   the one restore point proven to work);
 * - the newest complete (non-partial) snapshot is kept while every newer
 *   backup run failed or was partial — a string of failures must not let the
 *   last good backup expire.
 *
 * Lock: forget takes a shared lock. It only deletes snapshot objects (commit
 * points), never data, so it cannot hurt a backup, restore or check running
 * beside it; deleting data is prune's job, under the exclusive lock, and the
 * shared lock keeps prune from running at the same time. (restic takes an
 * exclusive lock for forget; lifeboat does not need to, and so a `forget`
 * from cron does not fail because another job is backing up.)
 */
import type { LifeboatConfig, RetentionConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { selectRetention, type RetentionRules } from '../policy/retention.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { JournalRecord } from '../repository/journal.js';
import { SNAPSHOTS_PREFIX } from '../repository/layout.js';
import { deleteSnapshot } from '../repository/maintenance.js';
import type { Repository } from '../repository/repository.js';
import { resolveSnapshotRef } from '../repository/snapshots.js';
import { selectJobs } from './backup.js';
import type { Deps, ProgressListener } from './deps.js';
import { holdLockedSnapshots, type LockedSnapshot } from './immutability.js';
import { lockWithWait, pruneRepository, type RepositoryPruneResult } from './prune.js';
import { jobRepositoryNames, openConfiguredRepository, repositoryConfig } from './repositories.js';
import { describeFailure, isoTime } from './runRecord.js';

export interface ForgetOptions {
  /** Jobs whose snapshots are considered; every configured job when empty. */
  jobs: string[];
  /** Only this repository; default: every repository of the selected jobs. */
  repository?: string;
  /** Rules from the command line; they replace the policies' rules for every selected job. */
  rules?: RetentionRules;
  /** Forget exactly these snapshots (IDs or unique prefixes; full IDs for damaged ones) instead of applying rules. */
  snapshots?: string[];
  dryRun: boolean;
  /** Prune each repository afterwards (not with dryRun). */
  prune?: boolean;
  pruneOptions?: { maxUnused?: number; leftoverMinAgeMs?: number; waitMs?: number };
  onProgress?: ProgressListener;
}

/** A snapshot as shown by forget. */
export interface ForgetSnapshot {
  id: string;
  startedAt: string;
  host: string;
  partial: boolean;
}

/** The decision for one job in one repository. */
export interface JobRetentionPlan {
  job: string;
  /** Where the rules came from: `command line`, `policy NAME`, or `none` (everything kept). */
  rulesFrom: string;
  rules: RetentionRules;
  /** Newest first, each with every reason it is kept. */
  keep: (ForgetSnapshot & { reasons: string[] })[];
  /** Newest first. */
  forget: ForgetSnapshot[];
}

export interface RepositoryForgetResult {
  repository: string;
  url: string;
  dryRun: boolean;
  jobs: JobRetentionPlan[];
  /** Snapshots forgotten by ID (--snapshot). */
  explicit: ForgetSnapshot[];
  /** Snapshots deleted (0 in a dry run). */
  forgotten: number;
  /** Snapshots the rules (or --snapshot) would forget but whose Object Lock retention has not ended. */
  locked?: LockedSnapshot[];
  runId?: string;
  prune?: RepositoryPruneResult;
}

export interface JobRetentionInput {
  job: string;
  /** The job's snapshots in one repository (any order). */
  snapshots: readonly SnapshotEntry[];
  /** Journal records of the repository (any kinds, any jobs). */
  journal: readonly JournalRecord[];
  rules: RetentionRules;
  rulesFrom: string;
  now: number;
  timeZone?: string;
}

const brief = (s: SnapshotEntry): ForgetSnapshot => ({
  id: s.id,
  startedAt: s.startedAt,
  host: s.host,
  partial: s.partial,
});

/** The retention safety rules: snapshot ID → why it must be kept whatever the rules say. */
export function protectedSnapshots(
  job: string,
  snapshots: readonly SnapshotEntry[],
  journal: readonly JournalRecord[],
): Map<string, string> {
  const protect = new Map<string, string>();
  const byTime = [...snapshots].sort((a, b) =>
    a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0,
  );
  const mine = journal.filter((r) => r.job === job);

  // The newest snapshot a restore drill proved.
  const drilled = new Map<string, JournalRecord>();
  for (const r of mine)
    if (r.kind === 'drill' && r.outcome === 'success')
      for (const id of r.snapshotIds ?? []) drilled.set(id, r);
  const proven = byTime.find((s) => drilled.has(s.id));
  if (proven) {
    const run = drilled.get(proven.id)!;
    protect.set(
      proven.id,
      `newest snapshot that passed a restore drill (run ${run.id}, ${run.endedAt.slice(0, 10)})`,
    );
  }

  // The newest complete snapshot, while nothing newer is complete.
  const good = byTime.find((s) => !s.partial);
  if (good) {
    const newerPartial = byTime.filter((s) => s.startedAt > good.startedAt).length;
    const newerFailed = mine.filter(
      (r) =>
        r.kind === 'backup' &&
        r.startedAt > good.startedAt &&
        (r.outcome === 'failure' || r.outcome === 'interrupted') &&
        !(r.snapshotIds ?? []).includes(good.id),
    ).length;
    if (newerPartial > 0 || newerFailed > 0) {
      const why: string[] = [];
      if (newerFailed > 0) why.push(`${newerFailed} newer backup run${newerFailed === 1 ? '' : 's'} failed`);
      if (newerPartial > 0)
        why.push(`${newerPartial} newer snapshot${newerPartial === 1 ? ' is' : 's are'} partial`);
      protect.set(good.id, `newest complete snapshot (${why.join('; ')})`);
    }
  }
  return protect;
}

/** Which snapshots of one job to keep and which to forget, with reasons. Pure. */
export function planJobRetention(input: JobRetentionInput): JobRetentionPlan {
  const byId = new Map(input.snapshots.map((s) => [s.id, s]));
  const result = selectRetention(
    input.snapshots.map((s) => ({ id: s.id, time: Date.parse(s.startedAt) })),
    input.rules,
    input.now,
    {
      ...(input.timeZone ? { timeZone: input.timeZone } : {}),
      protect: protectedSnapshots(input.job, input.snapshots, input.journal),
    },
  );
  return {
    job: input.job,
    rulesFrom: input.rulesFrom,
    rules: input.rules,
    keep: result.keep.map((k) => ({ ...brief(byId.get(k.id)!), reasons: k.reasons })),
    forget: result.forget.map((f) => brief(byId.get(f.id)!)),
  };
}

/** The configured retention of a policy as retention rules. */
export function rulesFromConfig(retention: RetentionConfig | undefined): RetentionRules {
  if (!retention) return {};
  const rules: RetentionRules = {};
  for (const key of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'within'] as const) {
    const value = retention[key];
    if (value !== undefined) rules[key] = value;
  }
  return rules;
}

/** Apply retention (or forget named snapshots) in each repository; prune afterwards when asked. */
export async function forgetSnapshots(
  config: LifeboatConfig,
  opts: ForgetOptions,
  deps: Deps,
): Promise<RepositoryForgetResult[]> {
  const jobs = selectJobs(config, opts.jobs);
  if (opts.snapshots?.length && opts.rules) {
    throw new UsageError('give either snapshot IDs or --keep-* rules, not both');
  }
  let names: string[];
  if (opts.repository) {
    repositoryConfig(config, opts.repository);
    names = [opts.repository];
  } else if (opts.snapshots?.length) {
    names = Object.keys(config.repositories);
    if (names.length > 1) {
      throw new UsageError('name the repository of the snapshots with --repository', {
        hint: `Configured repositories: ${names.join(', ')}.`,
      });
    }
  } else {
    names = [...new Set(jobs.flatMap((j) => jobRepositoryNames(config, config.jobs[j]!)))];
  }
  const results: RepositoryForgetResult[] = [];
  for (const name of names) {
    const result = await forgetInRepository(config, name, jobs, opts, deps);
    if (opts.prune && !opts.dryRun) {
      result.prune = await pruneRepository(
        config,
        name,
        { dryRun: false, ...opts.pruneOptions, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) },
        deps,
      );
    }
    results.push(result);
    if (deps.signal?.aborted) break;
  }
  return results;
}

async function forgetInRepository(
  config: LifeboatConfig,
  name: string,
  jobs: string[],
  opts: ForgetOptions,
  deps: Deps,
): Promise<RepositoryForgetResult> {
  const startedAt = isoTime(deps.clock.now());
  const repo = await openConfiguredRepository(config, name, deps);
  try {
    const lock = await lockWithWait(repo, { exclusive: false, purpose: 'forget' }, deps);
    let result: RepositoryForgetResult;
    try {
      const snapshots = await repo.listSnapshots();
      const plans: JobRetentionPlan[] = [];
      let explicit: ForgetSnapshot[] = [];
      if (opts.snapshots?.length) {
        explicit = resolveExplicit(repo, snapshots, opts.snapshots);
      } else {
        const inScope = jobs.filter(
          (j) => opts.repository !== undefined || jobRepositoryNames(config, config.jobs[j]!).includes(name),
        );
        const relevant = snapshots.filter((s) => inScope.includes(s.job));
        const since = relevant[0]?.startedAt;
        const { records, problems } = await repo.listJournal(since ? { since } : {});
        for (const p of problems) deps.logger.warn(`journal record ${p.key} skipped: ${p.reason}`);
        for (const job of inScope) {
          const policyName = config.jobs[job]!.policy;
          const fromPolicy = rulesFromConfig(config.policies[policyName]?.retention);
          const rules = opts.rules ?? fromPolicy;
          const rulesFrom = opts.rules
            ? 'command line'
            : Object.keys(fromPolicy).length
              ? `policy ${policyName}`
              : 'none';
          plans.push(
            planJobRetention({
              job,
              snapshots: relevant.filter((s) => s.job === job),
              journal: records,
              rules,
              rulesFrom,
              now: deps.clock.now(),
              timeZone: config.defaults.timezone,
            }),
          );
        }
      }
      // Snapshots still under an Object Lock retention cannot be deleted yet: leave them (immutability.ts).
      const locked = await holdLockedSnapshots(
        repo,
        [...plans.map((p) => p.forget), explicit],
        deps.clock.now(),
      );
      const doomed = [...plans.flatMap((p) => p.forget), ...explicit];
      if (!opts.dryRun) {
        for (const s of doomed) {
          deps.signal?.throwIfAborted();
          lock.assertHeld();
          await deleteSnapshot(repo, s.id);
        }
      }
      result = {
        repository: name,
        url: repo.url,
        dryRun: opts.dryRun,
        jobs: plans,
        explicit,
        forgotten: opts.dryRun ? 0 : doomed.length,
        ...(locked.length ? { locked } : {}),
      };
    } finally {
      await lock.release();
    }
    if (!opts.dryRun) {
      const forgotten = [
        ...result.jobs.flatMap((p) => p.forget.map((s) => s.id)),
        ...result.explicit.map((s) => s.id),
      ];
      try {
        const record = await repo.appendJournal({
          kind: 'forget',
          ...(jobs.length === 1 && !result.explicit.length ? { job: jobs[0]! } : {}),
          startedAt,
          endedAt: isoTime(deps.clock.now()),
          outcome: 'success',
          stats: { forgotten: forgotten.length, kept: result.jobs.reduce((n, p) => n + p.keep.length, 0) },
          details: {
            repository: name,
            forgotten,
            jobs: Object.fromEntries(
              result.jobs.map((p) => [
                p.job,
                { rulesFrom: p.rulesFrom, kept: p.keep.length, forgotten: p.forget.length },
              ]),
            ),
          },
        });
        result.runId = record.id;
      } catch (err) {
        deps.logger.warn(`could not record the forget run in the journal: ${describeFailure(err).message}`);
      }
    }
    return result;
  } finally {
    await repo.close();
  }
}

/** Resolve --snapshot references: readable snapshots by ID or prefix, damaged ones by full ID. */
function resolveExplicit(repo: Repository, snapshots: SnapshotEntry[], refs: string[]): ForgetSnapshot[] {
  const damaged = new Set(repo.snapshotIssues().map((p) => p.key.slice(SNAPSHOTS_PREFIX.length)));
  const out = new Map<string, ForgetSnapshot>();
  for (const ref of refs) {
    const id = ref.trim().toLowerCase();
    if (damaged.has(id)) {
      out.set(id, { id, startedAt: '', host: '', partial: false });
      continue;
    }
    if (id === 'latest') throw new UsageError('`latest` cannot be forgotten by name; give its ID');
    const s = resolveSnapshotRef(snapshots, id, undefined, repo.url);
    out.set(s.id, brief(s));
  }
  return [...out.values()];
}
