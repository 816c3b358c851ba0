/**
 * Recovery-time objective, judged from measured restore drills (never guessed): the last
 * drill's outcome and measured restore time against the policy's RTO, and whether the last
 * successful drill is recent enough for the policy's `drill.every`. Pure.
 *
 * A job without any drill is "no drill yet" — never ok: there is no evidence it can be restored.
 */
import { formatDuration } from './duration.js';
import { stateOfRatio, worstState, type TargetState } from './rpo.js';
import { formatAgo } from './timeText.js';

export type RtoState = TargetState | 'no-drill' | 'not-required';

/** One drill run as evidence. */
export interface DrillEvidence {
  runId?: string;
  startedAt: number;
  endedAt: number;
  outcome: 'success' | 'partial' | 'failure' | 'interrupted';
  /** Measured restore time in ms (see measuredRestoreMs). */
  restoreMs?: number;
}

/**
 * The restore time a drill record measured against the RTO: `details.measuredRtoMs`
 * (docs/drills.md), else the whole drill's duration (an upper bound: it includes
 * set-up and assertions).
 */
export function measuredRestoreMs(record: {
  startedAt: string;
  endedAt: string;
  details?: Record<string, unknown>;
}): number | undefined {
  const recorded = record.details?.measuredRtoMs;
  if (typeof recorded === 'number' && Number.isFinite(recorded) && recorded >= 0) return recorded;
  const start = Date.parse(record.startedAt);
  const end = Date.parse(record.endedAt);
  return Number.isFinite(start) && Number.isFinite(end) && end >= start ? end - start : undefined;
}

export interface RtoInput {
  now: number;
  rtoMs?: number;
  /** The policy's `drill.every` in ms. */
  drillEveryMs?: number;
  /** The most recent drill, whatever its outcome. */
  last?: DrillEvidence;
  /** The most recent successful drill. */
  lastSuccess?: DrillEvidence;
}

export interface RtoResult {
  state: RtoState;
  measuredMs?: number;
  ratio?: number;
  reason: string;
}

/** Judge a job's drill evidence against its RTO and drill cadence. */
export function evaluateRto(input: RtoInput): RtoResult {
  const { now, rtoMs, drillEveryMs, last, lastSuccess } = input;
  if (rtoMs === undefined && drillEveryMs === undefined && !last) {
    return { state: 'not-required', reason: 'the policy sets no RTO and no drills' };
  }
  if (!last) return { state: 'no-drill', reason: 'no drill yet' };
  if (last.outcome === 'failure' || last.outcome === 'interrupted') {
    const verb = last.outcome === 'failure' ? 'failed' : 'was interrupted';
    return { state: 'breached', reason: `last drill ${verb} ${formatAgo(last.endedAt, now)}` };
  }
  const measuredMs = last.restoreMs;
  const states: TargetState[] = [];
  const parts: string[] = [`last drill passed ${formatAgo(last.startedAt, now)}`];
  let ratio: number | undefined;
  if (rtoMs !== undefined) {
    if (measuredMs === undefined) {
      states.push('unknown');
      parts.push(`restore time not measured (RTO ${formatDuration(rtoMs)})`);
    } else {
      ratio = measuredMs / rtoMs;
      states.push(stateOfRatio(ratio));
      parts.push(`restore took ${formatDuration(measuredMs)} of an RTO of ${formatDuration(rtoMs)}`);
    }
  } else if (measuredMs !== undefined) {
    parts.push(`restore took ${formatDuration(measuredMs)}`);
  }
  const newest = lastSuccess ?? last;
  if (drillEveryMs !== undefined && now - newest.startedAt > drillEveryMs) {
    states.push('at-risk');
    parts.push(`overdue: a drill is required every ${formatDuration(drillEveryMs)}`);
  }
  return {
    state: worstState(states),
    ...(measuredMs === undefined ? {} : { measuredMs }),
    ...(ratio === undefined ? {} : { ratio }),
    reason: parts.join('; '),
  };
}

/** How an RTO state weighs in a job's overall state: no drill is at risk, not required is ok. */
export function rtoWeight(state: RtoState): TargetState {
  if (state === 'no-drill') return 'at-risk';
  if (state === 'not-required') return 'ok';
  return state;
}
