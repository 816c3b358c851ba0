import type { LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { Repository } from '../repository/repository.js';
import type { Deps } from './deps.js';
import { jobRepositoryNames, openConfiguredRepository, repositoryConfig } from './repositories.js';
import { describeFailure, summarizeFailure, type FailureSummary } from './runRecord.js';

export interface RepositorySnapshots {
  repository: string;
  /** Snapshots oldest first (filtered by job when asked). */
  snapshots: SnapshotEntry[];
  /** Set when the repository could not be opened or listed. */
  error?: FailureSummary;
}

/** Which repositories to look in: the named one, the job's, or all configured ones. */
export function repositoriesToSearch(
  config: LifeboatConfig,
  opts: { repository?: string; job?: string },
): string[] {
  if (opts.repository) {
    repositoryConfig(config, opts.repository);
    return [opts.repository];
  }
  if (opts.job) {
    const job = config.jobs[opts.job];
    if (!job)
      throw new UsageError(`unknown job '${opts.job}'`, {
        hint: `Configured jobs: ${Object.keys(config.jobs).join(', ')}.`,
      });
    return jobRepositoryNames(config, job);
  }
  return Object.keys(config.repositories);
}

/** List snapshots per repository; an unreachable repository is reported, not fatal. */
export async function listSnapshotsByRepository(
  config: LifeboatConfig,
  opts: { repository?: string; job?: string },
  deps: Deps,
): Promise<RepositorySnapshots[]> {
  const out: RepositorySnapshots[] = [];
  for (const name of repositoriesToSearch(config, opts)) {
    try {
      const repo = await openConfiguredRepository(config, name, deps);
      try {
        const all = await repo.listSnapshots();
        out.push({ repository: name, snapshots: opts.job ? all.filter((s) => s.job === opts.job) : all });
      } finally {
        await repo.close();
      }
    } catch (err) {
      out.push({ repository: name, snapshots: [], error: summarizeFailure(err) });
    }
  }
  return out;
}

/** An open repository and a snapshot found in it. */
export interface LocatedSnapshot {
  repositoryName: string;
  repo: Repository;
  snapshot: SnapshotEntry;
}

/**
 * Find a snapshot (`latest`, an ID or prefix, or the newest at or before `at`)
 * in the first reachable repository that has it. The caller closes `repo`.
 */
export async function locateSnapshot(
  config: LifeboatConfig,
  opts: { ref: string; job?: string; repository?: string; atMs?: number },
  deps: Deps,
): Promise<LocatedSnapshot> {
  const names = repositoriesToSearch(config, opts);
  let lastError: unknown;
  for (const name of names) {
    let repo: Repository | undefined;
    try {
      repo = await openConfiguredRepository(config, name, deps);
      const snapshot =
        opts.atMs === undefined
          ? await repo.findSnapshot(opts.ref, opts.job)
          : await newestAt(repo, opts.atMs, opts.job);
      return { repositoryName: name, repo, snapshot };
    } catch (err) {
      await repo?.close();
      lastError = err;
      if (names.length > 1) deps.logger.warn(`repository ${name}: ${describeFailure(err).message}`);
    }
  }
  throw lastError ?? new UsageError('no repository is configured');
}

async function newestAt(repo: Repository, atMs: number, job?: string): Promise<SnapshotEntry> {
  const candidates = (await repo.listSnapshots()).filter(
    (s) => (!job || s.job === job) && Date.parse(s.endedAt) <= atMs,
  );
  const newest = candidates.at(-1);
  if (!newest) {
    throw new UsageError(
      `no snapshot${job ? ` of job '${job}'` : ''} at or before ${new Date(atMs).toISOString()} in ${repo.url}`,
      { hint: 'List what exists with `lifeboat snapshots`.' },
    );
  }
  return newest;
}
