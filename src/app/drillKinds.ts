/**
 * The kind-specific half of a drill: how much room it needs, which scratch environment it
 * gets, how the snapshot is restored into it and how the restored copy is verified.
 *
 * - files, snapshot: restoreTree into a fresh directory, then every entry compared with
 *   the snapshot tree and every file with its recorded SHA-256 (verifyRestoredTree).
 * - image: restoreImage into a sparse file (its read-back SHA-256 check is part of the
 *   restore), then each filesystem checked read-only on a loop device.
 * - postgres, mysql: restore into an ephemeral server (or scratch databases on the job's
 *   drill server); the restore recomputes the fingerprint and every difference from the
 *   backup-time fingerprint fails the drill.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobConfig, MysqlJob, PostgresJob } from '../config/schema.js';
import { IntegrityError, PolicyBreachError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { Repository } from '../repository/repository.js';
import {
  DirectoryScratch,
  EphemeralMariadb,
  EphemeralPostgres,
  LoopImageScratch,
  ScratchMysqlDatabase,
  ScratchPostgresDatabase,
  type ScratchDatabaseServer,
  type ScratchEnvironment,
} from '../scratch/index.js';
import {
  describeDifference,
  loadDatabaseTree,
  type DatabaseRestoreResult,
  type Difference,
} from '../sources/database/index.js';
import { restoreTree, verifyRestoredTree } from '../sources/files/index.js';
import { findImageNode, restoreImage } from '../sources/image/index.js';
import { restoreMysql } from '../sources/mysql/index.js';
import { restorePostgres } from '../sources/postgres/index.js';
import type { AssertionContext } from './drillAssertions.js';
import type { DrillStep } from './drillModel.js';
import type { DrillServer } from './drillScratch.js';
import type { Deps, ProgressListener } from './deps.js';

const MiB = 1024 * 1024;

/** What every kind gets to work with. */
export interface KindContext {
  job: JobConfig;
  repo: Repository;
  snapshot: SnapshotEntry;
  deps: Deps;
  stateDir: string;
  scratchRoot: string;
  runId: string;
  /** ISO time for state files. */
  now: string;
  /** Aborts on interrupt and on the drill timeout. */
  signal: AbortSignal;
  /** Monotonic ms by which the drill must be done. */
  deadline: number;
  /** The job's drill server (drill.scratch: existing). */
  server?: DrillServer;
  onProgress?: ProgressListener;
  /** Told when SIGINT/SIGTERM tears the scratch environment down. */
  onInterrupt?: () => void;
}

/** What the restore did, in one line; `innerVerifyMs` is verification time spent inside it (databases). */
export interface RestoreOutcome {
  message: string;
  innerVerifyMs: number;
}

/** One kind's drill over one scratch environment. */
export interface KindDrill {
  provision(): Promise<ScratchEnvironment>;
  restore(): Promise<RestoreOutcome>;
  /** Verification steps after a successful restore (content, fingerprint, fsck …). */
  verify(needsMount: boolean): Promise<DrillStep[]>;
  assertionContext(): AssertionContext;
}

const left = (ctx: KindContext) => Math.max(1000, ctx.deadline - monotonicMs());

function progress(ctx: KindContext) {
  return (p: {
    files: number;
    bytes: number;
    totalFiles?: number;
    totalBytes?: number;
    currentPath?: string;
  }) => ctx.onProgress?.({ job: ctx.job.name, phase: 'drill', ...p });
}

const envBase = (ctx: KindContext) => ({
  stateDir: ctx.stateDir,
  root: ctx.scratchRoot,
  job: ctx.job.name,
  runId: ctx.runId,
  now: ctx.now,
});

/** The kind-specific drill of a job. */
export function kindDrill(ctx: KindContext): KindDrill {
  switch (ctx.job.kind) {
    case 'files':
    case 'snapshot':
      return filesDrill(ctx);
    case 'image':
      return imageDrill(ctx);
    case 'postgres':
    case 'mysql':
      return databaseDrill(ctx, ctx.job);
  }
}

