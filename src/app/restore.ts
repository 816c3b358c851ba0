import type { JobConfig, LifeboatConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { UsageError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import { registerSecret } from '../platform/redact.js';
import type { Repo, SnapshotEntry } from '../repository/api.js';
import type { Repository } from '../repository/repository.js';
import type { DatabaseRestoreResult } from '../sources/database/index.js';
import { restoreTree, type OverwriteMode, type RestoreResult } from '../sources/files/index.js';
import { restoreImage, type ImageRestoreResult } from '../sources/image/index.js';
import { restoreMysql } from '../sources/mysql/index.js';
import { restorePostgres } from '../sources/postgres/index.js';
import type { Deps, ProgressListener } from './deps.js';
import { restoreSnapshotJob, type SnapshotRestoreSource } from './kinds/snapshot.js';
import { locateSnapshot } from './snapshots.js';

/** Options of `lifeboat restore`; which ones apply depends on the job kind. */
export interface RestoreJobOptions {
  job: string;
  /** `latest`, a snapshot ID or unique prefix. */
  snapshot: string;
  /** Newest snapshot at or before this time instead of `snapshot`. */
  atMs?: number;
  repository?: string;
  /** snapshot: restore from the repository even when an intact local snapshot exists. */
  fromRepository?: boolean;
  dryRun: boolean;
  onProgress?: ProgressListener;
  /** files, snapshot: directory; image: image file or device. */
  target?: string;
  /** files, snapshot */
  include?: string[];
  overwrite?: OverwriteMode;
  /** image */
  toDevice?: boolean;
  /** image: replace an existing target file; databases: restore over the backed-up database itself. */
  force?: boolean;
  /** databases: DSN (or a secret reference env:/file:/command: holding one) of the server to restore into. */
  into?: string;
  database?: string;
  /** databases: name of the target database (one database only). */
  targetDatabase?: string;
  create?: boolean;
  clean?: boolean;
  globals?: boolean;
  jobs?: number;
}

interface Common {
  job: string;
  repository: string;
  snapshotId: string;
  snapshotTime: string;
  dryRun: boolean;
  durationMs: number;
}

export type RestoreJobResult =
  | (Common & { kind: 'files'; target: string; files: RestoreResult })
  | (Common & { kind: 'snapshot'; target: string; files: RestoreResult } & SnapshotRestoreSource)
  | (Common & { kind: 'image'; target: string; image?: ImageRestoreResult })
  | (Common & { kind: 'postgres' | 'mysql'; database: DatabaseRestoreResult });

/** Restore a restore point of a job: into a directory, an image/device, or a database server. */
export async function restoreJob(
  config: LifeboatConfig,
  opts: RestoreJobOptions,
  deps: Deps,
): Promise<RestoreJobResult> {
  const job = config.jobs[opts.job];
  if (!job) {
    throw new UsageError(`unknown job '${opts.job}'`, {
      hint: `Configured jobs: ${Object.keys(config.jobs).join(', ')}.`,
    });
  }
  checkOptions(job, opts);
  const located = await locateSnapshot(
    config,
    {
      ref: opts.snapshot,
      job: opts.job,
      ...(opts.repository ? { repository: opts.repository } : {}),
      ...(opts.atMs !== undefined ? { atMs: opts.atMs } : {}),
    },
    deps,
  );
  const { repo, snapshot } = located;
  const t0 = monotonicMs();
  try {
    deps.logger.info(
      `restoring snapshot ${snapshot.id.slice(0, 12)} (${snapshot.endedAt}) of ${opts.job} from repository ${located.repositoryName}`,
    );
    const lock = await repo.lock({ exclusive: false, purpose: `restore of ${opts.job}` });
    try {
      const common = (): Common => ({
        job: opts.job,
        repository: located.repositoryName,
        snapshotId: snapshot.id,
        snapshotTime: snapshot.endedAt,
        dryRun: opts.dryRun,
        durationMs: monotonicMs() - t0,
      });
      switch (job.kind) {
        case 'files': {
          const files = await restoreFilesInto(repo, snapshot, opts, deps);
          return { ...common(), kind: 'files', target: opts.target!, files };
        }
        case 'snapshot': {
          const restored = await restoreSnapshotJob(
            opts.job,
            job,
            repo,
            snapshot,
            {
              ...(opts.fromRepository
                ? { forceRepository: '--from-repository was given' }
                : opts.repository
                  ? { forceRepository: `--repository ${opts.repository} was given` }
                  : {}),
              restore: (from) => restoreFilesInto(from, snapshot, opts, deps),
            },
            deps,
          );
          return { ...common(), kind: 'snapshot', target: opts.target!, ...restored };
        }
        case 'image': {
          if (opts.dryRun) return { ...common(), kind: 'image', target: opts.target! };
          const image = await restoreImage(repo, snapshot.tree, opts.target!, {
            toDevice: opts.toDevice ?? false,
            force: opts.force ?? false,
            logger: deps.logger,
            ...(deps.signal ? { signal: deps.signal } : {}),
            onProgress: (p) => opts.onProgress?.({ job: opts.job, phase: 'restore', ...p }),
          });
          return { ...common(), kind: 'image', target: opts.target!, image };
        }
        case 'postgres':
        case 'mysql': {
          const database = await restoreDatabase(job.kind, repo, snapshot, opts, deps);
          return { ...common(), kind: job.kind, database };
        }
      }
    } finally {
      await lock.release();
    }
  } finally {
    await repo.close();
  }
}

/** Reject options that do not fit the job's kind before anything is opened. */
function checkOptions(job: JobConfig, opts: RestoreJobOptions): void {
  const isDb = job.kind === 'postgres' || job.kind === 'mysql';
  if (isDb && !opts.into) {
    throw new UsageError(`restoring ${job.kind} job '${opts.job}' needs --into DSN`, {
      hint: `e.g. --into ${job.kind === 'postgres' ? 'postgres://user@host:5432/' : 'mysql://root@127.0.0.1:3306/'} (or --into env:NAME)`,
    });
  }
  if (!isDb && !opts.target) {
    throw new UsageError(`restoring ${job.kind} job '${opts.job}' needs --target`, {
      hint:
        job.kind === 'image'
          ? 'Name an image file (or a device with --to-device).'
          : 'Name an empty directory.',
    });
  }
  if (!isDb && opts.into)
    throw new UsageError(`--into is for database jobs; '${opts.job}' is a ${job.kind} job`);
  if (isDb && opts.target) throw new UsageError(`--target is not for database jobs; use --into DSN`);
  if (opts.fromRepository && job.kind !== 'snapshot') {
    throw new UsageError(`--from-repository is for snapshot jobs; '${opts.job}' is a ${job.kind} job`, {
      hint: 'Other jobs always restore from a repository.',
    });
  }
}

function restoreFilesInto(
  repo: Repo,
  snapshot: SnapshotEntry,
  opts: RestoreJobOptions,
  deps: Deps,
): Promise<RestoreResult> {
  return restoreTree(repo, snapshot.tree, opts.target!, {
    include: opts.include ?? [],
    overwrite: opts.overwrite ?? 'never',
    dryRun: opts.dryRun,
    logger: deps.logger,
    ...(deps.signal ? { signal: deps.signal } : {}),
    onProgress: (p) =>
      opts.onProgress?.({
        job: opts.job,
        phase: 'restore',
        ...p,
        totalBytes: snapshot.stats.bytes,
        totalFiles: snapshot.stats.files,
      }),
  });
}

async function restoreDatabase(
  kind: 'postgres' | 'mysql',
  repo: Repository,
  snapshot: SnapshotEntry,
  opts: RestoreJobOptions,
  deps: Deps,
): Promise<DatabaseRestoreResult> {
  const into = /^(env|file|command):/.test(opts.into!)
    ? await resolveSecret(opts.into!, { env: deps.env, what: '--into' })
    : opts.into!;
  registerDsnPassword(into);
  const common = {
    into: { dsn: into },
    ...(opts.database ? { database: opts.database } : {}),
    ...(opts.targetDatabase ? { target: opts.targetDatabase } : {}),
    create: opts.create ?? false,
    clean: opts.clean ?? false,
    globals: opts.globals ?? false,
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
    force: opts.force ?? false,
    dryRun: opts.dryRun,
    logger: deps.logger,
  };
  return kind === 'postgres' ? restorePostgres(repo, snapshot, common) : restoreMysql(repo, snapshot, common);
}

/** A password typed into a DSN on the command line must never be echoed back. */
function registerDsnPassword(dsn: string): void {
  try {
    const url = new URL(dsn);
    if (url.password) registerSecret(decodeURIComponent(url.password));
  } catch {
    const m = /password\s*=\s*('([^']*)'|(\S+))/.exec(dsn);
    if (m) registerSecret(m[2] ?? m[3]);
  }
}
