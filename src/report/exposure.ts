/**
 * RPO exposure over a window: at any moment, the data at risk is everything since the newest
 * restore point taken before then. From the times of a job's restore points this finds the
 * largest gap between consecutive points (including the open gap up to now) and the periods in
 * which the newest point was at least the RPO old. Pure.
 *
 * A point counts from its start (as the RPO does in policy/rpo.ts). A job younger than the
 * window is judged from its first restore point: before that there was nothing to lose.
 */

export interface ExposureInput {
  /** Restore point times (ms), any order, duplicates allowed. */
  times: number[];
  from: number;
  to: number;
  rpoMs: number;
}

export interface Gap {
  /** The restore point the gap starts at. */
  from: number;
  /** The next restore point, or the end of the window for the open gap. */
  to: number;
  open: boolean;
}

export interface Exposure {
  /** Where judging starts: the window start, or the first point when none precedes the window. */
  judgedFrom: number;
  largest: Gap;
  /** Periods in which the newest point was >= the RPO old, clipped to the judged span. */
  exposed: Array<{ from: number; to: number }>;
  exposedMs: number;
  /** Share of the judged span within the RPO (1 when the span is empty). */
  withinShare: number;
  /** The points used: the last one before the window (if any) and those inside it. */
  points: number[];
}

/** Exposure of a set of restore points over [from, to]; undefined when there is no point at all up to `to`. */
export function exposureOf(input: ExposureInput): Exposure | undefined {
  const { from, to, rpoMs } = input;
  const sorted = [...new Set(input.times.filter((t) => t <= to))].sort((a, b) => a - b);
  const before = sorted.filter((t) => t < from);
  const inside = sorted.filter((t) => t >= from);
  const prior = before[before.length - 1];
  const points = prior === undefined ? inside : [prior, ...inside];
  const firstPoint = points[0];
  if (firstPoint === undefined) return undefined;
  const judgedFrom = prior === undefined ? firstPoint : from;

  let largest: Gap | undefined;
  const exposed: Array<{ from: number; to: number }> = [];
  for (let i = 0; i < points.length; i++) {
    const start = points[i]!;
    const next = points[i + 1];
    const end = next ?? to;
    const gap: Gap = { from: start, to: end, open: next === undefined };
    if (!largest || gap.to - gap.from > largest.to - largest.from) largest = gap;
    const riskFrom = Math.max(start + rpoMs, judgedFrom);
    if (riskFrom < end) exposed.push({ from: riskFrom, to: end });
  }
  const exposedMs = exposed.reduce((sum, p) => sum + (p.to - p.from), 0);
  const span = to - judgedFrom;
  return {
    judgedFrom,
    largest: largest!,
    exposed,
    exposedMs,
    withinShare: span > 0 ? Math.max(0, 1 - exposedMs / span) : 1,
    points,
  };
}
