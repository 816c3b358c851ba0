/**
 * Retention selection in the style of restic's `forget` (grandfather-father-son):
 * which restore points to keep and which to forget. Pure: no clock, no I/O;
 * time arrives as arguments.
 */

/** A restore point: an id and its time in ms since the epoch. */
export interface RetentionPoint {
  id: string;
  time: number;
}

/**
 * How many points to keep per rule. Counts are non-negative integers or
 * Infinity ("every bucket"); `within` is a duration in ms.
 */
export interface RetentionRules {
  /** The N newest points. */
  last?: number;
  /** The newest point of each of the N newest hours that have points. */
  hourly?: number;
  /** … of each of the N newest calendar days that have points. */
  daily?: number;
  /** … of each of the N newest ISO weeks (Monday to Sunday) that have points. */
  weekly?: number;
  /** … of each of the N newest calendar months that have points. */
  monthly?: number;
  /** … of each of the N newest calendar years that have points. */
  yearly?: number;
  /** Every point no older than this many ms before `now` (points from the future included). */
  within?: number;
}

export interface RetentionOptions {
  /** IANA time zone for hour/day/week/month/year boundaries. Default UTC. */
  timeZone?: string;
  /** Points that must be kept whatever the rules say, with the reason to show (id → reason). */
  protect?: ReadonlyMap<string, string>;
}

export interface RetentionResult {
  /** Kept points, newest first, each with every reason that keeps it. */
  keep: { id: string; reasons: string[] }[];
  /** Forgotten points, newest first. */
  forget: { id: string }[];
}

/** Reason given when no rule is configured and therefore everything is kept. */
export const NO_RULES_REASON = 'no retention rules: keeping everything';
/** Reason given to the newest point when the rules alone would keep nothing. */
export const SAFETY_REASON = 'newest (retention never forgets every restore point)';

