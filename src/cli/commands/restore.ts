import type { Command } from 'commander';
import { restoreJob, type RestoreJobResult } from '../../app/restore.js';
import { ExitCode, UsageError } from '../../errors.js';
import { verificationFailure } from '../../sources/database/index.js';
import type { OverwriteMode } from '../../sources/files/index.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

const OVERWRITE: OverwriteMode[] = ['never', 'if-changed', 'always'];

interface RestoreFlags {
  snapshot: string;
  at?: string;
  repository?: string;
  fromRepository: boolean;
  target?: string;
  include?: string[];
  overwrite: string;
  dryRun: boolean;
  toDevice: boolean;
  force: boolean;
  into?: string;
  database?: string;
  as?: string;
  create: boolean;
  clean: boolean;
  globals: boolean;
  jobs?: string;
}

/** `lifeboat restore JOB (--target DIR | --into DSN) …` */
export function registerRestore(program: Command, context: ContextFactory): void {
  program
    .command('restore')
    .description('restore a restore point of a job (files, image, or database)')
    .argument('<job>', 'job name from the configuration')
    .option('--snapshot <id>', 'snapshot ID, unique prefix, or "latest"', 'latest')
    .option('--at <time>', 'the newest snapshot at or before this time (ISO 8601, e.g. 2026-11-20T14:00Z)')
    .option(
      '--repository <name>',
      'restore from this repository (default: the first reachable one of the job)',
    )
    .option(
      '--from-repository',
      'snapshot jobs: restore from the repository even when an intact local snapshot is kept',
      false,
    )
    .option(
      '--target <path>',
      'files/snapshot jobs: directory to restore into; image jobs: image file or device',
    )
    .option(
      '--include <glob...>',
      'files: only paths matching these gitignore-style patterns (paths as in the snapshot)',
    )
    .option('--overwrite <mode>', `files: existing entries in the target: ${OVERWRITE.join(' | ')}`, 'never')
    .option('--to-device', 'image: the target is a block device (refused when mounted or too small)', false)
    .option(
      '--into <dsn>',
      'database jobs: server to restore into (a DSN, or env:NAME / file:/path holding one)',
    )
    .option('--database <name>', 'database jobs: restore only this database of the snapshot')
    .option('--as <name>', 'database jobs: name of the target database (one database only)')
    .option('--create', 'database jobs: create the target database when it does not exist', false)
    .option('--clean', 'database jobs: allow a non-empty target (objects in the dump are replaced)', false)
    .option(
      '--globals',
      'database jobs: also restore roles/tablespaces (postgres) or users and grants (mysql)',
      false,
    )
    .option(
      '--jobs <n>',
      'postgres: sessions that load the table data side by side, a large table split across them ' +
        '(default 2); with --clean, parallel pg_restore jobs on a temp copy of the dump (default 1)',
    )
    .option(
      '--force',
      'image: replace an existing file; databases: restore over the backed-up database itself',
      false,
    )
    .option('--dry-run', 'show what would be restored (and the exact commands), write nothing', false)
    .addHelpText(
      'after',
      '\nFiles are restored with their metadata (ownership when run as root), hardlinks, symlinks and\n' +
        'sparse holes; every chunk is verified while writing and every file against its SHA-256. A\n' +
        'damaged file is named and the rest still restores (exit 1). Nothing is ever written outside\n' +
        'the target, whatever names the repository holds. The target must be empty unless --overwrite\n' +
        'says otherwise. Images are verified against their SHA-256 after writing. Databases are\n' +
        'compared with the fingerprint taken at backup time; any difference exits with code 4.\n' +
        'Snapshot jobs with keepLocal restore from the local snapshot of the restore point when it is\n' +
        'intact (file data read locally, every chunk verified; only trees come from the repository),\n' +
        'else from the repository, saying why; --from-repository or --repository forces the repository.\n\n' +
        'Examples:\n' +
        '  lifeboat restore web --target /tmp/web-restore\n' +
        '  lifeboat restore web --at 2026-11-20T14:00Z --target /srv/www --overwrite if-changed\n' +
        "  lifeboat restore web --include 'srv/www/uploads/' --target /tmp/uploads --dry-run\n" +
        '  lifeboat restore shop-db --into postgres://postgres@127.0.0.1/ --database shop --as shop_check --create\n' +
        '  lifeboat restore disk --target /var/tmp/disk.img',
    )
    .action(async (job: string, opts: RestoreFlags, cmd: Command) => {
      const ctx = context(cmd);
      if (!OVERWRITE.includes(opts.overwrite as OverwriteMode)) {
        throw new UsageError(`--overwrite must be one of ${OVERWRITE.join(', ')}, not '${opts.overwrite}'`);
      }
      const atMs = opts.at === undefined ? undefined : Date.parse(opts.at);
      if (atMs !== undefined && Number.isNaN(atMs)) {
        throw new UsageError(`--at '${opts.at}' is not a time`, {
          hint: 'Use ISO 8601, e.g. 2026-11-20T14:00Z.',
        });
      }
      const jobs = opts.jobs === undefined ? undefined : Number(opts.jobs);
      if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) {
        throw new UsageError(`--jobs must be a whole number >= 1, not '${opts.jobs}'`);
      }
      const { config } = await loadCommandConfig(ctx);
      const progress = createProgress(ctx);
      progress.step(`restoring ${job}`);
      const result = await restoreJob(
        config,
        {
          job,
          snapshot: opts.snapshot,
          ...(atMs !== undefined ? { atMs } : {}),
          ...(opts.repository ? { repository: opts.repository } : {}),
          ...(opts.fromRepository ? { fromRepository: true } : {}),
          ...(opts.target ? { target: opts.target } : {}),
          include: opts.include ?? [],
          overwrite: opts.overwrite as OverwriteMode,
          dryRun: opts.dryRun,
          toDevice: opts.toDevice,
          force: opts.force,
          ...(opts.into ? { into: opts.into } : {}),
          ...(opts.database ? { database: opts.database } : {}),
          ...(opts.as ? { targetDatabase: opts.as } : {}),
          create: opts.create,
          clean: opts.clean,
          globals: opts.globals,
          ...(jobs !== undefined ? { jobs } : {}),
          onProgress: (e) => progress.update(e),
        },
        commandDeps(ctx, config),
      );
      progress.stop();
      const ok = judge(ctx, result);
      emitResult(ctx, { ok, ...result }, () => describe(ctx, result));
    });
}

