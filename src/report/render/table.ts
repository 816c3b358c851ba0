/**
 * The terminal rendering of a report: per job, one line per control (status, id, what was
 * measured), with the target and the evidence under every control that did not pass. Colour only
 * when asked (the CLI decides: --no-color, NO_COLOR, not a TTY).
 */
import { formatDuration } from '../../policy/duration.js';
import { formatInstant } from '../../policy/timeText.js';
import type { ControlStatus, Report } from '../model.js';
import { plainText } from './escape.js';
import { STATUS_LABEL, summaryText } from './labels.js';

export interface TableOptions {
  color: boolean;
  /** Zone of the times shown; default UTC. */
  timeZone?: string;
}

const COLOUR: Record<ControlStatus, string> = { pass: '32', warning: '33', fail: '31', unknown: '35' };

/** Render the report for a terminal. */
export function renderTable(report: Report, opts: TableOptions): string {
  const zone = opts.timeZone ?? 'UTC';
  const paint = (code: string, s: string) => (opts.color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const status = (s: ControlStatus) => paint(COLOUR[s], STATUS_LABEL[s].padEnd(7));
  const at = (t: string) => formatInstant(Date.parse(t), zone);
  const lines: string[] = [
    paint('1', 'lifeboat compliance report') +
      ` — ${at(report.generatedAt)}, window ${formatDuration(report.window.durationMs)} (from ${at(report.window.from)})`,
    `overall: ${status(report.status).trimEnd()} — ${summaryText(report.summary)}`,
  ];
  for (const job of report.jobs) {
    lines.push(
      '',
      `${paint('1', plainText(job.job))} (${plainText(job.kind)}, policy ${plainText(job.policy)}, ` +
        `repositories ${job.repositories.map(plainText).join(', ')}): ${status(job.status).trimEnd()}`,
    );
    const idWidth = Math.max(...job.controls.map((c) => c.id.length));
    for (const c of job.controls) {
      lines.push(`  ${status(c.status)}  ${c.id.padEnd(idWidth)}  ${plainText(c.measured)}`);
      if (c.status !== 'pass') {
        const indent = ' '.repeat(2 + 7 + 2 + idWidth + 2);
        lines.push(`${indent}${paint('2', `target: ${plainText(c.target)}`)}`);
        const refs = c.evidence.slice(0, 3).map((e) => `${e.kind} ${e.id.slice(0, 16)} in ${e.repository}`);
        if (refs.length) {
          const more = c.evidence.length > 3 ? ` (+${c.evidence.length - 3} more)` : '';
          lines.push(`${indent}${paint('2', `evidence: ${plainText(refs.join(', '))}${more}`)}`);
        }
      }
    }
    if (job.notApplicable.length) {
      lines.push(paint('2', `  not applicable: ${job.notApplicable.map((n) => n.id).join(', ')}`));
    }
  }
  const broken = report.repositories.filter((r) => !r.opened);
  if (broken.length || report.warnings.length) lines.push('');
  for (const r of broken) {
    lines.push(
      paint(
        '31',
        `repository ${plainText(r.name)} could not be opened: ${plainText(r.error?.message ?? '')}`,
      ),
    );
    if (r.error?.hint) lines.push(`  hint: ${plainText(r.error.hint)}`);
  }
  for (const w of report.warnings.filter(
    (w) => !broken.some((r) => w.startsWith(`repository ${r.name} could not`)),
  )) {
    lines.push(paint('33', `warning: ${plainText(w)}`));
  }
  return lines.join('\n') + '\n';
}
