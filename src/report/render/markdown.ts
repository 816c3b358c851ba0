/**
 * Markdown for CI step summaries ($GITHUB_STEP_SUMMARY and the like): an overview table, then per
 * job a table of controls and the evidence in a collapsed <details> block.
 */
import { formatDuration } from '../../policy/duration.js';
import { formatInstant } from '../../policy/timeText.js';
import type { JobReport, Report } from '../model.js';
import { escapeMarkdown as md } from './escape.js';
import { STATUS_ICON, STATUS_LABEL, summaryText } from './labels.js';

export interface MarkdownOptions {
  timeZone?: string;
}

function jobSection(job: JobReport): string[] {
  const lines = [
    `## ${STATUS_ICON[job.status]} ${md(job.job)} — ${STATUS_LABEL[job.status]}`,
    '',
    `${md(job.kind)} job, policy \`${md(job.policy)}\`, repositories ${job.repositories.map(md).join(', ')}`,
    '',
    '| Status | Control | Measured | Target |',
    '|---|---|---|---|',
    ...job.controls.map(
      (c) => `| ${STATUS_ICON[c.status]} ${c.status} | ${md(c.id)} | ${md(c.measured)} | ${md(c.target)} |`,
    ),
  ];
  if (job.notApplicable.length) {
    lines.push(
      '',
      `Not applicable: ${job.notApplicable.map((n) => `${md(n.id)} (${md(n.reason)})`).join('; ')}`,
    );
  }
  const refs = job.controls.flatMap((c) => c.evidence.map((e) => ({ control: c.id, ...e })));
  if (refs.length) {
    lines.push(
      '',
      '<details><summary>Evidence</summary>',
      '',
      '| Control | Kind | ID | Repository | Time |',
      '|---|---|---|---|---|',
      ...refs.map(
        (r) => `| ${md(r.control)} | ${r.kind} | \`${md(r.id)}\` | ${md(r.repository)} | ${md(r.time)} |`,
      ),
      '',
      '</details>',
    );
  }
  return lines;
}

/** Render the report as GitHub-flavoured Markdown. */
export function renderMarkdown(report: Report, opts: MarkdownOptions = {}): string {
  const zone = opts.timeZone ?? 'UTC';
  const at = (t: string) => formatInstant(Date.parse(t), zone);
  const lines = [
    '# lifeboat compliance report',
    '',
    `**${STATUS_ICON[report.status]} ${STATUS_LABEL[report.status]}** — ${summaryText(report.summary)}  `,
    `Window: ${md(at(report.window.from))} → ${md(at(report.window.to))} (${formatDuration(report.window.durationMs)}) · ` +
      `${md(report.generator.name)} ${md(report.generator.version)} · schema \`${report.schema}\``,
    '',
    '| Job | Status | Pass | Warning | Fail | Unknown |',
    '|---|---|---|---|---|---|',
    ...report.jobs.map((j) => {
      const n = (s: string) => j.controls.filter((c) => c.status === s).length;
      return `| ${md(j.job)} | ${STATUS_ICON[j.status]} ${j.status} | ${n('pass')} | ${n('warning')} | ${n('fail')} | ${n('unknown')} |`;
    }),
  ];
  for (const job of report.jobs) lines.push('', ...jobSection(job));
  if (report.warnings.length) {
    lines.push('', '## Warnings', '', ...report.warnings.map((w) => `- ${md(w)}`));
  }
  return lines.join('\n') + '\n';
}
