/**
 * Compliance reports and the recovery runbook: a pure model built from gathered evidence, and one
 * renderer per format. src/app/report.ts and src/app/runbook.ts gather; the CLI prints.
 */
import type { Report } from './model.js';
import { renderHtml } from './render/html.js';
import { renderJson } from './render/json.js';
import { renderJunit } from './render/junit.js';
import { renderMarkdown } from './render/markdown.js';
import { renderTable } from './render/table.js';

export { buildReport } from './buildReport.js';
export type * from './evidence.js';
export * from './model.js';
export { renderHtml, renderJson, renderJunit, renderMarkdown, renderTable };

export const REPORT_FORMATS = ['table', 'json', 'junit', 'markdown', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Render a report in one of the formats. */
export function renderReport(
  report: Report,
  format: ReportFormat,
  opts: { color?: boolean; timeZone?: string } = {},
): string {
  const timeZone = opts.timeZone ?? 'UTC';
  switch (format) {
    case 'table':
      return renderTable(report, { color: opts.color ?? false, timeZone });
    case 'json':
      return renderJson(report);
    case 'junit':
      return renderJunit(report);
    case 'markdown':
      return renderMarkdown(report, { timeZone });
    case 'html':
      return renderHtml(report, { timeZone });
  }
}

export { buildRunbook, recoveryOrder, shellQuote } from './runbook.js';
export type { RestoreHints, Runbook, RunbookJob, RunbookTargets } from './runbook.js';
export { renderRunbookMarkdown } from './render/runbookMarkdown.js';
export { renderRunbookHtml } from './render/runbookHtml.js';
