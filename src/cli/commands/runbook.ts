import { resolve } from 'node:path';
import type { Command } from 'commander';
import { collectRunbook } from '../../app/runbook.js';
import { exitCodeOfFailure } from '../../app/status.js';
import { UsageError, worseExitCode } from '../../errors.js';
import { writeFileAtomic } from '../../platform/atomicWrite.js';
import { renderRunbookHtml, renderRunbookMarkdown } from '../../report/index.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

const FORMATS = ['markdown', 'html'] as const;

/** `lifeboat runbook [--format markdown|html] [--output FILE]` */
export function registerRunbook(program: Command, context: ContextFactory): void {
  program
    .command('runbook')
    .description(
      'the recovery runbook: jobs in restore order, where their restore points are, exact commands',
    )
    .option('--format <format>', FORMATS.join(' | '), 'markdown')
    .option('--output <file>', 'write the runbook to this file instead of stdout')
    .addHelpText(
      'after',
      '\nGenerated from the configuration (dependsOn gives the order) and the evidence in the\n' +
        'repositories: per job, every repository with its newest restore point and age, the exact\n' +
        '`lifeboat restore` commands, the restore time to expect from recent drills and the last\n' +
        'drill’s outcome. Print it and keep it with the repository passwords.\n' +
        'Exit code: a repository that cannot be opened gives its own code (10, 12 …); the runbook is\n' +
        'still written, naming the unreachable repository.\n\n' +
        'Examples:\n  lifeboat runbook > RUNBOOK.md\n  lifeboat runbook --format html --output runbook.html',
    )
    .action(async (opts: { format: string; output?: string }, cmd: Command) => {
      const ctx = context(cmd);
      if (!(FORMATS as readonly string[]).includes(opts.format)) {
        throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, not '${opts.format}'`);
      }
      const { config, file } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const { runbook, failures } = await collectRunbook(config, file, deps);
      const timeZone = config.defaults.timezone;
      const text = ctx.globals.json
        ? JSON.stringify(runbook, null, 2) + '\n'
        : opts.format === 'html'
          ? renderRunbookHtml(runbook, { timeZone })
          : renderRunbookMarkdown(runbook, { timeZone });
      if (opts.output) {
        await writeFileAtomic(resolve(opts.output), text);
        ctx.logger.info(`runbook written to ${resolve(opts.output)} (${runbook.jobs.length} jobs)`);
      } else ctx.out(text);
      for (const w of runbook.warnings) ctx.logger.warn(w);
      let code = 0;
      for (const f of failures) code = worseExitCode(code, exitCodeOfFailure(f.error));
      ctx.setExitCode(code);
    });
}
