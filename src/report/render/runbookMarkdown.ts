/** The runbook as Markdown: print it, keep it next to the passwords, follow it step by step. */
import { formatDuration } from '../../policy/duration.js';
import { formatInstant } from '../../policy/timeText.js';
import type { Runbook, RunbookJob } from '../runbook.js';
import { escapeMarkdown as md } from './escape.js';

/** The restore time to expect, in words. */
export function expectedText(j: RunbookJob): string {
  if (j.expectedRestoreMs === null) return 'unknown (no drill timed a restore)';
  const worst =
    j.worstRestoreMs !== null && j.timedDrills > 1 ? `, worst ${formatDuration(j.worstRestoreMs)}` : '';
  const from =
    j.timedDrills === 1 ? 'the last timed drill' : `median of the last ${j.timedDrills} timed drills`;
  return `about ${formatDuration(j.expectedRestoreMs)} (${from}${worst})`;
}

/** The last drill, in words. */
export function lastDrillText(j: RunbookJob, zone: string): string {
  const d = j.lastDrill;
  if (!d) return 'no drill recorded';
  const took = d.measuredMs === null ? '' : `, restore took ${formatDuration(d.measuredMs)}`;
  return `${d.verdict} on ${formatInstant(Date.parse(d.time), zone)} in ${d.repository}${took} (run ${d.id})`;
}

function fence(command: string): string[] {
  // Commands are shell-quoted already; a fence longer than any backtick run keeps them literal.
  const ticks = '`'.repeat(Math.max(3, ...[...command.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return [`${ticks}sh`, command, ticks];
}

function jobSection(j: RunbookJob, zone: string): string[] {
  const lines = [
    `## ${j.step}. ${md(j.job)} (${md(j.kind)})`,
    '',
    `Policy \`${md(j.policy)}\`` +
      (j.rpoMs !== null ? ` · RPO ${formatDuration(j.rpoMs)}` : '') +
      (j.rtoMs !== null ? ` · RTO ${formatDuration(j.rtoMs)}` : '') +
      (j.dependsOn.length ? ` · after ${j.dependsOn.map(md).join(', ')}` : ''),
    '',
    '| Repository | Reachable | Restore points | Newest | Age |',
    '|---|---|---|---|---|',
    ...j.locations.map(
      (l) =>
        `| ${md(l.repository)}${l.offsite ? ' (offsite)' : ''} | ${l.reachable ? 'yes' : `no: ${md(l.error ?? '')}`} | ${l.restorePoints} | ` +
        `${l.newest ? `\`${l.newest.id.slice(0, 12)}\` ${md(formatInstant(Date.parse(l.newest.time), zone))}` : '-'} | ` +
        `${l.newest ? formatDuration(l.newest.ageMs) : '-'} |`,
    ),
    '',
    `- Restore from: ${j.restoreFrom ? md(j.restoreFrom) : '**no usable repository**'}`,
    `- Expected restore time: ${md(expectedText(j))}`,
    `- Last drill: ${md(lastDrillText(j, zone))}`,
    ...j.notes.map((n) => `- **Note:** ${md(n)}`),
    '',
  ];
  j.commands.forEach((c, i) =>
    lines.push(`${i + 1}. ${md(c.purpose)}:`, '', ...fence(c.command).map((l) => `   ${l}`), ''),
  );
  return lines;
}

/** Render the runbook as Markdown. */
export function renderRunbookMarkdown(r: Runbook, opts: { timeZone?: string } = {}): string {
  const zone = opts.timeZone ?? 'UTC';
  const lines = [
    '# lifeboat recovery runbook',
    '',
    `Generated ${md(formatInstant(Date.parse(r.generatedAt), zone))} by ${md(r.generator.name)} ${md(r.generator.version)} ` +
      `from \`${md(r.configPath)}\`. Restore the jobs in this order; each needs the repository password ` +
      '(the configuration names where it comes from).',
    '',
    '## Repositories',
    '',
    '| Repository | Location | Offsite | Reachable |',
    '|---|---|---|---|',
    ...r.repositories.map(
      (x) =>
        `| ${md(x.name)} | ${md(x.location)} | ${x.offsite ? 'yes' : 'no'} | ${x.reachable ? 'yes' : `no: ${md(x.error ?? '')}`} |`,
    ),
    '',
    '## Recovery order',
    '',
    ...r.jobs.map(
      (j) =>
        `${j.step}. ${md(j.job)}${j.dependsOn.length ? ` (after ${j.dependsOn.map(md).join(', ')})` : ''}`,
    ),
    '',
  ];
  for (const j of r.jobs) lines.push(...jobSection(j, zone));
  if (r.warnings.length) lines.push('## Warnings', '', ...r.warnings.map((w) => `- ${md(w)}`), '');
  return lines.join('\n');
}
