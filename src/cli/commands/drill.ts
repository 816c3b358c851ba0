import type { Command } from 'commander';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { runDrills, type DrillResult, type DrillRunResult } from '../../app/drill.js';
import { cleanupDrillLeftovers, type DrillCleanupResult } from '../../app/drillCleanup.js';
import { drillJunit } from '../../app/drillJunit.js';
import { formatMs } from '../../app/drillModel.js';
import { ExitCode, UsageError } from '../../errors.js';
import { writeFileAtomic } from '../../platform/atomicWrite.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

const FORMATS = ['text', 'json', 'junit'] as const;
type Format = (typeof FORMATS)[number];

interface DrillFlags {
  due: boolean;
  snapshot?: string;
  keepOnFailure: boolean;
  format: string;
  output?: string;
  repository?: string;
}

/** `lifeboat drill [JOB…]` and `lifeboat drill cleanup` */
export function registerDrill(program: Command, context: ContextFactory): void {
  const drill = program
    .command('drill')
    .description(
      'restore jobs into throwaway scratch environments, verify them and time them against the RTO',
    )
    .argument('[jobs...]', 'job names (default: every job)')
    .option(
      '--due',
      'only jobs whose policy drill cadence (drill.every) has elapsed since their last drill',
      false,
    )
    .option('--snapshot <ref>', 'latest | random | a snapshot ID (default: the policy’s drill.snapshot)')
    .option('--keep-on-failure', 'keep the scratch environment of a failed drill to look at', false)
    .option('--format <format>', `report format: ${FORMATS.join(' | ')}`, 'text')
    .option('--output <file>', 'write the report to this file (a summary still goes to stdout)')
    .option('--repository <name>', 'drill from this repository (default: the job’s first reachable one)')
    .addHelpText(
      'after',
      '\nEach drill restores a restore point into a scratch environment — a fresh directory (files,\n' +
        'snapshot), an ephemeral PostgreSQL or MariaDB server or a scratch database on the job’s\n' +
        'drill.server (databases), a sparse file on a read-only loop device (images) — verifies it\n' +
        '(file contents, database fingerprint, fsck, the job’s drill.assertions), times each phase and\n' +
        'records the verdict in the journal: pass, fail, or breach when the restore (plus provisioning\n' +
        'when the policy says drill.provisioningCounts: true) took longer than the RTO. The scratch\n' +
        'environment is always removed, also on Ctrl-C; `lifeboat drill cleanup` removes what a killed\n' +
        'drill left behind. Exit code 0 when every drill passed, 4 when any failed or breached.\n\n' +
        'Examples:\n' +
        '  lifeboat drill web\n' +
        '  lifeboat drill --due\n' +
        '  lifeboat drill shop-db --snapshot random\n' +
        '  lifeboat drill --format junit --output drills.xml     (CI)\n' +
        '  lifeboat drill cleanup',
    )
    .action(async (jobs: string[], opts: DrillFlags, cmd: Command) => {
      const ctx = context(cmd);
      if (!(FORMATS as readonly string[]).includes(opts.format)) {
        throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, not '${opts.format}'`);
      }
      const format = opts.format as Format;
      const { config } = await loadCommandConfig(ctx);
      const progress = createProgress(ctx);
      const result = await runDrills(
        config,
        {
          jobs,
          due: opts.due,
          keepOnFailure: opts.keepOnFailure,
          ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
          ...(opts.repository ? { repository: opts.repository } : {}),
          onStep: (e) => progress.step(`${e.job}: ${e.text}`),
          onProgress: (e) => progress.update(e),
        },
        commandDeps(ctx, config),
      );
      progress.stop();
      if (result.exitCode !== ExitCode.ok) ctx.setExitCode(result.exitCode);
      const doc = result;
      if (opts.output) {
        const file = resolve(opts.output);
        await writeFileAtomic(file, render(ctx, format, result, false), { mode: 0o644 });
        emitResult(
          ctx,
          { ...doc, report: file },
          () => `${describeRun(ctx, result)}\nreport (${format}) written to ${file}`,
        );
        return;
      }
      if (format === 'junit' && !ctx.globals.json) ctx.out(render(ctx, format, result, false));
      else if (format === 'json') ctx.out(JSON.stringify(doc, null, 2) + '\n');
      else emitResult(ctx, doc, () => describeRun(ctx, result));
    });

  drill
    .command('cleanup')
    .description('remove scratch environments left by killed drills (and ones kept with --keep-on-failure)')
    .option('--force', 'also remove environments of drills that are still running', false)
    .option('--dry-run', 'only list what would be removed', false)
    .action(async (opts: { force: boolean; dryRun: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const result = await cleanupDrillLeftovers(config, opts, commandDeps(ctx, config));
      if (!result.ok) ctx.setExitCode(ExitCode.internal);
      emitResult(ctx, result, () => describeCleanup(ctx, result));
    });
}

function render(ctx: CommandContext, format: Format, result: DrillRunResult, color: boolean): string {
  if (format === 'junit') return drillJunit(result.drills, hostname());
  if (format === 'json') return JSON.stringify(result, null, 2) + '\n';
  const plain = { ...ctx, globals: { ...ctx.globals, color } };
  return describeRun(plain, result) + '\n';
}

const VERDICT_MARK = { pass: '✔', fail: '✘', breach: '!' } as const;

function describeDrill(ctx: CommandContext, r: DrillResult): string {
  const p = painter(ctx);
  const paint = r.verdict === 'pass' ? p.green : r.verdict === 'breach' ? p.yellow : p.red;
  const verdict = r.outcome === 'interrupted' ? 'INTERRUPTED' : r.verdict.toUpperCase();
  const head =
    `${paint(VERDICT_MARK[r.verdict])} ${p.bold(r.job)}: ${paint(verdict)}` +
    (r.snapshotId
      ? ` — snapshot ${r.snapshotId.slice(0, 12)} (${r.snapshotTime}, ${r.selection}) from ${r.repository}`
      : '');
  const counted = r.provisioningCounts ? 'provision + restore' : 'restore';
  const lines = [
    head,
    `    ${counted} ${formatMs(r.measuredRtoMs)}` +
      (r.rtoMs === null ? ' (no RTO set)' : ` of an RTO of ${formatMs(r.rtoMs)}`) +
      ` · provision ${formatMs(r.phases.provisionMs)}, restore ${formatMs(r.phases.restoreMs)}, ` +
      `verify ${formatMs(r.phases.verifyMs)}, teardown ${formatMs(r.phases.teardownMs)} · ${r.scratch}`,
  ];
  for (const s of r.steps) {
    const mark = s.status === 'pass' ? p.green('✔') : s.status === 'fail' ? p.red('✘') : p.dim('–');
    const text = `${s.name}${s.message ? `: ${s.message}` : ''}`;
    lines.push(`    ${mark} ${s.status === 'fail' ? p.red(text) : text}`);
  }
  if (r.coverage) {
    lines.push(
      `    coverage: ${r.coverage.drilled} of ${r.coverage.points} restore point${r.coverage.points === 1 ? '' : 's'} ` +
        `of the last ${formatMs(r.coverage.windowMs)} drilled (${Math.round(r.coverage.share * 100)}%)`,
    );
  }
  if (r.kept)
    lines.push(p.yellow(`    kept: ${r.kept.description} — remove with \`lifeboat drill cleanup\``));
  if (!r.recorded) lines.push(p.yellow('    not recorded in the journal (see the warnings above)'));
  return lines.join('\n');
}

function describeRun(ctx: CommandContext, result: DrillRunResult): string {
  const p = painter(ctx);
  const lines = result.drills.map((r) => describeDrill(ctx, r));
  for (const n of result.notDue) lines.push(p.dim(`– ${n.job}: ${n.reason}`));
  if (result.drills.length === 0) lines.push(result.notDue.length ? 'no drill is due' : 'no job to drill');
  else {
    const count = (v: string) => result.drills.filter((d) => d.verdict === v).length;
    lines.push(
      `${result.drills.length} drill${result.drills.length === 1 ? '' : 's'}: ${count('pass')} passed, ${count('fail')} failed, ${count('breach')} breached`,
    );
  }
  return lines.join('\n');
}

function describeCleanup(ctx: CommandContext, r: DrillCleanupResult): string {
  const p = painter(ctx);
  const lines: string[] = [];
  for (const e of r.removed) {
    const what = `${e.kind} of ${e.job} (${e.id}, ${e.kept ? 'kept' : 'left'} since ${e.createdAt})`;
    if (e.problems.length === 0) {
      lines.push(`${p.green('✔')} ${r.dryRun ? 'would remove' : 'removed'} ${what}`);
      for (const res of e.resources) lines.push(`    ${res}`);
    } else {
      lines.push(`${p.red('✘')} could not fully remove ${what}:`);
      for (const problem of e.problems) lines.push(p.red(`    ${problem}`));
    }
  }
  for (const u of r.inUse)
    lines.push(p.dim(`– ${u.job} (${u.id}): in use by the running drill pid ${u.pid} (--force removes it)`));
  for (const u of r.unreadable) lines.push(p.red(`✘ ${u.file}: ${u.problem}`));
  if (lines.length === 0) lines.push('nothing to clean up');
  return lines.join('\n');
}
