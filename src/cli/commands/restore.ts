import type { Command } from 'commander';
import { restoreFiles } from '../../app/restore.js';
import { ExitCode, UsageError } from '../../errors.js';
import type { OverwriteMode } from '../../sources/files/index.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

const OVERWRITE: OverwriteMode[] = ['never', 'if-changed', 'always'];

/** `lifeboat restore JOB --target DIR …` */
export function registerRestore(program: Command, context: ContextFactory): void {
  program
    .command('restore')
    .description('restore a restore point of a job')
    .argument('<job>', 'job name from the configuration')
    .option('--snapshot <id>', 'snapshot ID, unique prefix, or "latest"', 'latest')
    .option('--at <time>', 'the newest snapshot at or before this time (ISO 8601, e.g. 2026-11-20T14:00Z)')
    .option(
      '--repository <name>',
      'restore from this repository (default: the first reachable one of the job)',
    )
    .option('--target <dir>', 'directory to restore into (files and snapshot jobs)')
    .option(
      '--include <glob...>',
      'only paths matching these gitignore-style patterns (paths as in the snapshot)',
    )
    .option('--overwrite <mode>', `existing entries in the target: ${OVERWRITE.join(' | ')}`, 'never')
    .option('--dry-run', 'only list what would be restored', false)
    .addHelpText(
      'after',
      '\nFiles are restored with their metadata (ownership when run as root), hardlinks, symlinks and\n' +
        'sparse holes. Every chunk is verified while writing and every file against its recorded\n' +
        'SHA-256; a damaged file is named and the rest still restores (exit code 1). Nothing is ever\n' +
        'written outside the target, whatever names the repository holds.\n' +
        'The target must be empty unless --overwrite says otherwise.\n\n' +
        'Examples:\n' +
        '  lifeboat restore web --target /tmp/web-restore\n' +
        '  lifeboat restore web --at 2026-11-20T14:00Z --target /srv/www --overwrite if-changed\n' +
        "  lifeboat restore web --include 'srv/www/uploads/' --target /tmp/uploads --dry-run",
    )
    .action(
      async (
        job: string,
        opts: {
          snapshot: string;
          at?: string;
          repository?: string;
          target?: string;
          include?: string[];
          overwrite: string;
          dryRun: boolean;
        },
        cmd: Command,
      ) => {
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
        if (!opts.target) {
          throw new UsageError('restore needs --target DIR', {
            hint: 'Name an empty directory to restore into.',
          });
        }
        const target = opts.target;
        const { config } = await loadCommandConfig(ctx);
        const progress = createProgress(ctx);
        progress.step(`restoring ${job}`);
        const result = await restoreFiles(
          config,
          {
            job,
            snapshot: opts.snapshot,
            ...(atMs !== undefined ? { atMs } : {}),
            ...(opts.repository ? { repository: opts.repository } : {}),
            target,
            include: opts.include ?? [],
            overwrite: opts.overwrite as OverwriteMode,
            dryRun: opts.dryRun,
            onProgress: (e) => progress.update(e),
          },
          commandDeps(ctx, config),
        );
        progress.stop();
        if (result.errors.length) ctx.setExitCode(ExitCode.internal);
        const p = painter(ctx);
        emitResult(ctx, { ok: result.errors.length === 0, ...result }, () => {
          const head = `snapshot ${result.snapshotId.slice(0, 12)} (${result.snapshotTime}) of ${job} from ${result.repository}`;
          if (result.dryRun) {
            return [
              `would restore ${head} into ${result.target}:`,
              ...(result.planned ?? []).map((x) => `  ${x}`),
            ].join('\n');
          }
          const lines = [
            `${result.errors.length ? p.red('✘') : p.green('✔')} restored ${head} into ${result.target}: ` +
              `${result.files} files, ${result.dirs} dirs, ${formatBytes(result.bytes)} in ${(result.durationMs / 1000).toFixed(1)}s` +
              (result.skipped ? `, ${result.skipped} unchanged` : ''),
          ];
          for (const e of result.errors) lines.push(p.red(`  failed: ${e.path}: ${e.message}`));
          return lines.join('\n');
        });
      },
    );
}
