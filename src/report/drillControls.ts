/**
 * Controls judged from restore drills (the drill records of docs/drills.md): rto, drill-freshness,
 * drill-verification and drill-coverage. The RTO state is policy/rto.ts's evaluateRto, the same
 * judgement `lifeboat status` shows; thresholds are policy/rpo.ts's.
 */
import { formatDuration } from '../policy/duration.js';
import { AT_RISK_RATIO, stateOfRatio } from '../policy/rpo.js';
import { evaluateRto, measuredRestoreMs, type DrillEvidence } from '../policy/rto.js';
import { formatAgo } from '../policy/timeText.js';
import type { RunEvidence } from './evidence.js';
import { first, iso, percent, runRef, type JobEvidence } from './jobEvidence.js';
import {
  CONTROL_TITLES,
  statusOfState,
  type Control,
  type ControlStatus,
  type EvidenceRef,
} from './model.js';

export type DrillVerdict = 'pass' | 'fail' | 'breach';

/** What one drill record says, read defensively (records may come from other versions). */
export interface DrillFacts {
  run: RunEvidence;
  /** pass · fail (verification failed) · breach (too slow); undefined for an interrupted drill. */
  verdict: DrillVerdict | undefined;
  /** The restore time judged against the RTO, when the drill timed a complete restore. */
  measuredMs: number | undefined;
  /** Verification steps: content, fingerprint, mount, assertions (not the phases, not the RTO). */
  checks: Array<{ name: string; status: string; message?: string }>;
  /** The first failed step other than the RTO judgement (a phase or a check). */
  failed?: { name: string; message?: string };
}

const RTO_STEP = 'rto';
/** Steps that are phases of the drill, not checks of the restored data. */
const PHASE_STEPS = new Set([
  'select snapshot',
  'lock repository',
  'provision',
  'restore',
  'teardown',
  RTO_STEP,
]);

/** Read a drill record's verdict, measured restore time and checks. */
export function drillFacts(run: RunEvidence): DrillFacts {
  const d = run.details;
  const raw = d.verdict;
  let verdict: DrillVerdict | undefined =
    raw === 'pass' || raw === 'fail' || raw === 'breach' ? raw : undefined;
  if (verdict === undefined && run.outcome !== 'interrupted')
    verdict = run.outcome === 'success' ? 'pass' : 'fail';
  if (run.outcome === 'interrupted') verdict = undefined;
  const steps = Array.isArray(d.steps) ? (d.steps as unknown[]) : [];
  const parsed = steps.flatMap((s) => {
    const step = s as { name?: unknown; status?: unknown; message?: unknown } | null;
    if (!step || typeof step.name !== 'string' || typeof step.status !== 'string') return [];
    return [
      {
        name: step.name,
        status: step.status,
        ...(typeof step.message === 'string' ? { message: step.message } : {}),
      },
    ];
  });
  const rtoStep = parsed.find((s) => s.name === RTO_STEP);
  // A failed verification after a complete restore still timed the restore; a failed restore did not.
  const timed =
    verdict === 'pass' ||
    verdict === 'breach' ||
    (verdict === 'fail' && (rtoStep?.status === 'pass' || rtoStep?.status === 'fail'));
  const measuredMs = timed
    ? measuredRestoreMs({ startedAt: iso(run.startedAt), endedAt: iso(run.endedAt), details: d })
    : undefined;
  const failed = parsed.find((p) => p.status === 'fail' && p.name !== RTO_STEP);
  return {
    run,
    verdict,
    measuredMs,
    checks: parsed.filter((p) => !PHASE_STEPS.has(p.name)),
    ...(failed ? { failed } : {}),
  };
}

function toDrillEvidence(f: DrillFacts): DrillEvidence {
  return {
    runId: f.run.id,
    startedAt: f.run.startedAt,
    endedAt: f.run.endedAt,
    outcome: f.run.outcome,
    ...(f.measuredMs === undefined ? {} : { restoreMs: f.measuredMs }),
  };
}

/** The 95th percentile (nearest rank) of some durations. */
export function p95(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)];
}

/** Every drill of the job that was read, as facts, oldest first. */
export function jobDrills(ev: JobEvidence): DrillFacts[] {
  return ev.runs('drill').map(drillFacts);
}

