/**
 * buildReport(evidence, targets, now): the compliance report as data. Pure — the same evidence
 * and time always give the same report, which is what the golden-file tests rely on.
 */
import { formatDuration } from '../policy/duration.js';
import { backupRateControl } from './backupRateControl.js';
import {
  drillCoverageControl,
  drillFreshnessControl,
  drillVerificationControl,
  jobDrills,
  rtoControl,
  type DrillFacts,
} from './drillControls.js';
import type { JobTargets, PolicyTargets, ReportEvidence, ReportTargets } from './evidence.js';
import type { Exposure } from './exposure.js';
import { iso, jobEvidence, type JobEvidence } from './jobEvidence.js';
import {
  CONTROL_TITLES,
  REPORT_SCHEMA,
  worstStatus,
  type Control,
  type ControlId,
  type ControlStatus,
  type JobReport,
  type JobTimeline,
  type NotApplicable,
  type Report,
  type RepositoryReport,
  type UnconfiguredJob,
} from './model.js';
import { encryptionControl, immutabilityControl, integrityControl } from './repositoryControls.js';
import { retentionControl, retentionPromise } from './retentionControl.js';
import {
  copiesControl,
  restorePointHistory,
  rpoNowControl,
  rpoPerRepository,
  rpoWindowControl,
  type HistoricPoint,
} from './rpoControls.js';

function notApplicable(id: ControlId, reason: string): NotApplicable {
  return { id, title: CONTROL_TITLES[id], reason };
}

/** Build the compliance report of the configured jobs from the gathered evidence at `now`. */
export function buildReport(evidence: ReportEvidence, targets: ReportTargets, now: number): Report {
  const windowFrom = now - targets.windowMs;
  const jobs = targets.jobs.map((t) => judgeJob(evidence, t, targets, now, windowFrom));
  const statuses = jobs.flatMap((j) => j.controls.map((c) => c.status));
  const summary: Record<ControlStatus, number> = { pass: 0, warning: 0, fail: 0, unknown: 0 };
  for (const s of statuses) summary[s]++;
  const configured = new Set(targets.configuredJobs ?? targets.jobs.map((j) => j.job));
  const unconfigured = unconfiguredJobs(evidence, configured);
  return {
    schema: REPORT_SCHEMA,
    generatedAt: iso(now),
    generator: { ...targets.generator },
    window: { from: iso(windowFrom), to: iso(now), durationMs: targets.windowMs },
    status: worstStatus(statuses),
    summary,
    jobs,
    repositories: evidence.repositories.map((r): RepositoryReport => ({
      name: r.name,
      offsite: r.offsite,
      opened: r.opened,
      error: r.error ? { ...r.error } : null,
      restorePoints: evidence.restorePoints.filter((p) => p.repository === r.name).length,
      journalRecords: evidence.runs.filter((x) => x.repository === r.name).length,
      journalProblems: r.journalProblems.length,
    })),
    unconfiguredJobs: unconfigured,
    warnings: reportWarnings(evidence, unconfigured),
  };
}

function reportWarnings(evidence: ReportEvidence, unconfigured: UnconfiguredJob[]): string[] {
  const warnings: string[] = [];
  for (const r of evidence.repositories) {
    if (!r.opened) {
      warnings.push(
        `repository ${r.name} could not be opened: ${r.error?.message ?? 'unknown error'}; its controls are unknown`,
      );
    }
    if (r.journalProblems.length > 0) {
      const newer = r.journalProblems.filter((p) => /newer than this lifeboat/.test(p.reason)).length;
      warnings.push(
        `repository ${r.name}: ${r.journalProblems.length} journal ${r.journalProblems.length === 1 ? 'record' : 'records'} could not be used` +
          (newer ? ` (${newer} written by a newer lifeboat: upgrade to read them)` : '') +
          `; controls may lack their evidence (first: ${r.journalProblems[0]!.key}: ${r.journalProblems[0]!.reason})`,
      );
    }
  }
  for (const u of unconfigured) {
    warnings.push(
      `job ${u.job} is not in the configuration but has ${u.runs} journal ${u.runs === 1 ? 'record' : 'records'} ` +
        `and ${u.restorePoints} restore ${u.restorePoints === 1 ? 'point' : 'points'}; it is not judged`,
    );
  }
  return warnings;
}

function unconfiguredJobs(evidence: ReportEvidence, configured: Set<string>): UnconfiguredJob[] {
  const byJob = new Map<string, { runs: Set<string>; points: number; last: number | undefined }>();
  const entry = (job: string) => {
    let e = byJob.get(job);
    if (!e) byJob.set(job, (e = { runs: new Set(), points: 0, last: undefined }));
    return e;
  };
  for (const run of evidence.runs) {
    if (run.job === undefined || configured.has(run.job)) continue;
    const e = entry(run.job);
    e.runs.add(run.id);
    e.last = Math.max(e.last ?? run.startedAt, run.startedAt);
  }
  for (const p of evidence.restorePoints) {
    if (!configured.has(p.job)) entry(p.job).points++;
  }
  return [...byJob.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([job, e]) => ({
      job,
      runs: e.runs.size,
      restorePoints: e.points,
      lastRunAt: e.last === undefined ? null : iso(e.last),
    }));
}