type BucketRule = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
const BUCKET_RULES: readonly BucketRule[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const COUNT_RULES = ['last', ...BUCKET_RULES] as const;

/**
 * Select which restore points to keep under GFS rules, restic style.
 *
 * Points are ordered newest first (equal times by id, so the result does not
 * depend on input order). `last N` keeps the N newest. Each bucket rule walks
 * the points newest first and keeps the newest point of every bucket (hour,
 * day, ISO week, month, year in `timeZone`) until it has kept N buckets;
 * buckets without points do not count. `within` keeps every point whose age
 * relative to `now` is at most the duration. Protected ids are kept with their
 * reason. Safety nets: with no rule at all, everything is kept; when the rules
 * would keep nothing (e.g. only `within` and backups stopped long ago), the
 * newest point is kept anyway. Every input point appears exactly once, either
 * in `keep` or in `forget`.
 *
 * Differences from restic: `within` counts from `now`, not from the newest
 * point (the safety net covers the stopped-backups case), and restic's extra
 * "keep the oldest point while a bucket count is left" is not applied.
 */
export function selectRetention(
  points: readonly RetentionPoint[],
  rules: RetentionRules,
  now: number,
  opts: RetentionOptions = {},
): RetentionResult {
  validate(points, rules, now);
  const sorted = [...points].sort((a, b) => b.time - a.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const reasons = new Map<string, string[]>(sorted.map((p) => [p.id, []]));
  const add = (id: string, reason: string): void => void reasons.get(id)?.push(reason);

  const anyRule = COUNT_RULES.some((r) => rules[r] !== undefined) || rules.within !== undefined;
  if (!anyRule) {
    for (const p of sorted) add(p.id, NO_RULES_REASON);
  } else {
    if (rules.last !== undefined) {
      const label = `last ${rules.last === Infinity ? 'all' : rules.last}`;
      sorted.slice(0, Math.min(sorted.length, rules.last)).forEach((p) => add(p.id, label));
    }
    const buckets = new BucketNamer(opts.timeZone ?? 'UTC');
    for (const rule of BUCKET_RULES) {
      let remaining = rules[rule];
      if (remaining === undefined) continue;
      let previous: string | undefined;
      for (const p of sorted) {
        if (remaining <= 0) break;
        const bucket = buckets.name(rule, p.time);
        if (bucket === previous) continue;
        previous = bucket;
        remaining--;
        add(p.id, `${rule} ${bucket}`);
      }
    }
    if (rules.within !== undefined) {
      const label = `within ${formatDuration(rules.within)}`;
      for (const p of sorted) if (now - p.time <= rules.within) add(p.id, label);
    }
    const newest = sorted[0];
    if (newest && sorted.every((p) => reasons.get(p.id)?.length === 0)) add(newest.id, SAFETY_REASON);
  }

  for (const [id, reason] of opts.protect ?? []) add(id, reason);

  const result: RetentionResult = { keep: [], forget: [] };
  for (const p of sorted) {
    const why = reasons.get(p.id) ?? [];
    if (why.length > 0) result.keep.push({ id: p.id, reasons: why });
    else result.forget.push({ id: p.id });
  }
  return result;
}

function validate(points: readonly RetentionPoint[], rules: RetentionRules, now: number): void {
  if (!Number.isFinite(now)) throw new RangeError(`retention: now must be a finite time, got ${now}`);
  for (const rule of COUNT_RULES) {
    const n = rules[rule];
    if (n !== undefined && !(n === Infinity || (Number.isInteger(n) && n >= 0))) {
      throw new RangeError(`retention: ${rule} must be a whole number >= 0, got ${n}`);
    }
  }
  if (rules.within !== undefined && !(rules.within >= 0)) {
    throw new RangeError(`retention: within must be a duration >= 0 ms, got ${rules.within}`);
  }
  const seen = new Set<string>();
  for (const p of points) {
    if (seen.has(p.id)) throw new RangeError(`retention: restore point ${p.id} appears twice`);
    seen.add(p.id);
    if (!Number.isFinite(p.time)) throw new RangeError(`retention: restore point ${p.id} has no valid time`);
  }
}

const DAY_MS = 86_400_000;

/** Names the hour/day/week/month/year bucket of an instant in one time zone. */
class BucketNamer {
  private readonly format: Intl.DateTimeFormat;

  constructor(timeZone: string) {
    try {
      this.format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        hourCycle: 'h23',
        timeZoneName: 'shortOffset',
      });
    } catch {
      throw new RangeError(
        `retention: unknown time zone "${timeZone}" (use an IANA name such as Europe/Berlin)`,
      );
    }
  }

  name(rule: BucketRule, time: number): string {
    const parts: Record<string, string> = {};
    for (const part of this.format.formatToParts(time)) parts[part.type] = part.value;
    const { year = '', month = '', day = '', hour = '' } = parts;
    switch (rule) {
      case 'yearly':
        return year;
      case 'monthly':
        return `${year}-${month}`;
      case 'daily':
        return `${year}-${month}-${day}`;
      case 'weekly':
        return isoWeek(Number(year), Number(month), Number(day));
      case 'hourly': {
        // The offset tells apart the two wall-clock hours of a daylight-saving fall-back.
        const offset = (parts.timeZoneName ?? 'GMT').replace(/^GMT/, 'UTC').replace(/^UTC[+-]0$/, 'UTC');
        return `${year}-${month}-${day} ${hour}:00 ${offset}`;
      }
    }
  }
}

/** ISO 8601 week of a calendar date, e.g. `2026-W47` (weeks start Monday; week 1 holds the first Thursday). */
export function isoWeek(year: number, month: number, day: number): string {
  const date = Date.UTC(year, month - 1, day);
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday = 0
  const thursday = date + (3 - weekday) * DAY_MS;
  const weekYear = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(weekYear, 0, 1)) / (7 * DAY_MS));
  return `${weekYear}-W${String(week).padStart(2, '0')}`;
}

/** Compact duration for reasons: 2d, 1d12h, 1h30m, 45s; 1500ms when not whole seconds. */
export function formatDuration(ms: number): string {
  if (ms === Infinity) return 'forever';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms / 1000;
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out || '0s';
}
