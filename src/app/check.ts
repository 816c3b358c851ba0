import type { LifeboatConfig } from '../config/schema.js';
import { monotonicMs } from '../platform/clock.js';
import {
  checkRepository,
  describeReadData,
  summarizeCheck,
  type CheckReport,
  type ReadDataSelection,
} from '../repository/check.js';
import type { JournalError } from '../repository/journal.js';
import type { Repository } from '../repository/repository.js';
import type { Deps, ProgressListener } from './deps.js';
import { addImmutabilityFindings, checkImmutability } from './immutability.js';
import { openConfiguredRepository, repositoryConfig } from './repositories.js';
import { describeFailure, failureOutcome, isoTime } from './runRecord.js';

export interface CheckOptions {
  /** One configured repository; all of them when absent. */
  repository?: string;
  readData: ReadDataSelection;
  onProgress?: ProgressListener;
}

/** The check of one repository: the report, or why it could not run. */
export interface RepositoryCheckResult {
  repository: string;
  url?: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** Absent when the check could not run (repository unreachable, locked, storage failing). */
  report?: CheckReport;
  error?: JournalError;
  /** Journal run ID of the `check` record. */
  runId?: string;
}

/** The repositories a maintenance command works on: the named one, or every configured one. */
export function maintenanceTargets(config: LifeboatConfig, name: string | undefined): string[] {
  if (name) {
    repositoryConfig(config, name);
    return [name];
  }
  return Object.keys(config.repositories);
}

/**
 * Check each repository under a shared lock (backups may run meanwhile) and
 * record a `check` journal record with the outcome. Problems found are a
 * result, not an exception: the caller decides the exit code.
 */
export async function checkRepositories(
  config: LifeboatConfig,
  opts: CheckOptions,
  deps: Deps,
): Promise<RepositoryCheckResult[]> {
  const results: RepositoryCheckResult[] = [];
  for (const name of maintenanceTargets(config, opts.repository)) {
    results.push(await checkOne(config, name, opts, deps));
    if (deps.signal?.aborted) break;
  }
  return results;
}

async function checkOne(
  config: LifeboatConfig,
  name: string,
  opts: CheckOptions,
  deps: Deps,
): Promise<RepositoryCheckResult> {
  const startedMs = deps.clock.now();
  const t0 = monotonicMs();
  const finish = () => ({ endedAt: isoTime(deps.clock.now()), durationMs: monotonicMs() - t0 });
  const base = { repository: name, startedAt: isoTime(startedMs) };
  let repo: Repository;
  try {
    repo = await openConfiguredRepository(config, name, deps);
  } catch (err) {
    return { ...base, error: describeFailure(err), ...finish() };
  }
  try {
    let report: CheckReport;
    try {
      const lock = await repo.lock({ exclusive: false, purpose: 'check' });
      try {
        const structural = await checkRepository(repo, {
          readData: opts.readData,
          ...(deps.signal ? { signal: deps.signal } : {}),
          onProgress: (p) =>
            opts.onProgress?.({
              job: name,
              phase: `check: ${p.phase}`,
              files: p.done,
              bytes: p.bytes,
              ...(p.total === undefined ? {} : { totalFiles: p.total }),
              ...(p.totalBytes === undefined ? {} : { totalBytes: p.totalBytes }),
            }),
        });
        // Restore points under a policy's immutableFor must also be locked long enough.
        const immutability = await checkImmutability(config, name, repo, deps.clock.now(), {
          ...(deps.signal ? { signal: deps.signal } : {}),
        });
        addImmutabilityFindings(structural, immutability);
        report = structural;
      } finally {
        await lock.release();
      }
    } catch (err) {
      const error = describeFailure(err);
      const runId = await recordCheck(repo, deps, {
        startedAt: base.startedAt,
        outcome: failureOutcome(err),
        error,
        details: { repository: name, readData: describeReadData(opts.readData) },
      });
      return { ...base, url: repo.url, error, ...(runId ? { runId } : {}), ...finish() };
    }
    const runId = await recordCheck(repo, deps, {
      startedAt: base.startedAt,
      outcome: report.ok ? 'success' : 'failure',
      ...(report.ok
        ? {}
        : {
            error: {
              code: 'E_INTEGRITY',
              message: `${summarizeCheck(report)}: ${report.problems[0]!.message}`,
              hint: 'Run `lifeboat check` to see every problem and the snapshots it affects.',
            },
          }),
      stats: {
        snapshots: report.stats.snapshots,
        packs: report.stats.packs,
        blobs: report.stats.blobs,
        packsRead: report.stats.packsRead,
        bytesRead: report.stats.bytesRead,
        problems: report.problems.length,
        affectedSnapshots: report.affectedSnapshots.length,
      },
      details: {
        repository: name,
        readData: describeReadData(opts.readData),
        // Enough to act on without flooding the journal: the first problems and every affected snapshot.
        problems: report.problems
          .slice(0, 20)
          .map((p) => ({ kind: p.kind, object: p.object, message: p.message })),
        affectedSnapshots: report.affectedSnapshots.map((s) => s.id),
      },
    });
    return { ...base, url: repo.url, report, ...(runId ? { runId } : {}), ...finish() };
  } finally {
    await repo.close();
  }
}

async function recordCheck(
  repo: Repository,
  deps: Deps,
  record: {
    startedAt: string;
    outcome: 'success' | 'failure' | 'interrupted' | 'partial';
    error?: JournalError;
    stats?: Record<string, number>;
    details: Record<string, unknown>;
  },
): Promise<string | undefined> {
  try {
    const r = await repo.appendJournal({ kind: 'check', endedAt: isoTime(deps.clock.now()), ...record });
    return r.id;
  } catch (err) {
    deps.logger.warn(`could not record the check in the journal: ${describeFailure(err).message}`);
    return undefined;
  }
}