function judgeJob(
  evidence: ReportEvidence,
  t: JobTargets,
  targets: ReportTargets,
  now: number,
  windowFrom: number,
): JobReport {
  const head = { job: t.job, kind: t.kind, policy: t.policyName, repositories: [...t.repositories] };
  if (!t.policy) {
    const control: Control = {
      id: 'policy',
      title: CONTROL_TITLES.policy,
      status: 'unknown',
      target: `policy ${t.policyName}`,
      measured: `the job names policy ${t.policyName}, which is not configured: nothing can be judged`,
      evidence: [],
      values: {},
    };
    return {
      ...head,
      status: 'unknown',
      controls: [control],
      notApplicable: [],
      timeline: emptyTimeline(windowFrom, now),
    };
  }
  const policy = t.policy;
  const ev = jobEvidence(evidence, t, policy, now, windowFrom, targets.timeZone);
  const controls: Control[] = [];
  const na: NotApplicable[] = [];
  const perRepo = rpoPerRepository(ev);
  const history = restorePointHistory(ev);
  const window = rpoWindowControl(ev, history);
  controls.push(rpoNowControl(ev, perRepo), window.control, backupRateControl(ev));

  const drills = jobDrills(ev);
  if (policy.rtoMs !== undefined) controls.push(rtoControl(ev, drills, policy.rtoMs));
  else na.push(notApplicable('rto', 'the policy sets no rto'));
  drillControls(ev, policy, drills, controls, na);

  const promise = policy.retention ? retentionPromise(policy.retention, policy.rpoMs) : undefined;
  if (promise) controls.push(retentionControl(ev, promise));
  else {
    na.push(
      notApplicable(
        'retention-coverage',
        policy.retention
          ? 'the retention rules promise no age (only last N, or buckets of 1)'
          : 'the policy has no retention rules: nothing is forgotten',
      ),
    );
  }
  controls.push(copiesControl(ev, perRepo), encryptionControl(ev));
  if (policy.immutableForMs !== undefined) controls.push(immutabilityControl(ev, policy.immutableForMs));
  else na.push(notApplicable('immutability', 'the policy sets no immutableFor'));
  if (policy.check) controls.push(integrityControl(ev, policy.check));
  else na.push(notApplicable('integrity', 'the policy sets no check cadence'));

  return {
    ...head,
    status: worstStatus(controls.map((c) => c.status)),
    controls: controls.map(canonical),
    notApplicable: na,
    timeline: timelineOf(ev, history, window.exposure, drills),
  };
}

/** The same key order for every control, so the JSON reads (and diffs) alike. */
function canonical(c: Control): Control {
  const { id, title, status, target, measured, evidence, values } = c;
  return { id, title, status, target, measured, evidence, values };
}

function drillControls(
  ev: JobEvidence,
  policy: PolicyTargets,
  drills: DrillFacts[],
  controls: Control[],
  na: NotApplicable[],
): void {
  const drill = policy.drill;
  if (!drill) {
    for (const id of ['drill-freshness', 'drill-verification', 'drill-coverage'] as const) {
      na.push(notApplicable(id, 'the policy asks for no drills'));
    }
    return;
  }
  controls.push(drillFreshnessControl(ev, drills, drill.everyMs), drillVerificationControl(ev, drills));
  if (drill.snapshot === 'random') controls.push(drillCoverageControl(ev, drills, drill));
  else {
    na.push(
      notApplicable(
        'drill-coverage',
        `drills restore the newest restore point (drill.snapshot: latest), every ${formatDuration(drill.everyMs)}`,
      ),
    );
  }
}

function emptyTimeline(from: number, to: number): JobTimeline {
  return {
    from: iso(from),
    to: iso(to),
    judgedFrom: null,
    rpoMs: null,
    rtoMs: null,
    points: [],
    exposed: [],
    drills: [],
  };
}

function timelineOf(
  ev: JobEvidence,
  history: HistoricPoint[],
  exposure: Exposure | undefined,
  drills: DrillFacts[],
): JobTimeline {
  const used = new Set(exposure?.points ?? []);
  const points = history
    .filter((p) => used.has(p.time))
    .filter((p, i, all) => i === 0 || all[i - 1]!.time !== p.time)
    .map((p) => ({ id: p.id, time: iso(p.time), repositories: [...p.repositories] }));
  return {
    from: iso(ev.windowFrom),
    to: iso(ev.now),
    judgedFrom: exposure ? iso(exposure.judgedFrom) : null,
    rpoMs: ev.policy.rpoMs,
    rtoMs: ev.policy.rtoMs ?? null,
    points,
    exposed: (exposure?.exposed ?? []).map((p) => ({ from: iso(p.from), to: iso(p.to) })),
    drills: drills
      .filter((f) => f.run.startedAt >= ev.windowFrom && f.run.startedAt <= ev.now)
      .map((f) => ({
        id: f.run.id,
        time: iso(f.run.startedAt),
        repository: f.run.repository,
        outcome: f.run.outcome,
        verdict: f.verdict ?? 'interrupted',
        measuredMs: f.measuredMs ?? null,
      })),
  };
}
