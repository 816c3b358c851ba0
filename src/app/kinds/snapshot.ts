import type { LifeboatConfig, SnapshotJob } from '../../config/schema.js';
import { UsageError } from '../../errors.js';
import { registerCleanup } from '../../platform/cleanup.js';
import type { Repo, SnapshotEntry } from '../../repository/api.js';
import type { Repository } from '../../repository/repository.js';
import type { RestoreResult } from '../../sources/files/index.js';
import { mysqlQuiesce, type MysqlConnectionSpec } from '../../sources/mysql/index.js';
import { postgresQuiesce, type PgConnectionSpec } from '../../sources/postgres/index.js';
import {
  backupSnapshot,
  chooseLocalSnapshot,
  LocalFirstRepo,
  type DatabaseQuiesce,
  type LocalCandidate,
  type LocalTreeCheck,
  type SnapshotJobSpec,
} from '../../sources/snapshot/index.js';
import type { Deps } from '../deps.js';
import { resolveConnection } from './databases.js';
import { backupTreeOfFiles } from './files.js';
import type { SourceContext, SourceOutcome } from './types.js';

/** The snapshot job as listing and restoring its local snapshots need it (no quiesce, nothing resolved). */
export function localSnapshotSpec(name: string, job: SnapshotJob): SnapshotJobSpec {
  if (!job.source) throw new UsageError(`job '${name}': set \`source\` to the path the snapshot stands for`);
  return {
    job: name,
    provider: job.provider,
    source: job.source,
    keepLocal: job.keepLocal,
    ...(job.lvm ? { lvm: job.lvm } : {}),
    ...(job.zfs ? { zfs: job.zfs } : {}),
  };
}

/** The snapshot job as the sources layer needs it, with secrets resolved and the database quiesce bound. */
export async function snapshotSpec(
  config: LifeboatConfig,
  name: string,
  job: SnapshotJob,
  env: NodeJS.ProcessEnv,
): Promise<SnapshotJobSpec> {
  if (!job.source) {
    throw new UsageError(`job '${name}': set \`source\` to the path the snapshot stands for`, {
      hint:
        job.provider === 'btrfs'
          ? 'For btrfs, source is the subvolume to snapshot, e.g. /srv/data.'
          : 'For lvm and zfs, source is where the volume or dataset is mounted, e.g. /srv/data.',
    });
  }
  const spec: SnapshotJobSpec = {
    job: name,
    provider: job.provider,
    source: job.source,
    keepLocal: job.keepLocal,
    ...(job.lvm ? { lvm: job.lvm } : {}),
    ...(job.zfs ? { zfs: job.zfs } : {}),
  };
  if (job.quiesce) {
    spec.quiesce = {
      before: job.quiesce.before,
      after: job.quiesce.after,
      fsfreeze: job.quiesce.fsfreeze,
      ...(job.quiesce.database ? { database: await databaseQuiesce(config, job.quiesce.database, env) } : {}),
    };
  }
  return spec;
}

async function databaseQuiesce(
  config: LifeboatConfig,
  jobName: string,
  env: NodeJS.ProcessEnv,
): Promise<DatabaseQuiesce> {
  const db = config.jobs[jobName];
  if (db?.kind === 'postgres') {
    return postgresQuiesce((await resolveConnection(db.connection, env)) as PgConnectionSpec);
  }
  if (db?.kind === 'mysql') {
    return mysqlQuiesce((await resolveConnection(db.connection, env)) as MysqlConnectionSpec);
  }
  throw new UsageError(`quiesce.database names '${jobName}', which is not a postgres or mysql job`);
}

