/**
 * retention-coverage: retention promises restore points reaching back a certain time (`daily: 7`
 * promises one per day for a week); the oldest restore point in every repository of the job must
 * be that old — once the job itself is that old. Pure.
 */
import { formatDuration } from '../policy/duration.js';
import { AT_RISK_RATIO } from '../policy/rpo.js';
import type { RetentionRules } from '../policy/retention.js';
import { formatAgo } from '../policy/timeText.js';
import { oldestIn, snapshotRef, type JobEvidence } from './jobEvidence.js';
import { CONTROL_TITLES, worstStatus, type Control, type ControlStatus } from './model.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Bucket lengths; months and years at their shortest, so the promise is never overstated. */
const BUCKETS = { hourly: HOUR, daily: DAY, weekly: 7 * DAY, monthly: 28 * DAY, yearly: 365 * DAY } as const;

export interface RetentionPromise {
  /** The oldest restore point must be at least this old (ms). */
  requiredMs: number;
  /** The rule that promises the most, e.g. `daily 7`. */
  rule: string;
}

/**
 * How far back retention promises restore points: `within D` keeps everything of the last D
 * (give or take one backup interval, the RPO); a bucket rule `N` keeps one point in each of the
 * N newest hours/days/weeks/months/years — the oldest lies in the bucket N-1 back, and may sit at
 * its end, so one bucket is allowed for calendar alignment. `last N` promises no age.
 */
export function retentionPromise(rules: RetentionRules, rpoMs: number): RetentionPromise | undefined {
  let best: RetentionPromise | undefined;
  const consider = (requiredMs: number, rule: string) => {
    if (requiredMs > 0 && (!best || requiredMs > best.requiredMs)) best = { requiredMs, rule };
  };
  if (rules.within !== undefined) consider(rules.within - rpoMs, `within ${formatDuration(rules.within)}`);
  for (const [rule, size] of Object.entries(BUCKETS) as Array<[keyof typeof BUCKETS, number]>) {
    const n = rules[rule];
    if (n === undefined || !Number.isFinite(n)) continue;
    consider((n - 2) * size, `${rule} ${n}`);
  }
  return best;
}

/** Judge the oldest restore point of each repository against the promise. */
export function retentionControl(ev: JobEvidence, promise: RetentionPromise): Control {
  const { requiredMs, rule } = promise;
  const oldEnough = ev.firstSeen !== undefined && ev.now - ev.firstSeen >= requiredMs;
  const perRepo = ev.repositories.map((r) => {
    const oldest = oldestIn(ev, r.name);
    if (!r.opened) {
      return {
        status: 'unknown' as ControlStatus,
        text: `${r.name}: could not be read`,
        oldest,
        ageMs: undefined,
      };
    }
    if (!oldest) {
      return {
        status: (oldEnough ? 'fail' : 'unknown') as ControlStatus,
        text: `${r.name}: no restore point`,
        oldest,
        ageMs: undefined,
      };
    }
    const ageMs = Math.max(0, ev.now - oldest.startedAt);
    const text = `${r.name}: oldest restore point ${formatAgo(oldest.startedAt, ev.now)}`;
    if (ageMs >= requiredMs) return { status: 'pass' as ControlStatus, text, oldest, ageMs };
    if (oldEnough) {
      // 80% of the promise (the at-risk ratio) is a warning; less means restore points were lost.
      const status: ControlStatus = ageMs / requiredMs >= AT_RISK_RATIO ? 'warning' : 'fail';
      return { status, text, oldest, ageMs };
    }
    const readFrom = r.journalSince;
    const why =
      readFrom <= ev.now - requiredMs
        ? `the job is younger than that (first seen ${formatAgo(ev.firstSeen ?? oldest.startedAt, ev.now)})`
        : `cannot tell whether the job is that old: its journal was read only from ${formatAgo(readFrom, ev.now)}`;
    return { status: 'unknown' as ControlStatus, text: `${text}; ${why}`, oldest, ageMs };
  });
  const ages = perRepo.map((p) => p.ageMs).filter((a): a is number => a !== undefined);
  return {
    id: 'retention-coverage',
    title: CONTROL_TITLES['retention-coverage'],
    status: worstStatus(perRepo.map((p) => p.status)),
    target: `restore points reaching back ≥ ${formatDuration(requiredMs)} (${rule})`,
    measured: perRepo.map((p) => p.text).join('; '),
    evidence: perRepo.flatMap((p) => (p.oldest ? [snapshotRef(p.oldest)] : [])),
    values: {
      requiredMs,
      rule,
      oldestAgeMs: ages.length === perRepo.length && ages.length > 0 ? Math.min(...ages) : null,
    },
  };
}
