/** The JSON rendering: the report model itself (schema lifeboat.report/v1, docs/report-schema.md). */
import type { Report } from '../model.js';

/** Render the report as one JSON document (two-space indented, newline-terminated). */
export function renderJson(report: Report): string {
  return JSON.stringify(report, null, 2) + '\n';
}
