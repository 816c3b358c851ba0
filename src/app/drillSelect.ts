/**
 * Which restore point a drill restores, and how much of the drill window has been proven.
 * `latest` is the newest complete snapshot; `random` picks among the complete snapshots of
 * the policy's drill window, preferring ones never drilled, so old points get tested too.
 * Pure: snapshots, journal records, time and the random source come in as arguments.
 */
import { UsageError } from '../errors.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { JournalRecord } from '../repository/journal.js';
import { formatMs, type DrillCoverage, type DrillSelection } from './drillModel.js';

const endOf = (s: SnapshotEntry) => Date.parse(s.endedAt);

/** Complete (non-partial) snapshots of `job` that ended inside the window, oldest first. */
export function drillCandidates(
  snapshots: readonly SnapshotEntry[],
  job: string,
  now: number,
  windowMs: number,
): SnapshotEntry[] {
  return snapshots
    .filter((s) => s.job === job && !s.partial && endOf(s) >= now - windowMs && endOf(s) <= now)
    .sort((a, b) => endOf(a) - endOf(b));
}

/** IDs of snapshots of `job` that a drill restored (interrupted drills do not count). */
export function drilledSnapshotIds(records: readonly JournalRecord[], job: string): Set<string> {
  const ids = new Set<string>();
  for (const r of records) {
    if (r.kind !== 'drill' || r.job !== job || r.outcome === 'interrupted') continue;
    for (const id of r.snapshotIds ?? []) ids.add(id);
  }
  return ids;
}

/** Coverage of the window, counting `current` (this drill's snapshot) as drilled. */
export function coverageOf(
  candidates: readonly SnapshotEntry[],
  drilled: ReadonlySet<string>,
  windowMs: number,
  current?: string,
): DrillCoverage {
  const done = candidates.filter((s) => drilled.has(s.id) || s.id === current).length;
  return {
    windowMs,
    points: candidates.length,
    drilled: done,
    share: candidates.length === 0 ? 1 : done / candidates.length,
  };
}

export interface SnapshotChoice {
  snapshot: SnapshotEntry;
  selection: DrillSelection;
  /** Why this one, in words. */
  reason: string;
}

/** Pick the snapshot for `latest` or `random` (IDs are resolved by the repository). */
export function chooseSnapshot(
  mode: 'latest' | 'random',
  snapshots: readonly SnapshotEntry[],
  job: string,
  ctx: { now: number; windowMs: number; drilled: ReadonlySet<string>; random: () => number },
): SnapshotChoice {
  const ofJob = snapshots.filter((s) => s.job === job).sort((a, b) => endOf(a) - endOf(b));
  const complete = ofJob.filter((s) => !s.partial);
  if (ofJob.length === 0) {
    throw new UsageError(`no snapshot of job '${job}' to drill`, {
      hint: `Back it up first: lifeboat backup ${job}`,
    });
  }
  const newest = complete.at(-1);
  if (mode === 'random') {
    const candidates = drillCandidates(snapshots, job, ctx.now, ctx.windowMs);
    if (candidates.length > 0) {
      const fresh = candidates.filter((s) => !ctx.drilled.has(s.id));
      const pool = fresh.length > 0 ? fresh : candidates;
      const pick = pool[Math.min(pool.length - 1, Math.floor(ctx.random() * pool.length))]!;
      return {
        snapshot: pick,
        selection: 'random',
        reason:
          `random pick of ${pool.length} ${fresh.length > 0 ? 'never-drilled ' : ''}restore point` +
          `${pool.length === 1 ? '' : 's'} of the last ${formatMs(ctx.windowMs)}`,
      };
    }
    if (newest) {
      return {
        snapshot: newest,
        selection: 'random',
        reason: `no complete restore point in the last ${formatMs(ctx.windowMs)}; the newest one instead`,
      };
    }
  }
  if (newest) return { snapshot: newest, selection: 'latest', reason: 'the newest complete restore point' };
  // Only partial snapshots (some files were unreadable at every backup): still prove what they hold.
  return {
    snapshot: ofJob.at(-1)!,
    selection: mode,
    reason: 'the newest restore point (partial: no complete one exists)',
  };
}
