import type { LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import type { Repository } from '../repository/repository.js';
import { VERSION } from '../version.js';
import type { Deps, ProgressListener } from './deps.js';
import { protectRestorePoints } from './immutability.js';
import { backupSource } from './jobSources.js';
import { jobRepositoryNames, openConfiguredRepository } from './repositories.js';
import {
  describeFailure,
  failureOutcome,
  isoTime,
  summarizeFailure,
  type FailureSummary,
} from './runRecord.js';

export interface BackupOptions {
  /** Jobs to back up; empty means every configured job. */
  jobs: string[];
  /** Extra tags recorded on the snapshots. */
  tags?: string[];
  onProgress?: ProgressListener;
}

/** The outcome of one job's backup. */
export interface JobBackupResult {
  job: string;
  kind: string;
  repository: string;
  outcome: 'success' | 'partial' | 'failure' | 'interrupted';
  snapshotId?: string;
  /** Journal run ID (absent when the repository could not even be opened). */
  runId?: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  stats?: { files: number; dirs: number; bytes: number; addedBytes: number; blobs: number };
  warnings: string[];
  error?: FailureSummary;
}

/** Validate job names against the configuration (all jobs when none are named). */
export function selectJobs(config: LifeboatConfig, names: string[]): string[] {
  const all = Object.keys(config.jobs);
  if (names.length === 0) return all;
  for (const name of names) {
    if (!config.jobs[name]) {
      throw new UsageError(`unknown job '${name}'`, {
        hint: all.length
          ? `Configured jobs: ${all.join(', ')}.`
          : 'Add one under `jobs:` in the configuration.',
      });
    }
  }
  return names;
}

/**
 * Back up each job into its first repository. A failing job never stops the
 * others; every run, failed ones too, is recorded in the repository's journal.
 */
export async function backupJobs(
  config: LifeboatConfig,
  opts: BackupOptions,
  deps: Deps,
): Promise<JobBackupResult[]> {
  const results: JobBackupResult[] = [];
  for (const name of selectJobs(config, opts.jobs)) {
    results.push(await backupJob(config, name, opts, deps));
    if (deps.signal?.aborted) break;
  }
  return results;
}

async function backupJob(
  config: LifeboatConfig,
  name: string,
  opts: BackupOptions,
  deps: Deps,
): Promise<JobBackupResult> {
  const job = config.jobs[name]!;
  const repositoryName = jobRepositoryNames(config, job)[0];
  const startedMs = deps.clock.now();
  const t0 = monotonicMs();
  const base = { job: name, kind: job.kind, repository: repositoryName ?? '', startedAt: isoTime(startedMs) };
  const finish = (): Pick<JobBackupResult, 'endedAt' | 'durationMs'> => ({
    endedAt: isoTime(deps.clock.now()),
    durationMs: monotonicMs() - t0,
  });
  if (!repositoryName) {
    const error = summarizeFailure(new UsageError(`job '${name}' has no repository`));
    return { ...base, outcome: 'failure', warnings: [], error, ...finish() };
  }

  let repo: Repository;
  try {
    repo = await openConfiguredRepository(config, repositoryName, deps);
  } catch (err) {
    return { ...base, outcome: failureOutcome(err), warnings: [], error: summarizeFailure(err), ...finish() };
  }

  try {
    const lock = await repo.lock({ exclusive: false, purpose: `backup of ${name}` });
    try {
      const source = await backupSource(repo, job, {
        config,
        jobName: name,
        deps,
        onProgress: opts.onProgress,
      });
      const endedAt = isoTime(deps.clock.now());
      const snapshotId = await repo.saveSnapshot({
        v: 1,
        job: name,
        kind: job.kind,
        host: deps.host,
        startedAt: base.startedAt,
        endedAt,
        tree: source.tree,
        paths: source.paths,
        tags: [...(job.tags ?? []), ...(opts.tags ?? [])],
        partial: source.partial,
        ...(source.warnings.length ? { warnings: source.warnings } : {}),
        fingerprint: source.fingerprint,
        stats: { ...source.stats, storedBytes: source.stats.addedBytes },
        toolVersion: VERSION,
      });
      const outcome = source.partial ? 'partial' : 'success';
      // A policy's immutableFor: lock the job's kept restore points (logs and returns problems, never throws).
      const immutability = await protectRestorePoints(config, name, repositoryName, repo, deps);
      const record = await repo.appendJournal({
        kind: 'backup',
        job: name,
        startedAt: base.startedAt,
        endedAt,
        outcome,
        stats: { ...source.stats },
        snapshotIds: [snapshotId],
        details: {
          repository: repositoryName,
          warnings: source.warnings.length,
          ...(immutability ? { immutability } : {}),
        },
      });
      return {
        ...base,
        outcome,
        snapshotId,
        runId: record.id,
        stats: source.stats,
        warnings: source.warnings,
        ...finish(),
      };
    } finally {
      await lock.release();
    }
  } catch (err) {
    const error = summarizeFailure(err);
    const outcome = failureOutcome(err);
    const runId = await repo
      .appendJournal({
        kind: 'backup',
        job: name,
        startedAt: base.startedAt,
        endedAt: isoTime(deps.clock.now()),
        outcome,
        error: describeFailure(err),
        details: { repository: repositoryName },
      })
      .then((r) => r.id)
      .catch((journalErr: unknown) => {
        deps.logger.warn(
          `could not record the failed run in the journal: ${summarizeFailure(journalErr).message}`,
        );
        return undefined;
      });
    return { ...base, outcome, warnings: [], error, ...(runId ? { runId } : {}), ...finish() };
  } finally {
    await repo.close();
  }
}
