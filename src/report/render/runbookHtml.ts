/** The runbook as one self-contained, printable HTML page (no script, no external asset). */
import { formatDuration } from '../../policy/duration.js';
import { formatInstant } from '../../policy/timeText.js';
import type { Runbook, RunbookJob } from '../runbook.js';
import { escapeHtml as h } from './escape.js';
import { expectedText, lastDrillText } from './runbookMarkdown.js';

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #24292f;
  margin: 0 auto; padding: 24px; max-width: 1000px; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 28px; border-top: 3px solid #d0d7de; padding-top: 14px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #d0d7de; vertical-align: top; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: 8px 10px; border-radius: 6px; white-space: pre-wrap; word-break: break-all; margin: 4px 0 12px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.note { color: #9a6700; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; } .meta { color: #57606a; }
@page { margin: 14mm; }
@media print { body { padding: 0; max-width: none; } section.job { break-inside: avoid-page; } pre { border: 1px solid #d0d7de; } }
`;

function jobSection(j: RunbookJob, zone: string): string {
  const at = (t: string) => formatInstant(Date.parse(t), zone);
  return [
    `<section class="job" id="step-${j.step}">`,
    `<h2>${j.step}. ${h(j.job)} <span class="meta">(${h(j.kind)})</span></h2>`,
    `<p class="meta">policy <code>${h(j.policy)}</code>` +
      (j.rpoMs !== null ? ` · RPO ${h(formatDuration(j.rpoMs))}` : '') +
      (j.rtoMs !== null ? ` · RTO ${h(formatDuration(j.rtoMs))}` : '') +
      (j.dependsOn.length ? ` · after ${h(j.dependsOn.join(', '))}` : '') +
      '</p>',
    '<table><thead><tr><th>Repository</th><th>Reachable</th><th>Restore points</th><th>Newest</th><th>Age</th></tr></thead><tbody>',
    ...j.locations.map(
      (l) =>
        `<tr><td>${h(l.repository)}${l.offsite ? ' (offsite)' : ''}</td>` +
        `<td>${l.reachable ? 'yes' : `<span class="bad">no</span>: ${h(l.error ?? '')}`}</td><td>${l.restorePoints}</td>` +
        `<td>${l.newest ? `<code>${h(l.newest.id.slice(0, 12))}</code> ${h(at(l.newest.time))}` : '-'}</td>` +
        `<td>${l.newest ? h(formatDuration(l.newest.ageMs)) : '-'}</td></tr>`,
    ),
    '</tbody></table>',
    '<ul>',
    `<li>Restore from: ${j.restoreFrom ? h(j.restoreFrom) : '<span class="bad">no usable repository</span>'}</li>`,
    `<li>Expected restore time: ${h(expectedText(j))}</li>`,
    `<li>Last drill: ${h(lastDrillText(j, zone))}</li>`,
    ...j.notes.map((n) => `<li class="note">${h(n)}</li>`),
    '</ul>',
    '<ol class="commands">',
    ...j.commands.map((c) => `<li>${h(c.purpose)}:<pre>${h(c.command)}</pre></li>`),
    '</ol>',
    '</section>',
  ].join('\n');
}

/** Render the runbook as one HTML document. */
export function renderRunbookHtml(r: Runbook, opts: { timeZone?: string } = {}): string {
  const zone = opts.timeZone ?? 'UTC';
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${h(`lifeboat recovery runbook — ${formatInstant(Date.parse(r.generatedAt), zone)}`)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<h1>lifeboat recovery runbook</h1>',
    `<p class="meta">Generated ${h(formatInstant(Date.parse(r.generatedAt), zone))} by ${h(r.generator.name)} ${h(r.generator.version)} ` +
      `from <code>${h(r.configPath)}</code>. Restore the jobs in this order; each needs the repository password.</p>`,
    '<h2>Repositories</h2>',
    '<table><thead><tr><th>Repository</th><th>Location</th><th>Offsite</th><th>Reachable</th></tr></thead><tbody>',
    ...r.repositories.map(
      (x) =>
        `<tr><td>${h(x.name)}</td><td><code>${h(x.location)}</code></td><td>${x.offsite ? 'yes' : 'no'}</td>` +
        `<td>${x.reachable ? 'yes' : `<span class="bad">no</span>: ${h(x.error ?? '')}`}</td></tr>`,
    ),
    '</tbody></table>',
    '<h2>Recovery order</h2>',
    '<ol>',
    ...r.jobs.map(
      (j) =>
        `<li><a href="#step-${j.step}">${h(j.job)}</a>${j.dependsOn.length ? ` (after ${h(j.dependsOn.join(', '))})` : ''}</li>`,
    ),
    '</ol>',
    ...r.jobs.map((j) => jobSection(j, zone)),
    ...(r.warnings.length
      ? ['<h2>Warnings</h2>', '<ul>', ...r.warnings.map((w) => `<li>${h(w)}</li>`), '</ul>']
      : []),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