/** rto: the last drill's measured restore time against the RTO; worst and p95 over the window. */
export function rtoControl(ev: JobEvidence, drills: DrillFacts[], rtoMs: number): Control {
  const inside = drills.filter((f) => f.run.startedAt >= ev.windowFrom && f.run.startedAt <= ev.now);
  const timed = inside.filter((f) => f.measuredMs !== undefined);
  const times = timed.map((f) => f.measuredMs!);
  const worst = timed.reduce<DrillFacts | undefined>(
    (w, f) => (!w || f.measuredMs! > w.measuredMs! ? f : w),
    undefined,
  );
  const p = p95(times);
  const base = {
    id: 'rto' as const,
    title: CONTROL_TITLES['rto'],
    target: `restore takes less than ${formatDuration(rtoMs)}`,
  };
  const values = {
    rtoMs,
    lastMs: null as number | null,
    worstMs: worst?.measuredMs ?? null,
    p95Ms: p ?? null,
    drills: inside.length,
    timedDrills: timed.length,
  };
  const last = inside[inside.length - 1];
  if (!last) {
    return { ...base, status: 'unknown', measured: 'no drill in the window', evidence: [], values };
  }
  const lastSuccess = [...inside].reverse().find((f) => f.run.outcome === 'success');
  const rto = evaluateRto({
    now: ev.now,
    rtoMs,
    last: toDrillEvidence(last),
    ...(lastSuccess ? { lastSuccess: toDrillEvidence(lastSuccess) } : {}),
  });
  // evaluateRto knows no-drill and not-required too; neither can happen with a drill and an RTO.
  let status: ControlStatus =
    rto.state === 'no-drill' || rto.state === 'not-required' ? 'unknown' : statusOfState(rto.state);
  const parts = [rto.reason];
  if (last.verdict === 'breach' && last.measuredMs !== undefined) {
    parts.push(`restore took ${formatDuration(last.measuredMs)} of an RTO of ${formatDuration(rtoMs)}`);
  }
  if (timed.length > 0) {
    parts.push(
      `worst ${formatDuration(worst!.measuredMs!)}, p95 ${formatDuration(p!)} over ${timed.length} timed ${timed.length === 1 ? 'drill' : 'drills'}`,
    );
    if (status === 'pass' && stateOfRatio(p! / rtoMs) !== 'ok') {
      status = 'warning';
      parts.push(`the p95 is ${percent(p! / rtoMs)} of the RTO`);
    }
  }
  const evidence: EvidenceRef[] = [runRef(last.run)];
  if (worst && worst !== last) evidence.push(runRef(worst.run));
  return {
    ...base,
    status,
    measured: parts.join('; '),
    evidence,
    values: { ...values, lastMs: last.measuredMs ?? null },
  };
}

/** Where the journal was read from (the oldest of the job's repositories that could be read). */
function readFrom(ev: JobEvidence): number {
  const opened = ev.repositories.filter((r) => r.opened);
  return opened.length ? Math.min(...opened.map((r) => r.journalSince)) : ev.now;
}

/** drill-freshness: a successful drill within the policy's drill.every. */
export function drillFreshnessControl(ev: JobEvidence, drills: DrillFacts[], everyMs: number): Control {
  const base = {
    id: 'drill-freshness' as const,
    title: CONTROL_TITLES['drill-freshness'],
    target: `a successful drill at least every ${formatDuration(everyMs)}`,
  };
  const lastSuccess = [...drills].reverse().find((f) => f.run.outcome === 'success');
  if (lastSuccess) {
    const age = Math.max(0, ev.now - lastSuccess.run.startedAt);
    return {
      ...base,
      status: statusOfState(stateOfRatio(age / everyMs)),
      measured: `last successful drill ${formatAgo(lastSuccess.run.startedAt, ev.now)}`,
      evidence: [runRef(lastSuccess.run)],
      values: { everyMs, lastSuccessAgeMs: age },
    };
  }
  const values = { everyMs, lastSuccessAgeMs: null };
  const evidence = first([...drills].reverse(), 5).map((f) => runRef(f.run));
  const unreadable = ev.repositories.filter((r) => !r.opened).map((r) => r.name);
  if (unreadable.length > 0) {
    return {
      ...base,
      status: 'unknown',
      measured: `no successful drill found; ${unreadable.join(', ')} could not be read`,
      evidence,
      values,
    };
  }
  const since = readFrom(ev);
  if (ev.firstSeen !== undefined && ev.now - ev.firstSeen >= everyMs) {
    return {
      ...base,
      status: 'fail',
      measured:
        `no successful drill in the last ${formatDuration(ev.now - since)}` +
        (drills.length ? ` (${drills.length} failed or interrupted)` : ''),
      evidence,
      values,
    };
  }
  return {
    ...base,
    status: 'unknown',
    measured:
      (drills.length ? `no successful drill yet (${drills.length} failed or interrupted)` : 'no drill yet') +
      (ev.firstSeen === undefined
        ? ', and no backup of the job'
        : `; the job is younger than ${formatDuration(everyMs)} (first seen ${formatAgo(ev.firstSeen, ev.now)})`),
    evidence,
    values,
  };
}

