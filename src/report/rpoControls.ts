/**
 * Controls judged from restore points: rpo-now (the newest good point in every repository of the
 * job — a lagging offsite copy counts), rpo-window (the largest gap and the share of the window
 * within the RPO) and copies. The judging itself is policy/rpo.ts, shared with `lifeboat status`.
 */
import { formatDuration } from '../policy/duration.js';
import {
  AT_RISK_RATIO,
  evaluateCopies,
  evaluateRpo,
  type CopyHolding,
  type RpoResult,
} from '../policy/rpo.js';
import { formatInstant } from '../policy/timeText.js';
import type { RestorePointEvidence } from './evidence.js';
import { exposureOf, type Exposure } from './exposure.js';
import { inWindow, iso, newestIn, percent, runRef, snapshotRef, type JobEvidence } from './jobEvidence.js';
import { CONTROL_TITLES, statusOfState, worstStatus, type Control, type EvidenceRef } from './model.js';

/** The RPO judgement of the job in one repository. */
export interface RepositoryRpo {
  repository: string;
  offsite: boolean;
  newest: RestorePointEvidence | undefined;
  result: RpoResult;
}

/** evaluateRpo for each of the job's repositories. */
export function rpoPerRepository(ev: JobEvidence): RepositoryRpo[] {
  return ev.repositories.map((r) => {
    const newest = newestIn(ev, r.name);
    const result = evaluateRpo({
      now: ev.now,
      rpoMs: ev.policy.rpoMs,
      newestAt: newest?.startedAt,
      ...(r.opened
        ? {}
        : { error: `repository ${r.name} could not be read: ${r.error?.message ?? 'unknown'}` }),
    });
    return { repository: r.name, offsite: r.offsite, newest, result };
  });
}

/** rpo-now: the newest good restore point in every repository is younger than the RPO. */
export function rpoNowControl(ev: JobEvidence, perRepo: RepositoryRpo[]): Control {
  const ages = perRepo.flatMap((r) => (r.result.ageMs === undefined ? [] : [r.result.ageMs]));
  return {
    id: 'rpo-now',
    title: CONTROL_TITLES['rpo-now'],
    status: worstStatus(perRepo.map((r) => statusOfState(r.result.state))),
    target: `younger than ${formatDuration(ev.policy.rpoMs)} in ${perRepo.map((r) => r.repository).join(', ')}`,
    measured: perRepo
      .map((r) => `${r.repository}${r.offsite ? ' (offsite)' : ''}: ${r.result.reason}`)
      .join('; '),
    evidence: perRepo.flatMap((r) => (r.newest ? [snapshotRef(r.newest)] : [])),
    values: {
      rpoMs: ev.policy.rpoMs,
      oldestNewestAgeMs: ages.length === perRepo.length && ages.length > 0 ? Math.max(...ages) : null,
      repositories: perRepo.length,
      repositoriesWithin: perRepo.filter((r) => r.result.state === 'ok' || r.result.state === 'at-risk')
        .length,
    },
  };
}

/** A restore point of the job's history: what exists now, and what the journal says existed. */
export interface HistoricPoint {
  id: string;
  time: number;
  repositories: string[];
  ref: EvidenceRef;
}

/**
 * Every good restore point the job had: its snapshots (copies of one backup are one point) and
 * successful backups whose snapshots retention has since forgotten — a forgotten point still
 * protected the data while it existed.
 */
export function restorePointHistory(ev: JobEvidence): HistoricPoint[] {
  const byKey = new Map<string, HistoricPoint>();
  for (const p of ev.good) {
    const had = byKey.get(p.pointKey);
    if (had) had.repositories.push(p.repository);
    else
      byKey.set(p.pointKey, {
        id: p.id,
        time: p.startedAt,
        repositories: [p.repository],
        ref: snapshotRef(p),
      });
  }
  for (const run of ev.runs('backup')) {
    if (run.outcome !== 'success') continue;
    for (const id of run.snapshotIds) {
      if (ev.pointKeyOf.has(id)) continue;
      byKey.set(`forgotten:${id}`, { id, time: run.startedAt, repositories: [], ref: runRef(run) });
    }
  }
  return [...byKey.values()].sort((a, b) => a.time - b.time);
}

