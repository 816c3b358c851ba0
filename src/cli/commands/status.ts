import type { Command } from 'commander';
import { collectStatus, type JobStatus, type StatusResult } from '../../app/status.js';
import { formatDuration } from '../../policy/duration.js';
import type { TargetState } from '../../policy/rpo.js';
import type { RtoState } from '../../policy/rto.js';
import { formatInstant } from '../../policy/timeText.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter, table } from '../output.js';
import { formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

/** `lifeboat status [JOB…]` */
export function registerStatus(program: Command, context: ContextFactory): void {
  program
    .command('status')
    .description('per job: restore-point age against the RPO, next run, last drill against the RTO, copies')
    .argument('[jobs...]', 'job names from the configuration (default: all)')
    .addHelpText(
      'after',
      '\nStates: OK; AT RISK when a restore point is at least 80% of the RPO old (or the restore took\n' +
        '80% of the RTO, or a drill is overdue or missing); BREACHED when the target is missed;\n' +
        'UNKNOWN when a repository cannot be read — never shown as OK. A lagging copy in any of\n' +
        'the job’s repositories counts. Exit code 4 when anything is breached (10/12 when a\n' +
        'repository cannot be opened).\n\n' +
        'Examples:\n  lifeboat status\n  lifeboat status web --json | jq .jobs',
    )
    .action(async (jobs: string[], _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const result = await collectStatus(config, { jobs, sizes: true }, deps);
      for (const w of result.warnings) ctx.logger.warn(w);
      ctx.setExitCode(result.exitCode);
      emitResult(ctx, result, () => renderStatus(ctx, result, config.defaults.timezone, deps.clock.now()));
    });
}

const LABEL: Record<TargetState | RtoState, string> = {
  ok: 'OK',
  'at-risk': 'AT RISK',
  unknown: 'UNKNOWN',
  breached: 'BREACHED',
  'no-drill': 'NO DRILL',
  'not-required': '-',
};

function paintState(ctx: CommandContext, state: TargetState | RtoState): string {
  const p = painter(ctx);
  const text = LABEL[state];
  if (state === 'ok') return p.green(text);
  if (state === 'breached') return p.red(text);
  if (state === 'not-required') return text;
  return p.yellow(text);
}

function ageText(ms: number | undefined): string {
  return ms === undefined ? 'none' : formatDuration(ms);
}

function row(ctx: CommandContext, j: JobStatus, zone: string, now: number): string[] {
  const points = j.repositories
    .map((r) => {
      const age = r.state === 'unknown' ? '?' : ageText(r.ageMs);
      return `${r.repository}${r.offsite ? '*' : ''} ${age} ${paintState(ctx, r.state)}`;
    })
    .join(', ');
  const rpo = j.rpoMs === undefined ? '' : ` / ${formatDuration(j.rpoMs)}`;
  const next = j.nextRunAt ? formatInstant(Date.parse(j.nextRunAt), zone, now) : 'by hand';
  const drill =
    j.drill.state === 'not-required'
      ? '-'
      : j.drill.state === 'no-drill'
        ? `${paintState(ctx, j.drill.state)} (no drill yet)`
        : `${paintState(ctx, j.drill.state)} ${j.drill.measuredMs === undefined ? '' : formatDuration(j.drill.measuredMs)}` +
          `${j.drill.rtoMs === undefined ? '' : ` / ${formatDuration(j.drill.rtoMs)}`}`;
  const copies = j.copies
    ? `${j.copies.have}/${j.copies.required}` +
      (j.copies.requiredOffsite ? ` (${j.copies.haveOffsite}/${j.copies.requiredOffsite} offsite)` : '')
    : '-';
  return [j.job, paintState(ctx, j.state), points + rpo, next, drill.trim(), copies];
}

/** The status table and the reasons behind every state that is not OK. */
export function renderStatus(ctx: CommandContext, r: StatusResult, zone: string, now: number): string {
  if (r.jobs.length === 0) return 'no jobs configured';
  const lines = [
    table(
      ['JOB', 'STATE', 'RESTORE POINTS / RPO', 'NEXT RUN', 'DRILL / RTO', 'COPIES'],
      r.jobs.map((j) => row(ctx, j, zone, now)),
    ),
  ];
  const offsite = r.repositories.some((x) => x.offsite);
  if (offsite) lines.push('(* offsite)');
  for (const j of r.jobs.filter((x) => x.state !== 'ok')) {
    const why = [
      ...j.repositories.filter((x) => x.state !== 'ok').map((x) => `${x.repository}: ${x.reason}`),
      ...j.repositories.flatMap((x) =>
        x.immutability && x.immutability.targetState !== 'ok' ? [x.immutability.reason] : [],
      ),
      ...(j.drill.state !== 'ok' && j.drill.state !== 'not-required' ? [`drill: ${j.drill.reason}`] : []),
      ...(j.copies && j.copies.state !== 'ok' ? [`copies: ${j.copies.reason}`] : []),
    ];
    lines.push(`${j.job}: ${why.join('; ')}`);
  }
  for (const repo of r.repositories) {
    if (repo.error) {
      lines.push(painter(ctx).red(`repository ${repo.repository} cannot be opened: ${repo.error.message}`));
      if (repo.error.hint) lines.push(`  hint: ${repo.error.hint}`);
    } else if (repo.storedBytes !== undefined) {
      lines.push(
        `repository ${repo.repository}: ${repo.snapshots} snapshots, ${formatBytes(repo.storedBytes)} stored`,
      );
    }
  }
  return lines.join('\n');
}
