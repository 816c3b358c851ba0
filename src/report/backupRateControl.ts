/**
 * backup-success-rate: the share of the job's backup runs in the window that succeeded. Every
 * failure is a warning (the RPO controls say whether it cost anything); below 80% — the at-risk
 * ratio of policy/rpo.ts — it fails.
 */
import { AT_RISK_RATIO } from '../policy/rpo.js';
import { first, inWindow, percent, runRef, type JobEvidence } from './jobEvidence.js';
import { CONTROL_TITLES, type Control, type ControlStatus } from './model.js';

/** Judge the job's backup runs in the window. */
export function backupRateControl(ev: JobEvidence): Control {
  const runs = inWindow(ev, ev.runs('backup'));
  const count = (o: string) => runs.filter((r) => r.outcome === o).length;
  const success = count('success');
  const partial = count('partial');
  const failed = count('failure');
  const interrupted = count('interrupted');
  const total = runs.length;
  const rate = total === 0 ? null : success / total;
  const status: ControlStatus =
    rate === null ? 'unknown' : rate === 1 ? 'pass' : rate >= AT_RISK_RATIO ? 'warning' : 'fail';
  const extra = [
    partial ? `${partial} partial` : '',
    failed ? `${failed} failed` : '',
    interrupted ? `${interrupted} interrupted` : '',
  ].filter(Boolean);
  const lastSuccess = [...runs].reverse().find((r) => r.outcome === 'success');
  const bad = runs.filter((r) => r.outcome !== 'success');
  return {
    id: 'backup-success-rate',
    title: CONTROL_TITLES['backup-success-rate'],
    status,
    target: `every backup succeeds (below ${percent(AT_RISK_RATIO)} fails)`,
    measured:
      rate === null
        ? 'no backup in the window'
        : `${success} of ${total} succeeded (${percent(rate)})${extra.length ? `; ${extra.join(', ')}` : ''}`,
    evidence: [...first(bad.reverse()), ...(lastSuccess ? [lastSuccess] : [])].map(runRef),
    values: { runs: total, success, partial, failure: failed, interrupted, successRate: rate },
  };
}
