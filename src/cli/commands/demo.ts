import type { Command } from 'commander';
import { runDemo, type DemoResult } from '../../app/demo.js';
import { ExitCode } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps } from '../session.js';
import { formatMs } from '../../app/drillModel.js';
import { renderTable } from '../../report/index.js';
import { renderStatus } from './status.js';
import type { ContextFactory } from './index.js';

/** `lifeboat demo` — the quick start's first command. */
export function registerDemo(program: Command, context: ContextFactory): void {
  program
    .command('demo')
    .description('see lifeboat work on sample data, with no setup (used by `npm run demo`)')
    .option('--keep', 'keep the temporary repository and restore directory to look at', false)
    .option('--source <dir>', 'back up this directory instead of the bundled sample site')
    .addHelpText(
      'after',
      '\nCreates a local repository in a temporary directory, backs up the sample web-shop tree\n' +
        '(fixtures/sample-site) twice, restores it into a scratch directory, verifies every file\n' +
        'against the snapshot and prints a summary. Nothing outside the temporary directory is touched.',
    )
    .action(async (opts: { keep: boolean; source?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const progress = createProgress(ctx);
      const result = await runDemo(
        {
          keep: opts.keep,
          ...(opts.source ? { source: opts.source } : {}),
          onStep: (text) => {
            progress.stop();
            if (!ctx.globals.json && !ctx.globals.quiet) ctx.logger.info(`• ${text}`);
            progress.step(text);
          },
          onProgress: (e) => progress.update(e),
        },
        commandDeps(ctx),
      );
      progress.stop();
      if (!result.verification.ok) ctx.setExitCode(ExitCode.internal);
      if (result.drill.verdict !== 'pass') ctx.setExitCode(ExitCode.policyBreach);
      emitResult(ctx, result, () => summary(ctx, result));
    });
}

function summary(ctx: CommandContext, r: DemoResult): string {
  const p = painter(ctx);
  const f = r.first.stats!;
  const s = r.second.stats!;
  const lines = [
    '',
    p.bold('lifeboat demo — summary'),
    `  source:        ${r.source}`,
    `  repository:    ${r.repository}`,
    `  first backup:  snapshot ${r.first.snapshotId!.slice(0, 12)}, ${f.files} files, ${formatBytes(f.bytes)}, ` +
      `${formatBytes(f.addedBytes)} new, ${(r.first.durationMs / 1000).toFixed(2)}s`,
    `  second backup: snapshot ${r.second.snapshotId!.slice(0, 12)}, ${formatBytes(s.addedBytes)} new ` +
      `(unchanged data is deduplicated), ${(r.second.durationMs / 1000).toFixed(2)}s`,
    `  restore:       ${r.restore.files} files, ${formatBytes(r.restore.bytes)} into ${r.restore.target} ` +
      `in ${(r.restore.durationMs / 1000).toFixed(2)}s`,
    r.verification.ok
      ? `  verification:  ${p.green('passed')} — every file matches the snapshot (SHA-256)`
      : `  verification:  ${p.red('FAILED')} — ${r.verification.mismatches.length} mismatches`,
    ...r.verification.mismatches.slice(0, 10).map((m) => `    ${m.kind}: ${m.path}`),
    `  drill:         ${r.drill.verdict === 'pass' ? p.green('PASS') : p.red(r.drill.verdict.toUpperCase())} — ` +
      `restore took ${formatMs(r.drill.measuredRtoMs)}` +
      (r.drill.rtoMs === null ? '' : ` of an RTO of ${formatMs(r.drill.rtoMs)}`) +
      ` (verify ${formatMs(r.drill.phases.verifyMs)}), recorded as run ${r.drill.runId}`,
    `  report:        ${r.report.report.status.toUpperCase()} — ${r.report.htmlPath}` +
      (r.kept ? '' : ' (removed with the work directory; use --keep to open it)'),
    '',
    p.bold('lifeboat status'),
    renderStatus(ctx, r.status, 'UTC', Date.parse(r.status.generatedAt)).trimEnd(),
    '',
    p.bold('lifeboat report'),
    renderTable(r.report.report, { color: ctx.globals.color }).trimEnd(),
    '',
    r.kept
      ? `  kept:          ${r.workDir} (remove it with: rm -rf ${r.workDir})`
      : '  cleaned up:    the temporary repository was removed (use --keep to look at it)',
  ];
  return lines.join('\n');
}