/** drill-verification: the last drill's checks passed (time is judged by rto). */
export function drillVerificationControl(ev: JobEvidence, drills: DrillFacts[]): Control {
  const base = {
    id: 'drill-verification' as const,
    title: CONTROL_TITLES['drill-verification'],
    target: 'the last drill’s checks pass',
  };
  const judged = drills.filter((f) => f.verdict !== undefined);
  const last = judged[judged.length - 1];
  const inside = judged.filter((f) => f.run.startedAt >= ev.windowFrom);
  const failedInWindow = inside.filter((f) => f.verdict === 'fail');
  const values = {
    drills: inside.length,
    failedVerification: failedInWindow.length,
    lastVerdict: last?.verdict ?? null,
  };
  if (!last) {
    return {
      ...base,
      status: 'unknown',
      measured: drills.length ? 'no drill finished (interrupted)' : 'no drill yet',
      evidence: first([...drills].reverse(), 5).map((f) => runRef(f.run)),
      values,
    };
  }
  const ago = formatAgo(last.run.startedAt, ev.now);
  const snapshot = last.run.snapshotIds[0];
  const on = snapshot ? ` on snapshot ${snapshot.slice(0, 12)}` : '';
  const passed = last.checks.filter((c) => c.status === 'pass').length;
  const counted = last.checks.filter((c) => c.status !== 'skip').length;
  const evidence = [
    runRef(last.run),
    ...first(failedInWindow.filter((f) => f !== last).reverse(), 10).map((f) => runRef(f.run)),
  ];
  if (last.verdict === 'fail') {
    const failed = last.failed;
    const why = failed
      ? `${failed.name}: ${failed.message ?? 'failed'}`
      : (last.run.error?.message ?? 'verification failed');
    return { ...base, status: 'fail', measured: `last drill ${ago}${on} failed: ${why}`, evidence, values };
  }
  const checksText = counted
    ? `${passed} of ${counted} ${counted === 1 ? 'check' : 'checks'} passed`
    : 'restored (no checks recorded)';
  let status: ControlStatus = 'pass';
  let measured = `last drill ${ago}${on}: ${checksText}`;
  if (failedInWindow.length > 0) {
    status = 'warning';
    measured += `; ${failedInWindow.length} of ${inside.length} drills in the window failed verification`;
  }
  return { ...base, status, measured, evidence, values };
}

/** drill-coverage (random drills): share of the restore points in the drill window ever drilled. */
export function drillCoverageControl(
  ev: JobEvidence,
  drills: DrillFacts[],
  drill: { everyMs: number; windowMs: number },
): Control {
  const from = ev.now - drill.windowMs;
  const candidates = new Map<string, string>();
  for (const p of ev.good) {
    if (p.endedAt >= from && p.endedAt <= ev.now && !candidates.has(p.pointKey))
      candidates.set(p.pointKey, p.id);
  }
  const drilledKeys = new Set<string>();
  for (const f of drills) {
    if (f.run.outcome === 'interrupted') continue;
    for (const id of f.run.snapshotIds) {
      const key = ev.pointKeyOf.get(id);
      if (key) drilledKeys.add(key);
    }
  }
  const points = candidates.size;
  const covered = [...candidates.keys()].filter((k) => drilledKeys.has(k)).length;
  const age = ev.firstSeen === undefined ? 0 : ev.now - ev.firstSeen;
  // Random drills can prove about one restore point per drill interval.
  const expected = Math.min(points, Math.max(1, Math.floor(Math.min(drill.windowMs, age) / drill.everyMs)));
  const base = {
    id: 'drill-coverage' as const,
    title: CONTROL_TITLES['drill-coverage'],
    target: `one restore point of the last ${formatDuration(drill.windowMs)} drilled per ${formatDuration(drill.everyMs)}`,
  };
  const values = {
    points,
    drilled: covered,
    share: points ? covered / points : null,
    expected: points ? expected : null,
  };
  if (points === 0) {
    return {
      ...base,
      status: 'unknown',
      measured: `no restore point in the last ${formatDuration(drill.windowMs)}`,
      evidence: [],
      values,
    };
  }
  const ratio = covered / expected;
  const status: ControlStatus = ratio >= 1 ? 'pass' : ratio >= AT_RISK_RATIO ? 'warning' : 'fail';
  const drilledRuns = drills.filter((f) =>
    f.run.snapshotIds.some((id) => candidates.has(ev.pointKeyOf.get(id) ?? '')),
  );
  return {
    ...base,
    status,
    measured: `${covered} of ${points} restore points drilled (${percent(covered / points)}); ${expected} expected`,
    evidence: first(drilledRuns.reverse()).map((f) => runRef(f.run)),
    values,
  };
}
