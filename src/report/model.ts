/**
 * The compliance report (JSON schema `lifeboat.report/v1`, docs/report-schema.md): per job, one
 * control per promise of its policy, each with a status, the target, what was measured and the
 * evidence behind it. Renderers only read this; they never judge.
 */
import type { TargetState } from '../policy/rpo.js';

export const REPORT_SCHEMA = 'lifeboat.report/v1';

/** `unknown` (no evidence) is never shown as pass. */
export type ControlStatus = 'pass' | 'warning' | 'fail' | 'unknown';

export const CONTROL_STATUSES: readonly ControlStatus[] = ['pass', 'warning', 'unknown', 'fail'];

export const CONTROL_IDS = [
  'policy',
  'rpo-now',
  'rpo-window',
  'backup-success-rate',
  'rto',
  'drill-freshness',
  'drill-verification',
  'drill-coverage',
  'retention-coverage',
  'copies',
  'encryption',
  'immutability',
  'integrity',
] as const;
export type ControlId = (typeof CONTROL_IDS)[number];

/** Control titles, also for controls a policy does not ask for. */
export const CONTROL_TITLES: Record<ControlId, string> = {
  policy: 'The job has a policy',
  'rpo-now': 'Newest restore point within the RPO',
  'rpo-window': 'No gap longer than the RPO in the window',
  'backup-success-rate': 'Backups succeed',
  rto: 'Restore within the RTO (drills)',
  'drill-freshness': 'Recent successful drill',
  'drill-verification': 'Drills verify the restored data',
  'drill-coverage': 'Drills cover the restore points',
  'retention-coverage': 'Retention keeps what it promises',
  copies: 'Enough copies (and offsite copies)',
  encryption: 'Restore points are encrypted',
  immutability: 'Restore points are immutable',
  integrity: 'Integrity checked',
};

export type EvidenceKind = 'snapshot' | 'run' | 'check' | 'drill';

/** A pointer an auditor can follow: a snapshot ID or a journal run ID, where and when. */
export interface EvidenceRef {
  kind: EvidenceKind;
  id: string;
  repository: string;
  /** ISO-8601. */
  time: string;
}

/** Machine-readable measurements of a control (documented per control). */
export type ControlValues = Record<string, number | string | boolean | null>;

export interface Control {
  id: ControlId;
  title: string;
  status: ControlStatus;
  /** The promise, in words (`≤ 1h`). */
  target: string;
  /** What the evidence shows, in words. */
  measured: string;
  evidence: EvidenceRef[];
  values: ControlValues;
}

/** A control the job's policy does not ask for. */
export interface NotApplicable {
  id: ControlId;
  title: string;
  reason: string;
}

/** A restore point on the job's timeline (copies of one backup are one point). */
export interface TimelinePoint {
  id: string;
  time: string;
  /** Repositories that hold it now (empty: known only from the journal, since forgotten). */
  repositories: string[];
}

/** A drill on the job's timeline. */
export interface TimelineDrill {
  id: string;
  time: string;
  repository: string;
  outcome: string;
  verdict: string;
  /** The restore time judged against the RTO; null when the drill did not time a restore. */
  measuredMs: number | null;
}

export interface JobTimeline {
  from: string;
  to: string;
  /** Where RPO exposure is judged from (a job younger than the window: its first restore point). */
  judgedFrom: string | null;
  rpoMs: number | null;
  rtoMs: number | null;
  /** Good restore points in the window, plus the last one before it (oldest first). */
  points: TimelinePoint[];
  /** Periods in which the newest restore point was at least the RPO old. */
  exposed: Array<{ from: string; to: string }>;
  drills: TimelineDrill[];
}

export interface JobReport {
  job: string;
  kind: string;
  policy: string;
  /** The worst control status. */
  status: ControlStatus;
  repositories: string[];
  controls: Control[];
  notApplicable: NotApplicable[];
  timeline: JobTimeline;
}

export interface RepositoryReport {
  name: string;
  offsite: boolean;
  opened: boolean;
  error: { code: string; message: string; hint?: string } | null;
  restorePoints: number;
  journalRecords: number;
  journalProblems: number;
}

/** Journal records and snapshots of jobs the configuration no longer has. */
export interface UnconfiguredJob {
  job: string;
  runs: number;
  restorePoints: number;
  lastRunAt: string | null;
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  generatedAt: string;
  generator: { name: string; version: string };
  window: { from: string; to: string; durationMs: number };
  /** The worst status of every control. */
  status: ControlStatus;
  summary: Record<ControlStatus, number>;
  jobs: JobReport[];
  repositories: RepositoryReport[];
  unconfiguredJobs: UnconfiguredJob[];
  warnings: string[];
}

const SEVERITY: Record<ControlStatus, number> = { pass: 0, warning: 1, unknown: 2, fail: 3 };

/** The worst of several statuses (pass when there are none). */
export function worstStatus(statuses: Iterable<ControlStatus>): ControlStatus {
  let worst: ControlStatus = 'pass';
  for (const s of statuses) if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  return worst;
}

/** A policy state (policy/rpo.ts) as a control status. */
export function statusOfState(state: TargetState): ControlStatus {
  switch (state) {
    case 'ok':
      return 'pass';
    case 'at-risk':
      return 'warning';
    case 'breached':
      return 'fail';
    case 'unknown':
      return 'unknown';
  }
}
