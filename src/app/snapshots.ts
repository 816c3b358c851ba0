import type { LifeboatConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { Repository } from '../repository/repository.js';
import type { LocalSnapshot } from '../sources/snapshot/index.js';
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

/** A local restore point (location `local`) as `lifeboat snapshots` lists it. */
export interface LocalRestorePoint extends LocalSnapshot {
  /** The repository snapshots backed up from it (the original and copies), in the repositories listed. */
  repositorySnapshots: { repository: string; id: string }[];
  /** quick: the provider's check only (exists, read-only, not overflowed); full: also compared with the backup's tree. */
  checked: 'quick' | 'full';
  /** Usable for a restore as far as checked; false with `problem` saying why. */
  intact: boolean;
}

export interface JobLocalSnapshots {
  job: string;
  /** Newest first. */
  snapshots: LocalRestorePoint[];
  /** Set when the job's local snapshots could not be listed. */
  error?: FailureSummary;
}

/** Snapshot jobs whose local snapshots to list: the named one, or every one that keeps some. */
function snapshotJobsToList(config: LifeboatConfig, job?: string): string[] {
  if (job) return config.jobs[job]?.kind === 'snapshot' ? [job] : [];
  return Object.entries(config.jobs)
    .filter(([, j]) => j.kind === 'snapshot' && j.keepLocal > 0)
    .map(([name]) => name);
}

/**
 * The local restore points of snapshot jobs (keepLocal), matched with the
 * repository snapshots made from them. With `verify` each one is compared
 * with its repository snapshot's tree, as restore does before using it.
 */
export async function listLocalRestorePoints(
  config: LifeboatConfig,
  opts: { job?: string; verify?: boolean },
  repositories: readonly RepositorySnapshots[],
  deps: Deps,
): Promise<JobLocalSnapshots[]> {
  const out: JobLocalSnapshots[] = [];
  const names = snapshotJobsToList(config, opts.job);
  if (names.length === 0) return out;
  // Imported only when there are local snapshots to list: the snapshot kind brings every source
  // (files, databases) with it, which cost every `snapshots` and `ls` about 10 MiB of memory.
  const [{ backupNameOf, listLocalSnapshots }, { localSnapshotSpec }] = await Promise.all([
    import('../sources/snapshot/index.js'),
    import('./kinds/snapshot.js'),
  ]);
  for (const name of names) {
    const job = config.jobs[name];
    if (job?.kind !== 'snapshot') continue;
    try {
      const spec = localSnapshotSpec(name, job);
      const ctx = { logger: deps.logger, env: deps.env };
      const points: LocalRestorePoint[] = [];
      for (const local of await listLocalSnapshots(spec, ctx, { check: true })) {
        const made = repositories.flatMap((r) =>
          r.snapshots
            .filter((s) => s.job === name && backupNameOf(s) === local.backupName)
            .map((s) => ({ repository: r.repository, entry: s })),
        );
        const point: LocalRestorePoint = {
          ...local,
          repositorySnapshots: made.map((m) => ({ repository: m.repository, id: m.entry.id })),
          checked: 'quick',
          intact: local.problem === undefined,
        };
        if (opts.verify && point.intact)
          Object.assign(point, await verifyLocal(config, name, job, made[0], deps));
        points.push(point);
      }
      out.push({ job: name, snapshots: points });
    } catch (err) {
      out.push({ job: name, snapshots: [], error: summarizeFailure(err) });
    }
  }
  return out;
}

/** Compare one local snapshot with the tree of the repository snapshot made from it. */
async function verifyLocal(
  config: LifeboatConfig,
  name: string,
  job: Extract<LifeboatConfig['jobs'][string], { kind: 'snapshot' }>,
  made: { repository: string; entry: SnapshotEntry } | undefined,
  deps: Deps,
): Promise<Pick<LocalRestorePoint, 'checked' | 'intact' | 'problem'>> {
  if (!made) {
    return {
      checked: 'quick',
      intact: false,
      problem: 'no repository snapshot listed here was made from it, so there is nothing to compare it with',
    };
  }
  const [{ chooseLocalSnapshot }, { localSnapshotSpec }] = await Promise.all([
    import('../sources/snapshot/index.js'),
    import('./kinds/snapshot.js'),
  ]);
  const repo = await openConfiguredRepository(config, made.repository, deps);
  try {
    const choice = await chooseLocalSnapshot({
      spec: localSnapshotSpec(name, job),
      paths: job.paths,
      repo,
      snapshot: made.entry,
      host: deps.host,
      ctx: { logger: deps.logger, env: deps.env },
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    if (choice.use) {
      await choice.opened.close();
      return { checked: 'full', intact: true };
    }
    return { checked: 'full', intact: false, problem: choice.reason };
  } finally {
    await repo.close();
  }
}
