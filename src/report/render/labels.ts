/** Words and symbols for statuses, shared by the renderers. */
import type { ControlStatus } from '../model.js';

export const STATUS_LABEL: Record<ControlStatus, string> = {
  pass: 'PASS',
  warning: 'WARNING',
  fail: 'FAIL',
  unknown: 'UNKNOWN',
};

export const STATUS_ICON: Record<ControlStatus, string> = {
  pass: '✅',
  warning: '⚠️',
  fail: '❌',
  unknown: '❔',
};

/** `20 pass · 2 warning · 1 fail · 3 unknown` */
export function summaryText(summary: Record<ControlStatus, number>): string {
  return (['pass', 'warning', 'fail', 'unknown'] as const).map((s) => `${summary[s]} ${s}`).join(' · ');
}
