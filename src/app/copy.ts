/**
 * `lifeboat copy --from A --to B [--job J…] [--dry-run]`: copy the restore
 * points B lacks from A into B (src/repository/copy.ts does the work), under
 * shared locks on both, with one `copy` journal record per job in B — the
 * repository whose contents changed, and where `run --due` looks for the
 * last copy of a job. Afterwards, jobs whose policy asks for immutability
 * get their kept restore points in B locked (immutability.ts).
 *
 * Also here: the `copy` activity of `run --due`, and newestPerRepository,
 * the per-repository freshness of each job for status and reports.
 */
import type { LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import type { SnapshotEntry } from '../repository/api.js';
import { planCopies, SnapshotCopier, type SnapshotCopyStats } from '../repository/copy.js';
import type { RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import { selectJobs } from './backup.js';
import type { Deps, ProgressListener } from './deps.js';
import { protectRestorePoints, type ProtectionOutcome } from './immutability.js';
import { openConfiguredRepository, repositoryConfig } from './repositories.js';
import type { ActivityExecutor } from './runDue.js';
import {
  describeFailure,
  failureOutcome,
  isoTime,
  summarizeFailure,
  type FailureSummary,
} from './runRecord.js';
import type { RepositorySnapshots } from './snapshots.js';

export interface CopyOptions {
  /** Configured repository names. */
  from: string;
  to: string;
  /** Jobs whose restore points to copy; empty: every restore point in `from`. */
  jobs: string[];
  /** List what would be copied; write nothing (no locks, no journal). */
  dryRun: boolean;
  onProgress?: ProgressListener;
}

/** A restore point as copy reports it. */
export interface CopiedSnapshot {
  /** ID in the source repository. */
  sourceId: string;
  /** ID of the copy in the target (absent in a dry run). */
  targetId?: string;
  startedAt: string;
  stats?: SnapshotCopyStats;
}

/** The copy of one job's restore points. */
export interface JobCopyResult {
  job: string;
  outcome: 'success' | 'failure' | 'interrupted';
  /** Copied now (dry run: would be copied). */
  copied: CopiedSnapshot[];
  /** Restore points the target already had. */
  skipped: number;
  stats: { blobsRead: number; bytesRead: number; newBlobs: number; newBytes: number };
  /** Journal run ID of the `copy` record in the target. */
  runId?: string;
  error?: FailureSummary;
  /** Set when the job's policy asks for immutable restore points. */
  immutability?: ProtectionOutcome;
}

export interface CopyResult {
  from: string;
  to: string;
  fromUrl: string;
  toUrl: string;
  dryRun: boolean;
  jobs: JobCopyResult[];
  ok: boolean;
  startedAt: string;
  endedAt: string;
  durationMs: number;
}

/**
 * Copy restore points from one configured repository to another. Failing to
 * open or lock either repository throws (wrong password: exit 12, missing:
 * 10, locked: 11); a failure while copying a job is recorded in its result
 * and journal record, and the next job is tried.
 */
export async function copyRestorePoints(
  config: LifeboatConfig,
  opts: CopyOptions,
  deps: Deps,
): Promise<CopyResult> {
  repositoryConfig(config, opts.from);
  repositoryConfig(config, opts.to);
  if (opts.from === opts.to) {
    throw new UsageError(`cannot copy repository '${opts.from}' into itself`, {
      hint: 'Name two different repositories with --from and --to.',
    });
  }
  const jobs = opts.jobs.length ? selectJobs(config, opts.jobs) : undefined;
  const startedAt = isoTime(deps.clock.now());
  const t0 = monotonicMs();
  const opened: Repository[] = [];
  const locks: RepositoryLock[] = [];
  try {
    const source = await openConfiguredRepository(config, opts.from, deps);
    opened.push(source);
    const target = await openConfiguredRepository(config, opts.to, deps);
    opened.push(target);
    if (!opts.dryRun) {
      locks.push(await source.lock({ exclusive: false, purpose: `copy to ${opts.to}` }));
      locks.push(await target.lock({ exclusive: false, purpose: `copy from ${opts.from}` }));
    }
    const all = await source.listSnapshots();
    const chosen = jobs ? all.filter((s) => jobs.includes(s.job)) : all;
    const { missing, present } = planCopies(chosen, await target.listSnapshots());
    const jobNames = jobs ?? [...new Set(chosen.map((s) => s.job))].sort();
    const results: JobCopyResult[] = [];
    const copier = new SnapshotCopier(source, target, {
      sourceRepositoryId: source.id,
      targetRepositoryId: target.id,
      concurrency: Math.min(8, source.internals().storage.capabilities.maxConnections),
      ...(deps.signal ? { signal: deps.signal } : {}),
      onProgress: (p) =>
        opts.onProgress?.({
          job: p.job,
          phase: `copy ${p.snapshot.slice(0, 12)} to ${opts.to}`,
          files: p.blobsRead,
          bytes: p.bytesRead,
          totalBytes: p.totalBytes,
        }),
    });
    for (const job of jobNames) {
      const todo = missing.filter((s) => s.job === job);
      const skipped = chosen.filter((s) => s.job === job).length - todo.length;
      if (opts.dryRun) {
        results.push({
          job,
          outcome: 'success',
          copied: todo.map((s) => ({ sourceId: s.id, startedAt: s.startedAt })),
          skipped,
          stats: { blobsRead: 0, bytesRead: 0, newBlobs: 0, newBytes: 0 },
        });
        continue;
      }
      results.push(
        await copyJob(
          config,
          { job, todo, skipped, all: chosen, present, copier, source, target, opts },
          deps,
        ),
      );
      if (deps.signal?.aborted) break;
    }
    return {
      from: opts.from,
      to: opts.to,
      fromUrl: source.url,
      toUrl: target.url,
      dryRun: opts.dryRun,
      jobs: results,
      ok: results.every((r) => r.outcome === 'success'),
      startedAt,
      endedAt: isoTime(deps.clock.now()),
      durationMs: monotonicMs() - t0,
    };
  } finally {
    for (const lock of locks.reverse()) await lock.release().catch(() => {});
    for (const repo of opened.reverse()) await repo.close();
  }
}

interface JobCopyInput {
  job: string;
  todo: SnapshotEntry[];
  skipped: number;
  /** Every chosen source snapshot (for the earlier-pair lookup). */
  all: SnapshotEntry[];
  /** Source snapshot ID → its copy in the target; grows as snapshots are copied. */
  present: Map<string, SnapshotEntry>;
  copier: SnapshotCopier;
  source: Repository;
  target: Repository;
  opts: CopyOptions;
}

async function copyJob(config: LifeboatConfig, input: JobCopyInput, deps: Deps): Promise<JobCopyResult> {
  const { job, todo, present, copier, target, opts } = input;
  const startedAt = isoTime(deps.clock.now());
  const copied: CopiedSnapshot[] = [];
  const stats = { blobsRead: 0, bytesRead: 0, newBlobs: 0, newBytes: 0 };
  let error: unknown;
  for (const snapshot of todo) {
    try {
      const earlier = earlierPair(snapshot, input.all, present);
      const parent = snapshot.parent ? present.get(snapshot.parent)?.id : undefined;
      const r = await copier.copy(snapshot, earlier, parent);
      present.set(snapshot.id, { ...snapshot, id: r.targetId, tree: r.targetTree });
      copied.push({ sourceId: r.sourceId, targetId: r.targetId, startedAt: r.startedAt, stats: r.stats });
      stats.blobsRead += r.stats.blobsRead;
      stats.bytesRead += r.stats.bytesRead;
      stats.newBlobs += r.stats.newBlobs;
      stats.newBytes += r.stats.newBytes;
    } catch (err) {
      error = err;
      break;
    }
  }
  const immutability =
    copied.length > 0 || error === undefined
      ? await protectRestorePoints(config, job, opts.to, target, deps)
      : undefined;
  const outcome = error === undefined ? 'success' : failureOutcome(error);
  const jobResult: JobCopyResult = {
    job,
    outcome: outcome === 'interrupted' ? 'interrupted' : outcome === 'success' ? 'success' : 'failure',
    copied,
    skipped: input.skipped,
    stats,
    ...(error === undefined ? {} : { error: summarizeFailure(error) }),
    ...(immutability ? { immutability } : {}),
  };
  try {
    const record = await target.appendJournal({
      kind: 'copy',
      job,
      startedAt,
      endedAt: isoTime(deps.clock.now()),
      outcome: jobResult.outcome,
      ...(error === undefined ? {} : { error: describeFailure(error) }),
      snapshotIds: copied.map((c) => c.targetId!),
      stats: { copied: copied.length, skipped: input.skipped, ...stats },
      details: {
        from: opts.from,
        to: opts.to,
        copied: copied.length,
        skipped: input.skipped,
        sourceSnapshotIds: copied.map((c) => c.sourceId),
        ...(immutability ? { immutability } : {}),
      },
    });
    jobResult.runId = record.id;
  } catch (journalErr) {
    deps.logger.warn(
      `could not record the copy of ${job} in the journal: ${describeFailure(journalErr).message}`,
    );
  }
  return jobResult;
}

/**
 * The newest already-copied snapshot of the same job that started no later
 * than `snapshot` (else the oldest copied one), with its copy: the copier
 * reuses whatever did not change since.
 */
function earlierPair(
  snapshot: SnapshotEntry,
  all: readonly SnapshotEntry[],
  present: ReadonlyMap<string, SnapshotEntry>,
): { source: SnapshotEntry; target: SnapshotEntry } | undefined {
  let best: SnapshotEntry | undefined;
  let fallback: SnapshotEntry | undefined;
  for (const s of all) {
    if (s.job !== snapshot.job || s.id === snapshot.id || !present.has(s.id)) continue;
    if (s.startedAt <= snapshot.startedAt) {
      if (!best || s.startedAt > best.startedAt) best = s;
    } else if (!fallback || s.startedAt < fallback.startedAt) fallback = s;
  }
  const source = best ?? fallback;
  return source ? { source, target: present.get(source.id)! } : undefined;
}

/** The `copy` activity of `run --due`: the job's restore points from `from` into the activity's repository. */
export const copyActivity: ActivityExecutor = async (activity, { config, deps, onProgress }) => {
  if (!activity.job || !activity.from) throw new Error(`copy activity ${activity.id} names no job or source`);
  let result: CopyResult;
  try {
    result = await copyRestorePoints(
      config,
      {
        from: activity.from,
        to: activity.repository,
        jobs: [activity.job],
        dryRun: false,
        ...(onProgress ? { onProgress } : {}),
      },
      deps,
    );
  } catch (error) {
    const summary = summarizeFailure(error);
    return {
      outcome: failureOutcome(error) === 'interrupted' ? 'interrupted' : 'failure',
      exitCode: summary.exitCode,
      summary: `copy to ${activity.repository} failed: ${summary.message}`,
      runIds: [],
      snapshotIds: [],
      error: describeFailure(error),
    };
  }
  const r = result.jobs[0];
  if (!r) throw new Error(`no copy result for job ${activity.job}`);
  const warnings = r.immutability && r.immutability.state !== 'locked' ? [r.immutability.reason] : [];
  const ok = r.outcome === 'success';
  return {
    outcome: r.outcome,
    exitCode: ok ? 0 : (r.error?.exitCode ?? 1),
    summary: ok
      ? `${r.copied.length} restore point${r.copied.length === 1 ? '' : 's'} copied from ${activity.from} to ${activity.repository}` +
        ` (${r.skipped} already there, ${r.stats.newBytes} new bytes)`
      : `copy to ${activity.repository} ${r.outcome} after ${r.copied.length} restore points: ${r.error?.message ?? 'unknown error'}`,
    runIds: r.runId ? [r.runId] : [],
    snapshotIds: r.copied.flatMap((c) => (c.targetId ? [c.targetId] : [])),
    stats: { copied: r.copied.length, skipped: r.skipped, ...r.stats },
    ...(r.error ? { error: r.error } : {}),
    warnings,
  };
};

/** The newest restore point of a job in one repository. */
export interface NewestRestorePoint {
  snapshotId: string;
  startedAt: string;
  endedAt: string;
  /** Set when the restore point is a copy. */
  copiedFrom?: { repository: string; snapshot: string };
}

/** Per job, per repository: the newest restore point; unreachable repositories are listed apart. */
export interface FreshnessByRepository {
  jobs: Record<string, Record<string, NewestRestorePoint | undefined>>;
  /** Repositories that could not be listed: their freshness is unknown, not absent. */
  unreachable: Array<{ repository: string; error: FailureSummary }>;
}

/**
 * job → repository → newest restore point, from listSnapshotsByRepository.
 * Partial snapshots do not count unless asked (they miss files). A job with
 * no restore point in a reachable repository maps that repository to
 * undefined when the job is listed in `jobs`.
 */
export function newestPerRepository(
  listings: readonly RepositorySnapshots[],
  opts: { jobs?: readonly string[]; includePartial?: boolean } = {},
): FreshnessByRepository {
  const out: FreshnessByRepository = { jobs: {}, unreachable: [] };
  for (const job of opts.jobs ?? []) out.jobs[job] = {};
  for (const listing of listings) {
    if (listing.error) {
      out.unreachable.push({ repository: listing.repository, error: listing.error });
      continue;
    }
    for (const job of opts.jobs ?? []) out.jobs[job]![listing.repository] = undefined;
    for (const s of listing.snapshots) {
      if (s.partial && !opts.includePartial) continue;
      if (opts.jobs && !opts.jobs.includes(s.job)) continue;
      const perRepo = (out.jobs[s.job] ??= {});
      const had = perRepo[listing.repository];
      if (had && had.startedAt >= s.startedAt) continue;
      perRepo[listing.repository] = {
        snapshotId: s.id,
        startedAt: s.startedAt,
        endedAt: s.endedAt,
        ...(s.copiedFrom ? { copiedFrom: s.copiedFrom } : {}),
      };
    }
  }
  return out;
}