/** rpo-window: the largest gap between restore points in the window, and the share within the RPO. */
export function rpoWindowControl(
  ev: JobEvidence,
  history: HistoricPoint[],
): { control: Control; exposure: Exposure | undefined } {
  const rpo = ev.policy.rpoMs;
  const base = {
    id: 'rpo-window' as const,
    title: CONTROL_TITLES['rpo-window'],
    target: `every gap between restore points shorter than ${formatDuration(rpo)}`,
  };
  const exposure = exposureOf({
    times: history.map((p) => p.time),
    from: ev.windowFrom,
    to: ev.now,
    rpoMs: rpo,
  });
  if (!exposure) {
    const attempts = inWindow(ev, ev.runs('backup'));
    return {
      exposure,
      control: {
        ...base,
        status: attempts.length > 0 ? 'fail' : 'unknown',
        measured:
          attempts.length > 0
            ? `no good restore point; ${attempts.length} backup ${attempts.length === 1 ? 'attempt' : 'attempts'} in the window produced none`
            : 'no restore point and no backup in the window',
        evidence: attempts.slice(-5).map(runRef),
        values: {
          rpoMs: rpo,
          largestGapMs: null,
          largestGapFrom: null,
          largestGapTo: null,
          largestGapOpen: null,
          withinShare: null,
          exposedMs: null,
          judgedFrom: null,
          restorePoints: 0,
        },
      },
    };
  }
  const gap = exposure.largest;
  const gapMs = gap.to - gap.from;
  const at = (t: number) => formatInstant(t, ev.timeZone, ev.now);
  const where = gap.open ? `since ${at(gap.from)}, still open` : `${at(gap.from)} → ${at(gap.to)}`;
  const refOf = (t: number) => history.find((p) => p.time === t)?.ref;
  const evidence = [refOf(gap.from), gap.open ? undefined : refOf(gap.to)].filter(
    (r): r is EvidenceRef => r !== undefined,
  );
  const judgedNote =
    exposure.judgedFrom > ev.windowFrom
      ? ` (judged from the first restore point, ${at(exposure.judgedFrom)})`
      : '';
  return {
    exposure,
    control: {
      ...base,
      // The age only approaches the gap (it drops to 0 as the next point arrives): a gap of exactly
      // the RPO never breaches it, one a second longer does.
      status: gapMs > rpo ? 'fail' : gapMs >= AT_RISK_RATIO * rpo ? 'warning' : 'pass',
      measured:
        `largest gap ${formatDuration(gapMs)} (${where}); ` +
        `${percent(exposure.withinShare)} of the window within the RPO${judgedNote}`,
      evidence,
      values: {
        rpoMs: rpo,
        largestGapMs: gapMs,
        largestGapFrom: iso(gap.from),
        largestGapTo: iso(gap.to),
        largestGapOpen: gap.open,
        withinShare: Math.round(exposure.withinShare * 10_000) / 10_000,
        exposedMs: exposure.exposedMs,
        judgedFrom: iso(exposure.judgedFrom),
        restorePoints: exposure.points.length,
      },
    },
  };
}

/** copies: restore points within the RPO in at least N repositories, M of them offsite. */
export function copiesControl(ev: JobEvidence, perRepo: RepositoryRpo[]): Control {
  const holdings: CopyHolding[] = perRepo.map((r) => ({
    repository: r.repository,
    offsite: r.offsite,
    state: r.result.state,
  }));
  const { copies, offsite } = ev.policy;
  const result = evaluateCopies(holdings, copies, offsite);
  let status = statusOfState(result.state);
  let measured = result.reason;
  if (status === 'pass') {
    // Counting only points comfortably within the RPO: would the promise still hold?
    const safe = evaluateCopies(
      holdings.map((h) => (h.state === 'at-risk' ? { ...h, state: 'breached' as const } : h)),
      copies,
      offsite,
    );
    if (safe.state !== 'ok') {
      status = 'warning';
      measured += '; some are close to the RPO';
    }
  }
  return {
    id: 'copies',
    title: CONTROL_TITLES['copies'],
    status,
    target:
      `restore points within the RPO in ≥ ${copies} ${copies === 1 ? 'repository' : 'repositories'}` +
      (offsite > 0 ? `, ≥ ${offsite} offsite` : ''),
    measured,
    evidence: perRepo
      .filter((r) => r.newest && (r.result.state === 'ok' || r.result.state === 'at-risk'))
      .map((r) => snapshotRef(r.newest!)),
    values: {
      required: copies,
      requiredOffsite: offsite,
      have: result.have,
      haveOffsite: result.haveOffsite,
    },
  };
}
