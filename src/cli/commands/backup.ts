import type { Command } from 'commander';
import { backupJobs, type JobBackupResult } from '../../app/backup.js';
import { ExitCode } from '../../errors.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';
import type { CommandContext } from '../context.js';

/** `lifeboat backup [JOB…]` */
export function registerBackup(program: Command, context: ContextFactory): void {
  program
    .command('backup')
    .description('back up jobs into their repository (all jobs when none is named)')
    .argument('[jobs...]', 'job names from the configuration')
    .option('--tag <tag...>', 'extra tags to record on the snapshots')
    .addHelpText(
      'after',
      '\nEach job is backed up into the first repository it lists. A failing job does not stop the\n' +
        'others; every run, failed ones too, is recorded in the repository journal.\n' +
        'Exit code 3 when a snapshot is partial (some files unreadable or changed while read).\n\n' +
        'Examples:\n  lifeboat backup\n  lifeboat backup web --tag before-upgrade\n  lifeboat backup --json web | jq .',
    )
    .action(async (jobs: string[], opts: { tag?: string[] }, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const progress = createProgress(ctx);
      const results = await backupJobs(
        config,
        {
          jobs,
          tags: opts.tag ?? [],
          onProgress: (e) => {
            progress.step(`backing up ${e.job}`);
            progress.update(e);
          },
        },
        deps,
      );
      progress.stop();
      for (const r of results) ctx.setExitCode(exitCodeOf(r));
      emitResult(ctx, { ok: results.every((r) => r.outcome === 'success'), results }, () =>
        results.map((r) => describe(ctx, r)).join('\n'),
      );
    });
}

function exitCodeOf(r: JobBackupResult): number {
  if (r.outcome === 'success') return ExitCode.ok;
  if (r.outcome === 'partial') return ExitCode.partial;
  if (r.outcome === 'interrupted') return ExitCode.interrupted;
  return r.error?.exitCode ?? ExitCode.internal;
}

function describe(ctx: CommandContext, r: JobBackupResult): string {
  const p = painter(ctx);
  const secs = (r.durationMs / 1000).toFixed(1);
  if (r.outcome === 'success' || r.outcome === 'partial') {
    const s = r.stats!;
    const head = `${r.outcome === 'success' ? p.green('✔') : p.yellow('!')} ${r.job}: snapshot ${r.snapshotId!.slice(0, 12)} in ${r.repository}`;
    const lines = [
      `${head} — ${s.files} files, ${formatBytes(s.bytes)} (${formatBytes(s.addedBytes)} new) in ${secs}s`,
    ];
    if (r.outcome === 'partial') {
      lines.push(p.yellow(`  partial: ${r.warnings.length} entries skipped`));
      for (const w of r.warnings.slice(0, 20)) lines.push(`  - ${w}`);
      if (r.warnings.length > 20) lines.push(`  … and ${r.warnings.length - 20} more (see --json)`);
    }
    return lines.join('\n');
  }
  const lines = [
    `${p.red('✘')} ${r.job}: backup ${r.outcome} after ${secs}s: ${r.error?.message ?? 'unknown error'}`,
  ];
  if (r.error?.hint) lines.push(`  hint: ${r.error.hint}`);
  return lines.join('\n');
}