function filesDrill(ctx: KindContext): KindDrill {
  let env: DirectoryScratch | undefined;
  return {
    async provision() {
      env = await DirectoryScratch.create({ ...envBase(ctx), neededBytes: ctx.snapshot.stats.bytes });
      return env;
    },
    async restore() {
      const r = await restoreTree(ctx.repo, ctx.snapshot.tree, env!.dir, {
        overwrite: 'never',
        dryRun: false,
        logger: ctx.deps.logger,
        signal: ctx.signal,
        onProgress: (p) =>
          progress(ctx)({ ...p, totalBytes: ctx.snapshot.stats.bytes, totalFiles: ctx.snapshot.stats.files }),
      });
      if (r.errors.length > 0) {
        const shown = r.errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`);
        throw new IntegrityError(
          `${r.errors.length} entr${r.errors.length === 1 ? 'y' : 'ies'} could not be restored: ${shown.join('; ')}` +
            (r.errors.length > 5 ? ` … and ${r.errors.length - 5} more` : ''),
          { hint: 'Run `lifeboat check --read-data` on the repository.' },
        );
      }
      return {
        message: `${r.files} files, ${r.dirs} directories, ${r.bytes} bytes into ${env!.dir}`,
        innerVerifyMs: 0,
      };
    },
    async verify() {
      const t0 = monotonicMs();
      const mismatches = await verifyRestoredTree(ctx.repo, ctx.snapshot.tree, env!.dir, {
        signal: ctx.signal,
      });
      const durationMs = monotonicMs() - t0;
      if (mismatches.length === 0) {
        return [
          {
            name: 'content',
            status: 'pass',
            message: `every entry matches the snapshot (${ctx.snapshot.stats.files} files checked against their SHA-256)`,
            durationMs,
          },
        ];
      }
      const lines = mismatches
        .slice(0, 10)
        .map(
          (m) =>
            `${m.kind}: ${m.path}${m.expected !== undefined ? ` (expected ${m.expected}, found ${m.actual ?? '?'})` : ''}`,
        );
      return [
        {
          name: 'content',
          status: 'fail',
          message:
            `${mismatches.length} difference${mismatches.length === 1 ? '' : 's'} from the snapshot: ${lines.join('; ')}` +
            (mismatches.length > 10 ? ` … and ${mismatches.length - 10} more` : ''),
          durationMs,
          expected: '0 differences',
          actual: `${mismatches.length} differences`,
        },
      ];
    },
    assertionContext() {
      const paths = ctx.snapshot.paths;
      const cwd = paths.length === 1 && paths[0]!.startsWith('/') ? join(env!.dir, paths[0]!) : env!.dir;
      return { cwd, env: { LIFEBOAT_DRILL_DIR: env!.dir, LIFEBOAT_DRILL_PATH: cwd } };
    },
  };
}

function imageDrill(ctx: KindContext): KindDrill {
  let env: LoopImageScratch | undefined;
  let sha256 = '';
  return {
    async provision() {
      const node = findImageNode(await ctx.repo.loadTree(ctx.snapshot.tree));
      const zero = node.content.reduce((n, ref) => n + (typeof ref === 'string' ? 0 : ref.zero), 0);
      env = await LoopImageScratch.create({ ...envBase(ctx), neededBytes: Math.max(0, node.size - zero) });
      return env;
    },
    async restore() {
      const r = await restoreImage(ctx.repo, ctx.snapshot.tree, env!.imagePath, {
        logger: ctx.deps.logger,
        signal: ctx.signal,
        onProgress: progress(ctx),
      });
      sha256 = r.sha256;
      return {
        message: `${r.size} bytes (${r.zeroBytes} of zero blocks kept as holes) into ${r.target}`,
        innerVerifyMs: 0,
      };
    },
    async verify(needsMount) {
      const steps: DrillStep[] = [
        {
          name: 'content',
          status: 'pass',
          message: `read-back SHA-256 ${sha256.slice(0, 16)}… matches the snapshot (checked as part of the restore)`,
          durationMs: 0,
        },
      ];
      let t0 = monotonicMs();
      const device = await env!.attach();
      const devices = await env!.filesystemDevices();
      let mountable: { device: string; fsType: string } | undefined;
      for (const dev of devices) {
        const r = await env!.fsck(dev, left(ctx));
        steps.push({
          name: devices.length === 1 ? 'fsck' : `fsck ${dev.slice(device.length) || dev}`,
          status: r.skipped ? 'skip' : r.ok ? 'pass' : 'fail',
          message: r.message,
          durationMs: monotonicMs() - t0,
          ...(r.skipped ? {} : { expected: 'clean', actual: r.ok ? 'clean' : 'errors found' }),
        });
        if (r.ok && !r.skipped && r.fsType && !mountable) mountable = { device: dev, fsType: r.fsType };
        t0 = monotonicMs();
      }
      if (needsMount && mountable) {
        t0 = monotonicMs();
        try {
          const at = await env!.mountReadOnly(mountable.device, mountable.fsType);
          steps.push({
            name: 'mount',
            status: 'pass',
            message: `${mountable.device} mounted read-only at ${at}`,
            durationMs: monotonicMs() - t0,
          });
        } catch (err) {
          steps.push({
            name: 'mount',
            status: 'fail',
            message: (err as Error).message,
            durationMs: monotonicMs() - t0,
          });
        }
      }
      return steps;
    },
    assertionContext() {
      const vars: Record<string, string> = {
        LIFEBOAT_DRILL_DIR: env!.dir,
        LIFEBOAT_DRILL_IMAGE: env!.imagePath,
      };
      if (env!.device) vars.LIFEBOAT_DRILL_DEVICE = env!.device;
      if (env!.mountPoint) vars.LIFEBOAT_DRILL_MOUNT = env!.mountPoint;
      return { cwd: env!.mountPoint ?? env!.dir, env: vars };
    },
  };
}

function mergeResults(results: DatabaseRestoreResult[]): DatabaseRestoreResult {
  return {
    dryRun: false,
    databases: results.flatMap((r) => r.databases),
    differences: results.flatMap((r) => r.differences),
    verified: results.every((r) => r.verified),
    commands: results.flatMap((r) => r.commands),
    plan: results.flatMap((r) => r.plan),
    warnings: results.flatMap((r) => r.warnings),
  };
}

function describeDifferences(differences: Difference[], limit = 20): string {
  const lines = differences.slice(0, limit).map(describeDifference);
  if (differences.length > limit) lines.push(`… and ${differences.length - limit} more`);
  return lines.join('; ');
}

function databaseDrill(ctx: KindContext, job: PostgresJob | MysqlJob): KindDrill {
  let env: (ScratchDatabaseServer & { dir?: string }) | undefined;
  let sources: string[] = [];
  let globals = false;
  let result: DatabaseRestoreResult | undefined;
  const engine = job.kind;
  return {
    async provision() {
      const tree = await loadDatabaseTree(ctx.repo, ctx.snapshot.tree, engine);
      sources = tree.manifest.dumps.map((d) => d.database);
      globals = tree.manifest.globals !== undefined;
      const dumpBytes = tree.manifest.dumps.reduce((n, d) => n + d.size, 0);
      // Tables and indexes usually take a few times the dump's size; the server itself a little more.
      const neededBytes = dumpBytes * 3 + 64 * MiB;
      const base = envBase(ctx);
      if (ctx.server) {
        env =
          engine === 'postgres'
            ? await ScratchPostgresDatabase.create(ctx.server.postgres!, {
                ...base,
                describe: ctx.server.describe,
              })
            : await ScratchMysqlDatabase.create(ctx.server.mysql!, {
                ...base,
                describe: ctx.server.describe,
              });
      } else {
        env =
          engine === 'postgres'
            ? await EphemeralPostgres.create({ ...base, neededBytes })
            : await EphemeralMariadb.create({ ...base, neededBytes });
      }
      return env;
    },
    async restore() {
      const common = {
        clean: false,
        create: true,
        force: false,
        dryRun: false,
        verify: true,
        timeoutMs: left(ctx),
        logger: ctx.deps.logger,
      };
      const results: DatabaseRestoreResult[] = [];
      if (ctx.server) {
        // One scratch name per database; restored without roles, which belong to the shared server.
        for (const source of sources) {
          const target = await env!.databaseFor(source);
          const opts = { ...common, into: { dsn: ctx.server.dsn }, database: source, target, globals: false };
          results.push(
            engine === 'postgres'
              ? await restorePostgres(ctx.repo, ctx.snapshot, {
                  ...opts,
                  noOwner: true,
                  timeoutMs: left(ctx),
                })
              : await restoreMysql(ctx.repo, ctx.snapshot, { ...opts, timeoutMs: left(ctx) }),
          );
        }
      } else if (env instanceof EphemeralPostgres) {
        // Roles come from globals.sql when the backup has it; without it, ownership cannot be restored.
        results.push(
          await restorePostgres(ctx.repo, ctx.snapshot, {
            ...common,
            into: env.connection(),
            globals,
            noOwner: !globals,
          }),
        );
      } else if (env instanceof EphemeralMariadb) {
        // Grants are not replayed: they would replace the scratch server's root account.
        results.push(
          await restoreMysql(ctx.repo, ctx.snapshot, { ...common, into: env.connection(), globals: false }),
        );
      }
      result = mergeResults(results);
      const innerVerifyMs = result.databases.reduce((n, d) => n + d.verifyMs, 0);
      const bytes = result.databases.reduce((n, d) => n + d.bytes, 0);
      return {
        message:
          `${result.databases.map((d) => (d.source === d.target ? d.source : `${d.source} → ${d.target}`)).join(', ')}` +
          ` (${bytes} bytes of dump)${result.warnings.length ? `; warnings: ${result.warnings.slice(0, 3).join('; ')}` : ''}`,
        innerVerifyMs,
      };
    },
    async verify() {
      const r = result!;
      const durationMs = r.databases.reduce((n, d) => n + d.verifyMs, 0);
      if (r.differences.length > 0) {
        const failure = new PolicyBreachError(describeDifferences(r.differences));
        return [
          {
            name: 'fingerprint',
            status: 'fail',
            message: `${r.differences.length} difference${r.differences.length === 1 ? '' : 's'} from the backup's fingerprint: ${failure.message}`,
            durationMs,
            expected: 'the backup-time fingerprint',
            actual: `${r.differences.length} differences`,
          },
        ];
      }
      return [
        {
          name: 'fingerprint',
          status: 'pass',
          message: `${r.databases.length === 1 ? 'the database matches' : `${r.databases.length} databases match`} the backup's fingerprint (schema, row counts${job.checksums ? ', content checksums' : ''})`,
          durationMs,
        },
      ];
    },
    assertionContext() {
      const e = env!;
      const dir = e instanceof EphemeralPostgres || e instanceof EphemeralMariadb ? e.dir : tmpdir();
      return {
        cwd: dir,
        env: { LIFEBOAT_DRILL_DIR: dir },
        database: {
          sources,
          scratchName: (source) => e.databaseFor(source),
          queryValue: (database, sql, timeoutMs) => e.queryValue(database, sql, timeoutMs),
          clientEnv: (database) => e.clientEnv(database),
        },
      };
    },
  };
}