/** `kind: snapshot` — a consistent filesystem snapshot, backed up with the files machinery. */
export async function backupSnapshotJob(
  repo: Repository,
  job: SnapshotJob,
  ctx: SourceContext,
): Promise<SourceOutcome> {
  const spec = await snapshotSpec(ctx.config, ctx.jobName, job, ctx.deps.env);
  const source = spec.source;
  const subPaths = job.paths.length ? job.paths.map((p) => `${source}/${p}`) : [source];
  const result = await backupSnapshot(repo, spec, {
    logger: ctx.deps.logger,
    clock: ctx.deps.clock,
    env: ctx.deps.env,
    ...(ctx.deps.signal ? { signal: ctx.deps.signal } : {}),
    backupTree: async (dir, displayPath, hints) => {
      const tree = await backupTreeOfFiles(
        repo,
        {
          paths: subPaths,
          include: [],
          exclude: [...job.exclude, ...hints.exclude.map((p) => p.replace(/^\//, ''))],
          oneFileSystem: true,
          xattrs: false,
          readFrom: { physical: dir, logical: displayPath },
        },
        ctx,
      );
      // Store every pending pack before the snapshot is removed. Besides making the data durable first, this
      // keeps the removal command cheap: spawning a process forks this one, after which Linux takes a
      // copy-on-write fault on every page the parent writes again. Spawned in the middle of the pack uploads,
      // it cost ~35,000 faults per 300 MiB (docs/performance.md, snapshot job overhead); after them, little
      // memory is written again.
      await repo.flush();
      return tree;
    },
  });
  const warnings = [...result.warnings, ...result.cleanupWarnings];
  return { ...result, paths: [source], warnings, fingerprint: { ...result.fingerprint } };
}

/** Where a snapshot job's restore read its data, and why not from the local snapshot. */
export interface SnapshotRestoreSource {
  /** local: file data from the kept local snapshot (trees from the repository); repository: everything from the repository. */
  source: 'local' | 'repository';
  /** The local snapshot used or considered. */
  localSnapshot?: LocalCandidate & {
    /** The intactness check (docs/snapshots-and-images.md § Local restore points). */
    check?: { entries: number; durationMs: number; problem?: string };
    /** source local: chunks read from it, and from the repository because they differed (not on a dry run). */
    chunks?: { local: number; localBytes: number; repository: number; repositoryBytes: number };
    /** Files whose data in the local snapshot differed from the backup (first few). */
    differing?: string[];
  };
  /** source repository: why the local snapshot was not used. */
  localNotUsed?: string;
}

export interface SnapshotRestoreOptions {
  /** --from-repository, or --repository NAME: never use a local snapshot. */
  forceRepository?: string;
  /** Restore the tree through `repo` (the repository, or the local-first view of it). */
  restore: (repo: Repo) => Promise<RestoreResult>;
}

/**
 * Restore a snapshot job's restore point: from its local snapshot when that
 * is on this machine and intact (no file data from the repository), else
 * from the repository, saying why. The repository provides the trees
 * (metadata) in both cases.
 */
export async function restoreSnapshotJob(
  name: string,
  job: SnapshotJob,
  repo: Repository,
  snapshot: SnapshotEntry,
  opts: SnapshotRestoreOptions,
  deps: Deps,
): Promise<{ files: RestoreResult } & SnapshotRestoreSource> {
  if (opts.forceRepository) {
    return { files: await opts.restore(repo), source: 'repository', localNotUsed: opts.forceRepository };
  }
  const spec = localSnapshotSpec(name, job);
  const choice = await chooseLocalSnapshot({
    spec,
    paths: job.paths,
    repo,
    snapshot,
    host: deps.host,
    ctx: { logger: deps.logger, env: deps.env },
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  const checkOf = (c: LocalTreeCheck | undefined) =>
    c && { entries: c.entries, durationMs: c.durationMs, ...(c.problem ? { problem: c.problem } : {}) };
  if (!choice.use) {
    deps.logger.info(`not restoring from the local snapshot: ${choice.reason}`);
    const check = checkOf(choice.check);
    return {
      files: await opts.restore(repo),
      source: 'repository',
      localNotUsed: choice.reason,
      ...(choice.local ? { localSnapshot: { ...choice.local, ...(check ? { check } : {}) } } : {}),
    };
  }
  deps.logger.info(
    `restoring from local snapshot ${choice.local.name} at ${choice.opened.path} ` +
      `(intact: ${choice.check.entries} entries checked in ${choice.check.durationMs} ms)`,
  );
  // An interrupted restore must not leave an LVM snapshot mounted.
  const unregister = registerCleanup(`local snapshot ${choice.local.name}`, () => choice.opened.close());
  try {
    const view = new LocalFirstRepo(repo, snapshot.tree, choice.opened.path, spec.source, deps.logger);
    const files = await opts.restore(view);
    const s = view.stats;
    return {
      files,
      source: 'local',
      localSnapshot: {
        ...choice.local,
        path: choice.opened.path,
        check: checkOf(choice.check)!,
        chunks: {
          local: s.localChunks,
          localBytes: s.localBytes,
          repository: s.repositoryChunks,
          repositoryBytes: s.repositoryBytes,
        },
        ...(s.differing.length ? { differing: s.differing } : {}),
      },
    };
  } finally {
    unregister();
    await choice.opened.close();
  }
}
