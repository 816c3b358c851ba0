import type { LifeboatConfig } from '../config/schema.js';
import { RepositoryLockedError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import type { JournalError } from '../repository/journal.js';
import type { RepositoryLock } from '../repository/locks.js';
import { planPrune, type PruneOutcome, type PruneSummary } from '../repository/prune.js';
import type { Repository } from '../repository/repository.js';
import { maintenanceTargets } from './check.js';
import type { Deps, ProgressListener } from './deps.js';
import { openConfiguredRepository } from './repositories.js';
import { describeFailure, failureOutcome, isoTime } from './runRecord.js';

export interface PruneOptions {
  /** One configured repository; all of them when absent. */
  repository?: string;
  /** Report what would be deleted and repacked; change nothing. */
  dryRun: boolean;
  /** Repack packs with more than this share (0–1) of unused bytes. */
  maxUnused?: number;
  /** Unindexed packs younger than this (ms) are kept: a backup elsewhere may have just uploaded them. */
  leftoverMinAgeMs?: number;
  /** Wait up to this long (ms) for other locks to go away instead of failing at once. */
  waitMs?: number;
  onProgress?: ProgressListener;
}

/** Prune of one repository. */
export interface RepositoryPruneResult {
  repository: string;
  url: string;
  dryRun: boolean;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** The plan (dry run) or what was done. */
  summary: PruneSummary | PruneOutcome;
  runId?: string;
}

const LOCK_RETRY_MS = 5_000;

/**
 * Take a lock, retrying while another process holds a conflicting one for
 * up to `waitMs`. The final conflict is explained (see explainLockConflict).
 */
export async function lockWithWait(
  repo: Repository,
  opts: { exclusive: boolean; purpose: string; waitMs?: number },
  deps: Deps,
): Promise<RepositoryLock> {
  const deadline = monotonicMs() + (opts.waitMs ?? 0);
  for (;;) {
    try {
      return await repo.lock({ exclusive: opts.exclusive, purpose: opts.purpose });
    } catch (err) {
      if (!(err instanceof RepositoryLockedError)) throw err;
      const left = deadline - monotonicMs();
      if (left <= 0) throw explainLockConflict(err, deps.host);
      deps.logger.info(`${err.message}; waiting (up to ${Math.ceil(left / 1000)} s more)`);
      await sleep(Math.min(LOCK_RETRY_MS, left), deps.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Is a process with this pid running on this machine? (EPERM: yes, but not ours.) */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A lock held by a process of this host that no longer exists (killed,
 * crashed) stays until it turns stale; say so, since then `repo unlock` is
 * safe now rather than in 30 minutes. Other conflicts are returned as they are.
 */
export function explainLockConflict(err: RepositoryLockedError, host: string): RepositoryLockedError {
  const locks = (err.details?.locks ?? []) as { host?: string; pid?: number }[];
  const dead = locks.filter((l) => l.host === host && typeof l.pid === 'number' && !processAlive(l.pid));
  if (dead.length === 0 || dead.length !== locks.length) return err;
  const pids = dead.map((l) => l.pid).join(', ');
  return new RepositoryLockedError(err.message, {
    hint:
      `The process holding the lock (pid ${pids} on this host, ${host}) no longer exists: it was killed or crashed. ` +
      'If no other lifeboat process uses the repository, remove its lock with `lifeboat repo unlock --all`.',
    ...(err.details ? { details: err.details } : {}),
    cause: err,
  });
}

/** Prune each repository (the named one, or every configured one). */
export async function pruneRepositories(
  config: LifeboatConfig,
  opts: PruneOptions,
  deps: Deps,
): Promise<RepositoryPruneResult[]> {
  const results: RepositoryPruneResult[] = [];
  for (const name of maintenanceTargets(config, opts.repository)) {
    results.push(await pruneRepository(config, name, opts, deps));
    if (deps.signal?.aborted) break;
  }
  return results;
}

/**
 * Prune one repository: exclusive lock (a dry run only needs a shared one,
 * since it changes nothing), plan, execute, journal record. Errors are thrown
 * (after a `prune` failure record when the repository could be opened).
 */
export async function pruneRepository(
  config: LifeboatConfig,
  name: string,
  opts: PruneOptions,
  deps: Deps,
): Promise<RepositoryPruneResult> {
  const startedAt = isoTime(deps.clock.now());
  const t0 = monotonicMs();
  const repo = await openConfiguredRepository(config, name, deps);
  try {
    let lock: RepositoryLock;
    try {
      lock = await lockWithWait(
        repo,
        {
          exclusive: !opts.dryRun,
          purpose: opts.dryRun ? 'prune --dry-run' : 'prune',
          waitMs: opts.waitMs ?? 0,
        },
        deps,
      );
    } catch (err) {
      // A prune that could not start is evidence too (e.g. a lock left by a killed backup blocks every prune).
      if (!opts.dryRun)
        await recordPrune(repo, deps, startedAt, failureOutcome(err), describeFailure(err), name);
      throw err;
    }
    let summary: PruneSummary | PruneOutcome;
    try {
      const plan = await planPrune(repo, {
        now: deps.clock.now(),
        ...(opts.maxUnused === undefined ? {} : { maxUnused: opts.maxUnused }),
        ...(opts.leftoverMinAgeMs === undefined ? {} : { leftoverMinAgeMs: opts.leftoverMinAgeMs }),
        ...(deps.signal ? { signal: deps.signal } : {}),
        assertLocked: () => lock.assertHeld(),
        onProgress: (p) =>
          opts.onProgress?.({
            job: name,
            phase: `prune: ${p.phase}`,
            files: p.done,
            bytes: p.bytes,
            ...(p.total === undefined ? {} : { totalFiles: p.total }),
            ...(p.totalBytes === undefined ? {} : { totalBytes: p.totalBytes }),
          }),
      });
      summary = opts.dryRun ? plan.summary : await plan.execute();
    } catch (err) {
      if (!opts.dryRun)
        await recordPrune(repo, deps, startedAt, failureOutcome(err), describeFailure(err), name);
      throw err;
    } finally {
      await lock.release();
    }
    let runId: string | undefined;
    if (!opts.dryRun)
      runId = await recordPrune(repo, deps, startedAt, 'success', undefined, name, summary as PruneOutcome);
    return {
      repository: name,
      url: repo.url,
      dryRun: opts.dryRun,
      startedAt,
      endedAt: isoTime(deps.clock.now()),
      durationMs: monotonicMs() - t0,
      summary,
      ...(runId ? { runId } : {}),
    };
  } finally {
    await repo.close();
  }
}

async function recordPrune(
  repo: Repository,
  deps: Deps,
  startedAt: string,
  outcome: 'success' | 'failure' | 'interrupted' | 'partial',
  error: JournalError | undefined,
  name: string,
  done?: PruneOutcome,
): Promise<string | undefined> {
  try {
    const record = await repo.appendJournal({
      kind: 'prune',
      startedAt,
      endedAt: isoTime(deps.clock.now()),
      outcome,
      ...(error ? { error } : {}),
      ...(done
        ? {
            stats: {
              snapshots: done.snapshots,
              packsDeleted: done.packsDeleted,
              packsWritten: done.packsWritten,
              bytesFreed: done.bytesFreed,
              indexFilesWritten: done.indexFilesWritten,
              indexFilesDeleted: done.indexFilesDeleted,
              leftoversDeleted: done.leftovers.delete.length,
            },
          }
        : {}),
      details: {
        repository: name,
        ...(done ? { maxUnused: done.maxUnused, leftoverMinAgeMs: done.leftoverMinAgeMs } : {}),
      },
    });
    return record.id;
  } catch (err) {
    deps.logger.warn(`could not record the prune in the journal: ${describeFailure(err).message}`);
    return undefined;
  }
}
