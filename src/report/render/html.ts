/**
 * The HTML report: ONE self-contained file (inline CSS and SVG, no script, no external asset —
 * a Content-Security-Policy forbids loading any), readable offline and printable. Per job: the
 * timeline of restore points with the RPO exposure, the drill restore times against the RTO, the
 * controls and the evidence behind them.
 */
import { formatDuration } from '../../policy/duration.js';
import { formatInstant } from '../../policy/timeText.js';
import type { ControlStatus, JobReport, Report } from '../model.js';
import { CHART_COLOURS, drillChart, timelineChart } from './charts.js';
import { escapeHtml as h } from './escape.js';
import { STATUS_LABEL, summaryText } from './labels.js';

export interface HtmlOptions {
  timeZone?: string;
}

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: ${CHART_COLOURS.text}; margin: 0 auto; padding: 24px; max-width: 1120px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta, .note { color: #57606a; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid ${CHART_COLOURS.grid}; }
th { background: #f6f8fa; font-weight: 600; }
td.id, td.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.badge { display: inline-block; min-width: 70px; text-align: center; padding: 1px 8px; border-radius: 10px;
  font-size: 12px; font-weight: 700; color: #fff; }
.badge.pass { background: ${CHART_COLOURS.pass}; } .badge.warning { background: ${CHART_COLOURS.warning}; }
.badge.fail { background: ${CHART_COLOURS.fail}; } .badge.unknown { background: ${CHART_COLOURS.unknown}; }
section.job { border-top: 3px solid ${CHART_COLOURS.grid}; padding-top: 16px; margin-top: 28px; }
figure { margin: 8px 0; }
figcaption { font-size: 12px; color: #57606a; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .axis { font-size: 11px; fill: #57606a; } svg .lane { font-size: 12px; fill: ${CHART_COLOURS.text}; }
svg .limit { font-size: 11px; fill: ${CHART_COLOURS.fail}; font-weight: 600; } svg .empty { font-size: 13px; fill: #57606a; }
ul.warnings li { margin: 4px 0; }
@page { margin: 14mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  section.job { break-before: page; border-top: none; }
  figure, tr { break-inside: avoid; }
  .badge { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`;

function badge(status: ControlStatus): string {
  return `<span class="badge ${status}">${STATUS_LABEL[status]}</span>`;
}

function jobSection(job: JobReport, index: number, zone: string): string {
  const tl = job.timeline;
  const parts = [
    `<section class="job" id="job-${index}">`,
    `<h2>${h(job.job)} ${badge(job.status)}</h2>`,
    `<p class="meta">${h(job.kind)} job · policy <code>${h(job.policy)}</code> · repositories ${h(job.repositories.join(', '))}` +
      (tl.rpoMs !== null ? ` · RPO ${h(formatDuration(tl.rpoMs))}` : '') +
      (tl.rtoMs !== null ? ` · RTO ${h(formatDuration(tl.rtoMs))}` : '') +
      '</p>',
    '<figure>',
    timelineChart(job, zone),
    '<figcaption>Restore points per repository (ticks) and RPO exposure: the age of the newest restore point over ' +
      'the window; shaded where it was at least the RPO.</figcaption>',
    '</figure>',
    '<figure>',
    drillChart(job, zone),
    '<figcaption>Drills: measured restore time (dots: green passed, red too slow, amber verification failed; ' +
      'crosses: no restore timed) against the RTO.</figcaption>',
    '</figure>',
    '<h3>Controls</h3>',
    '<table class="controls"><thead><tr><th>Status</th><th>Control</th><th>Measured</th><th>Target</th></tr></thead><tbody>',
    ...job.controls.map(
      (c) =>
        `<tr class="control ${c.status}"><td>${badge(c.status)}</td><td><strong>${h(c.title)}</strong><br><code>${h(c.id)}</code></td>` +
        `<td>${h(c.measured)}</td><td>${h(c.target)}</td></tr>`,
    ),
    '</tbody></table>',
  ];
  if (job.notApplicable.length) {
    parts.push(
      `<p class="note">Not applicable: ${job.notApplicable.map((n) => `<code>${h(n.id)}</code> (${h(n.reason)})`).join('; ')}</p>`,
    );
  }
  const refs = job.controls.flatMap((c) => c.evidence.map((e) => ({ control: c.id, ...e })));
  parts.push('<h3>Evidence</h3>');
  if (refs.length === 0) parts.push('<p class="note">No evidence: nothing was recorded for this job.</p>');
  else {
    parts.push(
      '<table class="evidence"><thead><tr><th>Control</th><th>Kind</th><th>ID</th><th>Repository</th><th>Time</th></tr></thead><tbody>',
      ...refs.map(
        (r) =>
          `<tr><td><code>${h(r.control)}</code></td><td>${h(r.kind)}</td><td class="id">${h(r.id)}</td>` +
          `<td>${h(r.repository)}</td><td>${h(formatInstant(Date.parse(r.time), zone))}</td></tr>`,
      ),
      '</tbody></table>',
    );
  }
  parts.push('</section>');
  return parts.join('\n');
}

/** Render the report as one self-contained HTML document. */
export function renderHtml(report: Report, opts: HtmlOptions = {}): string {
  const zone = opts.timeZone ?? 'UTC';
  const at = (t: string) => formatInstant(Date.parse(t), zone);
  const title = `lifeboat compliance report — ${at(report.generatedAt)}`;
  const overview = report.jobs.map((j, i) => {
    const count = (s: ControlStatus) => j.controls.filter((c) => c.status === s).length;
    return (
      `<tr><td><a href="#job-${i}">${h(j.job)}</a></td><td>${badge(j.status)}</td><td><code>${h(j.policy)}</code></td>` +
      `<td>${count('pass')}</td><td>${count('warning')}</td><td>${count('fail')}</td><td>${count('unknown')}</td></tr>`
    );
  });
  const repositories = report.repositories.map(
    (r) =>
      `<tr><td>${h(r.name)}</td><td>${r.offsite ? 'yes' : 'no'}</td>` +
      `<td>${r.opened ? badge('pass') : `${badge('unknown')} ${h(r.error?.message ?? '')}${r.error?.hint ? `<br><span class="note">hint: ${h(r.error.hint)}</span>` : ''}`}</td>` +
      `<td>${r.restorePoints}</td><td>${r.journalRecords}</td><td>${r.journalProblems}</td></tr>`,
  );
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta name="generator" content="${h(`${report.generator.name} ${report.generator.version}`)}">`,
    `<title>${h(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<header>',
    '<h1>lifeboat compliance report</h1>',
    `<p class="overall">${badge(report.status)} ${h(summaryText(report.summary))}</p>`,
    `<p class="meta">Window ${h(at(report.window.from))} → ${h(at(report.window.to))} (${h(formatDuration(report.window.durationMs))}) · ` +
      `generated ${h(at(report.generatedAt))} by ${h(report.generator.name)} ${h(report.generator.version)} · schema <code>${h(report.schema)}</code></p>`,
    '</header>',
    '<table class="overview"><thead><tr><th>Job</th><th>Status</th><th>Policy</th><th>Pass</th><th>Warning</th><th>Fail</th><th>Unknown</th></tr></thead><tbody>',
    ...overview,
    '</tbody></table>',
    ...report.jobs.map((j, i) => jobSection(j, i, zone)),
    '<section class="repositories">',
    '<h2>Repositories</h2>',
    '<table><thead><tr><th>Repository</th><th>Offsite</th><th>Opened</th><th>Snapshots</th><th>Journal records</th><th>Unusable records</th></tr></thead><tbody>',
    ...repositories,
    '</tbody></table>',
  ];
  if (report.unconfiguredJobs.length) {
    parts.push(
      '<h3>Jobs no longer configured</h3>',
      '<table><thead><tr><th>Job</th><th>Journal records</th><th>Restore points</th><th>Last run</th></tr></thead><tbody>',
      ...report.unconfiguredJobs.map(
        (u) =>
          `<tr><td>${h(u.job)}</td><td>${u.runs}</td><td>${u.restorePoints}</td><td>${u.lastRunAt ? h(at(u.lastRunAt)) : '-'}</td></tr>`,
      ),
      '</tbody></table>',
    );
  }
  if (report.warnings.length) {
    parts.push(
      '<h3>Warnings</h3>',
      '<ul class="warnings">',
      ...report.warnings.map((w) => `<li>${h(w)}</li>`),
      '</ul>',
    );
  }
  parts.push(
    '</section>',
    '<footer><p class="note">Every control names the snapshots and journal runs it rests on; ' +
      '<code>lifeboat report --evidence-dir DIR</code> saves the raw records with a SHA-256 manifest.</p></footer>',
    '</body>',
    '</html>',
    '',
  );
  return parts.join('\n');
}
