/**
 * Recovery-point objective, judged from restore points: how old is the newest good restore
 * point of a job in each of its repositories, against the policy's RPO; and whether enough
 * repositories (and offsite ones) hold a fresh one. Pure: `now` comes in as an argument.
 *
 * States, worst last: ok · at-risk (age >= 80% of the target) · unknown (the repository could
 * not be read — never counted as ok) · breached (age >= the target, or no restore point).
 */
import { formatDuration } from './duration.js';
import { formatAgo } from './timeText.js';

export type TargetState = 'ok' | 'at-risk' | 'unknown' | 'breached';

/** A restore point this old, relative to its target, is at risk. */
export const AT_RISK_RATIO = 0.8;

const SEVERITY: Record<TargetState, number> = { ok: 0, 'at-risk': 1, unknown: 2, breached: 3 };

/** The worst of several states (ok when there are none). */
export function worstState(states: Iterable<TargetState>): TargetState {
  let worst: TargetState = 'ok';
  for (const s of states) if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  return worst;
}

/** The state of a measured value against a target: ok, at-risk from 80%, breached from 100%. */
export function stateOfRatio(ratio: number): TargetState {
  if (ratio >= 1) return 'breached';
  if (ratio >= AT_RISK_RATIO) return 'at-risk';
  return 'ok';
}

export interface RpoInput {
  now: number;
  /** The policy's RPO in ms. */
  rpoMs: number;
  /**
   * When the newest good restore point was taken (its start: the data is at least that
   * fresh); undefined when the repository holds none.
   */
  newestAt: number | undefined;
  /** Why the repository could not be read; the state is then unknown. */
  error?: string;
}

export interface RpoResult {
  state: TargetState;
  /** Age of the newest restore point in ms. */
  ageMs?: number;
  /** ageMs / rpoMs. */
  ratio?: number;
  reason: string;
}

/** Judge one repository's newest restore point of a job against the RPO. */
export function evaluateRpo(input: RpoInput): RpoResult {
  const target = formatDuration(input.rpoMs);
  if (input.error !== undefined) return { state: 'unknown', reason: `cannot tell: ${input.error}` };
  if (input.newestAt === undefined) return { state: 'breached', reason: `no restore point (RPO ${target})` };
  const ageMs = Math.max(0, input.now - input.newestAt);
  const ratio = ageMs / input.rpoMs;
  const state = stateOfRatio(ratio);
  const age = formatAgo(input.newestAt, input.now);
  const verdict = state === 'breached' ? 'older than' : state === 'at-risk' ? 'close to' : 'within';
  return { state, ageMs, ratio, reason: `newest restore point ${age}, ${verdict} the RPO of ${target}` };
}

export interface CopyHolding {
  repository: string;
  offsite: boolean;
  /** The repository's RPO state for this job. */
  state: TargetState;
}

export interface CopiesResult {
  state: TargetState;
  /** Repositories holding a restore point within the RPO. */
  have: number;
  haveOffsite: number;
  required: number;
  requiredOffsite: number;
  reason: string;
}

/**
 * Copies: at least `required` repositories (of which `requiredOffsite` offsite) must hold a
 * restore point within the RPO. Repositories that could not be read make a shortfall unknown
 * rather than breached, since they may hold one.
 */
export function evaluateCopies(
  holdings: CopyHolding[],
  required: number,
  requiredOffsite: number,
): CopiesResult {
  const fresh = holdings.filter((h) => h.state === 'ok' || h.state === 'at-risk');
  const unknown = holdings.filter((h) => h.state === 'unknown');
  const have = fresh.length;
  const haveOffsite = fresh.filter((h) => h.offsite).length;
  const enough = have >= required && haveOffsite >= requiredOffsite;
  const couldBeEnough =
    have + unknown.length >= required &&
    haveOffsite + unknown.filter((h) => h.offsite).length >= requiredOffsite;
  const state: TargetState = enough ? 'ok' : couldBeEnough ? 'unknown' : 'breached';
  const offsiteText = requiredOffsite > 0 ? `, ${haveOffsite} of ${requiredOffsite} offsite` : '';
  const unknownText = unknown.length ? ` (${unknown.map((h) => h.repository).join(', ')} unreadable)` : '';
  return {
    state,
    have,
    haveOffsite,
    required,
    requiredOffsite,
    reason: `${have} of ${required} ${required === 1 ? 'copy' : 'copies'} within the RPO${offsiteText}${unknownText}`,
  };
}
