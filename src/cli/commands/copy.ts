import type { Command } from 'commander';
import { copyRestorePoints, type CopyResult, type JobCopyResult } from '../../app/copy.js';
import { ExitCode } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

interface CopyFlags {
  from: string;
  to: string;
  job?: string[];
  dryRun?: boolean;
}

/** `lifeboat copy --from A --to B [--job J…] [--dry-run]` */
export function registerCopy(program: Command, context: ContextFactory): void {
  program
    .command('copy')
    .description('copy restore points another repository lacks into it (re-encrypted with its keys)')
    .requiredOption('--from <repository>', 'repository to copy from')
    .requiredOption('--to <repository>', 'repository to copy into')
    .option('--job <name...>', 'only restore points of these jobs (default: all)')
    .option('--dry-run', 'list what would be copied; change nothing')
    .addHelpText(
      'after',
      '\nA restore point counts as present in the target when it holds one with the same job, host and\n' +
        'times (copies keep them and record where they came from). Only data the target lacks is\n' +
        'uploaded; an interrupted copy leaves only unreferenced data, and running it again finishes it.\n' +
        'Jobs whose policy sets immutableFor get their kept restore points locked in the target.\n\n' +
        'Examples:\n  lifeboat copy --from local --to offsite\n  lifeboat copy --from local --to offsite --job web --dry-run',
    )
    .action(async (flags: CopyFlags, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const progress = createProgress(ctx);
      let phase = '';
      const result = await copyRestorePoints(
        config,
        {
          from: flags.from,
          to: flags.to,
          jobs: flags.job ?? [],
          dryRun: Boolean(flags.dryRun),
          onProgress: (e) => {
            if (e.phase !== phase) progress.step(`${e.job}: ${(phase = e.phase)}`);
            progress.update(e);
          },
        },
        deps,
      );
      progress.stop();
      for (const r of result.jobs) ctx.setExitCode(exitCodeOf(r));
      emitResult(ctx, result, () => describe(ctx, result));
    });
}

function exitCodeOf(r: JobCopyResult): number {
  if (r.outcome === 'success') return ExitCode.ok;
  if (r.outcome === 'interrupted') return ExitCode.interrupted;
  return r.error?.exitCode ?? ExitCode.internal;
}

function describe(ctx: CommandContext, result: CopyResult): string {
  const p = painter(ctx);
  const lines: string[] = [];
  const verb = result.dryRun ? 'would copy' : 'copied';
  if (result.jobs.length === 0) lines.push(`no restore points in ${result.from} to copy`);
  for (const r of result.jobs) {
    const head =
      r.outcome === 'success' ? p.green('✔') : r.outcome === 'interrupted' ? p.yellow('!') : p.red('✘');
    const n = r.copied.length;
    let line = `${head} ${r.job}: ${verb} ${n} restore point${n === 1 ? '' : 's'} from ${result.from} to ${result.to}, ${r.skipped} already there`;
    if (!result.dryRun && n > 0)
      line += ` — read ${formatBytes(r.stats.bytesRead)}, ${formatBytes(r.stats.newBytes)} new in ${result.to}`;
    lines.push(line);
    for (const c of r.copied.slice(0, 20)) {
      const to = c.targetId ? ` → ${c.targetId.slice(0, 12)}` : '';
      lines.push(`    ${c.sourceId.slice(0, 12)}${to}  ${c.startedAt.replace('T', ' ').slice(0, 19)}`);
    }
    if (r.copied.length > 20) lines.push(`    … and ${r.copied.length - 20} more (see --json)`);
    if (r.error) {
      lines.push(`  ${p.red(`copy ${r.outcome}: ${r.error.message}`)}`);
      if (r.error.hint) lines.push(`  hint: ${r.error.hint}`);
    }
    const imm = r.immutability;
    if (imm?.state === 'locked')
      lines.push(
        `  ${imm.restorePoints} restore points locked until ${imm.lockedUntil} (${imm.extended} of ${imm.objects} objects extended)`,
      );
    else if (imm) lines.push(`  ${p.yellow(imm.reason)}`);
  }
  return lines.join('\n');
}
