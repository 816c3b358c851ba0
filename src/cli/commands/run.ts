import type { Command } from 'commander';
import { runDue, type ActivityRun, type PlanItem, type RunDueResult } from '../../app/runDue.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter, table } from '../output.js';
import { createProgress } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

interface RunFlags {
  due: boolean;
  job?: string[];
  dryRun: boolean;
}

/** `lifeboat run [--due] [--job J…] [--dry-run]` */
export function registerRun(program: Command, context: ContextFactory): void {
  program
    .command('run')
    .description('run what is due (the cron entry point), or every activity of the named jobs now')
    .option('--due', 'only what the schedules and policies say is due now', false)
    .option('--job <name...>', 'only these jobs (default: all)')
    .option('--dry-run', 'print the plan with the reason for each activity; change nothing', false)
    .addHelpText(
      'after',
      '\nCall `lifeboat run --due` every five minutes (see `lifeboat schedule install`); lifeboat\n' +
        'decides from each job’s schedule, its policy and the run journal what is due: backups,\n' +
        'copies, drills, retention (forget + prune) and integrity checks. A machine that was off\n' +
        'catches up once. Only one run per host at a time: an overlapping call exits 0 with a note.\n' +
        'Without --due, every activity of the named jobs runs now. A failing activity never stops\n' +
        'the others; the exit code is the worst of them.\n\n' +
        'Examples:\n  lifeboat run --due\n  lifeboat run --due --dry-run\n  lifeboat run --job web',
    )
    .action(async (flags: RunFlags, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const progress = createProgress(ctx);
      const result = await runDue(
        config,
        {
          due: flags.due,
          jobs: flags.job ?? [],
          dryRun: flags.dryRun,
          onActivity: (e) => {
            if (e.phase === 'start') progress.step(label(e.activity));
            else if (e.run) progress.stop();
          },
          onProgress: (e) => progress.update(e),
        },
        deps,
      );
      progress.stop();
      if (result.locked) {
        const h = result.locked.holder;
        ctx.logger.info(
          `another lifeboat run is in progress${h ? ` (pid ${h.pid} on ${h.host}, started ${h.startedAt})` : ''}; ` +
            `nothing to do (lock ${result.locked.path})`,
        );
      }
      ctx.setExitCode(result.exitCode);
      emitResult(ctx, result, () => render(ctx, result));
    });
}

function label(a: { kind: string; job?: string; repository: string }): string {
  return `${a.kind}${a.job ? ` ${a.job}` : ''} → ${a.repository}`;
}

function render(ctx: CommandContext, r: RunDueResult): string {
  if (r.locked) return '';
  const p = painter(ctx);
  const lines: string[] = [];
  if (r.dryRun) {
    const rows = r.plan.map((i: PlanItem) => [
      i.selected ? (i.available ? p.green('run') : p.yellow('n/a')) : p.dim('skip'),
      i.kind,
      i.job ?? '',
      i.repository,
      i.reason,
    ]);
    lines.push(
      rows.length ? table(['', 'ACTIVITY', 'JOB', 'REPOSITORY', 'REASON'], rows) : 'no jobs configured',
    );
  } else {
    for (const a of r.activities) lines.push(describe(ctx, a));
    if (r.activities.length === 0) lines.push(r.mode === 'due' ? 'nothing is due' : 'nothing to run');
  }
  for (const rec of r.recovered) {
    lines.push(
      p.yellow(`! ${rec.activity} started ${rec.startedAt} was interrupted; recorded in ${rec.repository}`),
    );
  }
  for (const note of r.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

function describe(ctx: CommandContext, a: ActivityRun): string {
  const p = painter(ctx);
  const secs = (a.durationMs / 1000).toFixed(1);
  const mark =
    a.outcome === 'success'
      ? p.green('✔')
      : a.outcome === 'partial'
        ? p.yellow('!')
        : a.outcome === 'skipped'
          ? p.dim('-')
          : p.red('✘');
  const head = `${mark} ${label(a)}: ${a.summary}${a.outcome === 'skipped' ? '' : ` (${secs}s)`}`;
  const lines = [head];
  if (a.error?.hint) lines.push(`  hint: ${a.error.hint}`);
  for (const w of a.warnings.slice(0, 10)) lines.push(`  - ${w}`);
  if (a.warnings.length > 10) lines.push(`  … and ${a.warnings.length - 10} more (see --json)`);
  return lines.join('\n');
}
