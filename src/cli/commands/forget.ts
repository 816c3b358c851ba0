import type { Command } from 'commander';
import { forgetSnapshots, type JobRetentionPlan, type RepositoryForgetResult } from '../../app/forget.js';
import { UsageError } from '../../errors.js';
import { formatDuration, type RetentionRules } from '../../policy/retention.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';
import {
  addPruneOptions,
  describePrune,
  parseDurationFlag,
  pruneOptionsOf,
  type PruneFlags,
} from './prune.js';

interface ForgetFlags extends PruneFlags {
  repository?: string;
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  snapshot?: string[];
  dryRun: boolean;
  prune: boolean;
}

const COUNT_FLAGS = [
  ['keepLast', 'last', '--keep-last'],
  ['keepHourly', 'hourly', '--keep-hourly'],
  ['keepDaily', 'daily', '--keep-daily'],
  ['keepWeekly', 'weekly', '--keep-weekly'],
  ['keepMonthly', 'monthly', '--keep-monthly'],
  ['keepYearly', 'yearly', '--keep-yearly'],
] as const;

function parseCount(flag: string, text: string): number {
  if (/^(all|unlimited)$/i.test(text.trim())) return Infinity;
  if (!/^\d+$/.test(text.trim())) {
    throw new UsageError(`invalid ${flag} "${text}"`, { hint: 'Give a whole number (0 or more), or `all`.' });
  }
  return Number(text);
}

/** The rules given on the command line, or undefined when none is given (the policies' rules apply). */
function rulesOf(flags: ForgetFlags): RetentionRules | undefined {
  const rules: RetentionRules = {};
  for (const [key, rule, flag] of COUNT_FLAGS) {
    const text = flags[key];
    if (text !== undefined) rules[rule] = parseCount(flag, text);
  }
  if (flags.keepWithin !== undefined) rules.within = parseDurationFlag('--keep-within', flags.keepWithin);
  return Object.keys(rules).length ? rules : undefined;
}

/** `lifeboat forget [JOB…] [--keep-* …] [--dry-run] [--prune] [--repository NAME]` */
export function registerForget(program: Command, context: ContextFactory): void {
  const cmd = program
    .command('forget')
    .description("remove snapshots that the jobs' retention rules no longer keep (data goes with `prune`)")
    .argument('[jobs...]', 'job names (default: every configured job)')
    .option('--repository <name>', 'only this repository (default: every repository of the jobs)')
    .option('--keep-last <n>', 'keep the n newest snapshots')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours with snapshots')
    .option('--keep-daily <n>', '… of each of the last n days')
    .option('--keep-weekly <n>', '… of each of the last n ISO weeks')
    .option('--keep-monthly <n>', '… of each of the last n months')
    .option('--keep-yearly <n>', '… of each of the last n years')
    .option('--keep-within <duration>', 'keep every snapshot newer than this (e.g. 2d)')
    .option(
      '--snapshot <id...>',
      'forget exactly these snapshots (IDs or unique prefixes) instead of applying rules',
    )
    .option(
      '--dry-run',
      'show what would be forgotten and why each kept snapshot is kept; change nothing',
      false,
    )
    .option('--prune', 'prune each repository afterwards', false);
  addPruneOptions(cmd)
    .addHelpText(
      'after',
      "\nWithout --keep-* flags each job's policy retention applies (policies.<name>.retention); with any\n" +
        'flag, the flags replace it for every selected job. A job without rules keeps everything.\n' +
        'Always kept, whatever the rules say: the newest snapshot that passed a restore drill, and the\n' +
        'newest complete snapshot while every newer backup failed or was partial.\n' +
        'Rules count per job; hours, days and weeks follow defaults.timezone.\n\n' +
        'Examples:\n  lifeboat forget --dry-run\n  lifeboat forget web --keep-daily 7 --keep-weekly 4 --prune\n' +
        '  lifeboat forget --snapshot 3f2a1b9c --repository local',
    )
    .action(async (jobs: string[], flags: ForgetFlags, c: Command) => {
      const ctx = context(c);
      const rules = rulesOf(flags);
      const pruneOptions = pruneOptionsOf(flags);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const progress = createProgress(ctx);
      let phase = '';
      try {
        const results = await forgetSnapshots(
          config,
          {
            jobs,
            dryRun: flags.dryRun,
            prune: flags.prune,
            pruneOptions,
            ...(rules ? { rules } : {}),
            ...(flags.snapshot?.length ? { snapshots: flags.snapshot } : {}),
            ...(flags.repository ? { repository: flags.repository } : {}),
            onProgress: (e) => {
              if (e.phase !== phase) progress.step(`${e.job}: ${(phase = e.phase)}`);
              progress.update(e);
            },
          },
          deps,
        );
        progress.stop();
        emitResult(ctx, { ok: true, results }, () => results.map((r) => describe(ctx, r)).join('\n\n'));
      } finally {
        progress.stop();
      }
    });
}