/** Set the exit code for the result; true when everything restored and verified. */
function judge(ctx: CommandContext, r: RestoreJobResult): boolean {
  if (r.kind === 'files' || r.kind === 'snapshot') {
    if (r.files.errors.length) ctx.setExitCode(ExitCode.internal);
    return r.files.errors.length === 0;
  }
  if (r.kind === 'postgres' || r.kind === 'mysql') {
    if (verificationFailure(r.database)) ctx.setExitCode(ExitCode.policyBreach);
    return r.database.differences.length === 0;
  }
  return true;
}

function describe(ctx: CommandContext, r: RestoreJobResult): string {
  const p = painter(ctx);
  const head = `snapshot ${r.snapshotId.slice(0, 12)} (${r.snapshotTime}) of ${r.job} from ${r.repository}`;
  const secs = `${(r.durationMs / 1000).toFixed(1)}s`;
  switch (r.kind) {
    case 'files':
    case 'snapshot': {
      const f = r.files;
      const via = r.kind === 'snapshot' ? describeSource(r) : [];
      if (r.dryRun)
        return [
          `would restore ${head} into ${r.target}:`,
          ...via,
          ...(f.planned ?? []).map((x) => `  ${x}`),
        ].join('\n');
      const lines = [
        `${f.errors.length ? p.red('✘') : p.green('✔')} restored ${head} into ${r.target}: ` +
          `${f.files} files, ${f.dirs} dirs, ${formatBytes(f.bytes)} in ${secs}` +
          (f.skipped ? `, ${f.skipped} unchanged` : ''),
        ...via,
      ];
      for (const e of f.errors) lines.push(p.red(`  failed: ${e.path}: ${e.message}`));
      return lines.join('\n');
    }
    case 'image':
      if (!r.image) return `would restore ${head} into ${r.target}`;
      return (
        `${p.green('✔')} restored ${head} into ${r.target}: ${formatBytes(r.image.size)} ` +
        `(${formatBytes(r.image.zeroBytes)} of zero blocks), SHA-256 verified ${r.image.sha256.slice(0, 16)}… in ${secs}`
      );
    case 'postgres':
    case 'mysql': {
      const d = r.database;
      if (r.dryRun)
        return [
          `would restore ${head}:`,
          ...d.plan.map((x) => `  ${x}`),
          'commands:',
          ...d.commands.map((c) => `  ${c}`),
        ].join('\n');
      const failure = verificationFailure(d);
      const lines = [
        `${failure ? p.red('✘') : p.green('✔')} restored ${head}: ` +
          d.databases.map((db) => `${db.source} → ${db.target} (${formatBytes(db.bytes)})`).join(', ') +
          ` in ${secs}; ` +
          (d.verified ? 'fingerprint verified' : failure ? 'fingerprint DIFFERS' : 'not verified'),
      ];
      if (failure) lines.push(p.red(failure.message));
      for (const w of d.warnings) lines.push(p.yellow(`  warning: ${w}`));
      return lines.join('\n');
    }
  }
}

/** Where a snapshot job's restore read its data (or would), and why not locally. */
function describeSource(r: Extract<RestoreJobResult, { kind: 'snapshot' }>): string[] {
  const l = r.localSnapshot;
  if (r.source === 'local' && l) {
    const checked = l.check
      ? ` (intact: ${l.check.entries} entries checked in ${(l.check.durationMs / 1000).toFixed(1)}s)`
      : '';
    const lines = [`  data ${r.dryRun ? 'would come' : 'came'} from local snapshot ${l.path}${checked}`];
    if (l.chunks?.repository) {
      lines.push(
        `  ${l.chunks.repository} chunks (${formatBytes(l.chunks.repositoryBytes)}) differed locally and came from ${r.repository}` +
          (l.differing?.length ? `: ${l.differing.join(', ')}` : ''),
      );
    }
    return lines;
  }
  return r.localNotUsed
    ? [`  from repository ${r.repository}; local snapshot not used: ${r.localNotUsed}`]
    : [];
}
