/**
 * What a restore drill produces — steps, phases, verdict — and how it is written to the
 * journal (the drill record format of docs/drills.md). Pure: no I/O, no clock.
 *
 * The RTO rule: the time that counts against the policy's RTO is the restore phase
 * (fetching, decrypting and writing the data into the scratch environment), plus the
 * provisioning phase when the policy says `drill.provisioningCounts: true`. Verification
 * and teardown never count: they are the drill's own overhead, not part of a recovery.
 */
import type { JobKind } from '../config/schema.js';
import { formatDuration } from '../policy/duration.js';
import type { JournalInput, JournalOutcome } from '../repository/journal.js';
import type { ScratchKind } from '../scratch/index.js';
import type { FailureSummary } from './runRecord.js';

export type DrillVerdict = 'pass' | 'fail' | 'breach';

/** The name of the step that judges the measured time against the RTO. */
export const RTO_STEP = 'rto';
export type DrillStepStatus = 'pass' | 'fail' | 'skip';
export type DrillSelection = 'latest' | 'random' | 'id';

/** One recorded step of a drill. */
export interface DrillStep {
  name: string;
  status: DrillStepStatus;
  message?: string;
  durationMs: number;
  /** What was expected and what was measured, for reports (not journaled separately: the message says it). */
  expected?: string;
  actual?: string;
}

/** Monotonic durations of the drill's phases, ms. */
export interface DrillPhases {
  provisionMs: number;
  restoreMs: number;
  verifyMs: number;
  teardownMs: number;
}

/** Share of the restore points in the drill window that were ever drilled. */
export interface DrillCoverage {
  windowMs: number;
  /** Good restore points of the job in the window (in the drilled repository). */
  points: number;
  /** Of which drilled at least once (this drill included). */
  drilled: number;
  /** drilled / points (1 when there are none). */
  share: number;
}

/** The outcome of one job's drill. */
export interface DrillResult {
  job: string;
  kind: JobKind;
  /** Journal run ID. */
  runId: string;
  /** True when the record reached the repository journal. */
  recorded: boolean;
  repository?: string;
  snapshotId?: string;
  snapshotTime?: string;
  selection: DrillSelection;
  scratch: ScratchKind;
  verdict: DrillVerdict;
  outcome: JournalOutcome;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  phases: DrillPhases;
  /** The time judged against the RTO (see the file comment). */
  measuredRtoMs: number;
  /** The policy's RTO, null when it sets none. */
  rtoMs: number | null;
  provisioningCounts: boolean;
  steps: DrillStep[];
  coverage?: DrillCoverage;
  /** Set with --keep-on-failure when a failed drill's environment was kept. */
  kept?: { id: string; description: string };
  /** The first failure (redacted), for fail and breach verdicts. */
  error?: FailureSummary;
  /** Problems tearing the scratch environment down (leftovers for `lifeboat drill cleanup`). */
  leftovers?: string[];
}

/** The scratch kind a job kind drills in. */
export function scratchKindOf(kind: JobKind, existingServer: boolean): ScratchKind {
  switch (kind) {
    case 'files':
    case 'snapshot':
      return 'directory';
    case 'image':
      return 'loop-image';
    case 'postgres':
      return existingServer ? 'scratch-postgres' : 'ephemeral-postgres';
    case 'mysql':
      return existingServer ? 'scratch-mysql' : 'ephemeral-mysql';
  }
}

/** The time that counts against the RTO. */
export function measuredRto(phases: DrillPhases, provisioningCounts: boolean): number {
  return phases.restoreMs + (provisioningCounts ? phases.provisionMs : 0);
}

/** fail when any check failed; else breach when only the RTO step failed (too slow); else pass. */
export function drillVerdict(steps: readonly DrillStep[]): DrillVerdict {
  if (steps.some((s) => s.status === 'fail' && s.name !== RTO_STEP)) return 'fail';
  if (steps.some((s) => s.status === 'fail' && s.name === RTO_STEP)) return 'breach';
  return 'pass';
}

/** A duration for people: `850 ms`, `12.3 s`, then `4m 5s`, `1h 2m`, `30d`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return formatDuration(ms);
}

/** The RTO judgement as a step: measured against expected, with the rule that produced the number. */
export function rtoStep(
  phases: DrillPhases,
  provisioningCounts: boolean,
  rtoMs: number | null,
  restored: boolean,
): DrillStep {
  const measured = measuredRto(phases, provisioningCounts);
  const what = provisioningCounts ? 'provision + restore' : 'restore';
  if (!restored)
    return { name: RTO_STEP, status: 'skip', message: 'no complete restore to time', durationMs: 0 };
  if (rtoMs === null) {
    return {
      name: RTO_STEP,
      status: 'skip',
      message: `${what} took ${formatMs(measured)}; the policy sets no RTO`,
      durationMs: 0,
      actual: String(measured),
    };
  }
  const ok = measured <= rtoMs;
  return {
    name: RTO_STEP,
    status: ok ? 'pass' : 'fail',
    message: `${what} took ${formatMs(measured)} (measured ${measured} ms), the RTO is ${formatMs(rtoMs)} (${rtoMs} ms)`,
    durationMs: 0,
    expected: `<= ${rtoMs} ms`,
    actual: `${measured} ms`,
  };
}

/** The journal record of a drill (docs/drills.md, "The journal record"). */
export function drillJournalInput(r: DrillResult): JournalInput & { id: string } {
  return {
    id: r.runId,
    kind: 'drill',
    job: r.job,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    outcome: r.outcome,
    ...(r.error
      ? {
          error: {
            code: r.error.code,
            message: r.error.message,
            ...(r.error.hint ? { hint: r.error.hint } : {}),
          },
        }
      : {}),
    ...(r.snapshotId ? { snapshotIds: [r.snapshotId] } : {}),
    details: {
      verdict: r.verdict,
      repository: r.repository ?? '',
      snapshotTime: r.snapshotTime ?? null,
      selection: r.selection,
      scratch: r.scratch,
      phases: { ...r.phases },
      measuredRtoMs: r.measuredRtoMs,
      rtoMs: r.rtoMs,
      steps: r.steps.map((s) => ({
        name: s.name,
        status: s.status,
        ...(s.message !== undefined ? { message: s.message } : {}),
        durationMs: s.durationMs,
      })),
    },
  };
}