/** `last 3, daily 7, within 2d`. */
function describeRules(rules: RetentionRules): string {
  const parts: string[] = [];
  for (const [, rule] of COUNT_FLAGS) {
    const n = rules[rule];
    if (n !== undefined) parts.push(`${rule} ${n === Infinity ? 'all' : n}`);
  }
  if (rules.within !== undefined) parts.push(`within ${formatDuration(rules.within)}`);
  return parts.join(', ');
}

const when = (iso: string) => iso.replace('T', ' ').slice(0, 16);

function describeJob(ctx: CommandContext, plan: JobRetentionPlan, dryRun: boolean): string[] {
  const p = painter(ctx);
  const rules =
    plan.rulesFrom === 'none'
      ? 'no retention rules: keeping everything'
      : `${plan.rulesFrom}: ${describeRules(plan.rules)}`;
  const lines = [`  ${p.bold(plan.job)} (${rules})`];
  const rows = [
    ...plan.keep.map((s) => ({ s, keep: true, why: s.reasons.join('; ') })),
    ...plan.forget.map((s) => ({ s, keep: false, why: '' })),
  ].sort((a, b) => (a.s.startedAt < b.s.startedAt ? 1 : -1));
  for (const { s, keep, why } of rows) {
    const verdict = keep ? p.green('keep  ') : p.yellow(dryRun ? 'forget' : 'forgot');
    lines.push(
      `    ${verdict} ${s.id.slice(0, 12)}  ${when(s.startedAt)}  ${s.host}${s.partial ? ' (partial)' : ''}${why ? `  ${p.dim(why)}` : ''}`,
    );
  }
  if (rows.length === 0) lines.push('    no snapshots');
  lines.push(
    `    ${plan.keep.length} kept, ${plan.forget.length} ${dryRun ? 'would be forgotten' : 'forgotten'}`,
  );
  return lines;
}

function describe(ctx: CommandContext, r: RepositoryForgetResult): string {
  const p = painter(ctx);
  const lines = [`${p.bold(r.repository)} (${r.url})${r.dryRun ? ' — dry run, nothing changed' : ''}`];
  for (const plan of r.jobs) lines.push(...describeJob(ctx, plan, r.dryRun));
  for (const s of r.explicit)
    lines.push(
      `  ${p.yellow(r.dryRun ? 'forget' : 'forgot')} ${s.id.slice(0, 12)}${s.startedAt ? `  ${when(s.startedAt)}  ${s.host}` : '  (damaged)'}`,
    );
  for (const s of r.locked ?? [])
    lines.push(
      `  ${p.yellow('locked')} ${s.id.slice(0, 12)} until ${s.lockedUntil} (Object Lock): forgotten after that`,
    );
  if (!r.dryRun) lines.push(`${p.green('✔')} forgot ${r.forgotten} snapshot${r.forgotten === 1 ? '' : 's'}`);
  if (r.prune) lines.push(describePrune(ctx, r.prune));
  else if (!r.dryRun && r.forgotten > 0) lines.push(p.dim('run `lifeboat prune` to free the space'));
  return lines.join('\n');
}
