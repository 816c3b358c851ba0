/**
 * The evidence of one job, sorted and de-duplicated once for all its controls: its restore
 * points, its runs by kind (a run seen in two journals counts once), its repositories (one that
 * was not gathered counts as unreadable), and when the job was first seen.
 */
import type {
  JobTargets,
  PolicyTargets,
  ReportEvidence,
  RepositoryEvidence,
  RestorePointEvidence,
  RunEvidence,
} from './evidence.js';
import type { EvidenceKind, EvidenceRef } from './model.js';

export interface JobEvidence {
  targets: JobTargets;
  policy: PolicyTargets;
  now: number;
  /** Start of the report window. */
  windowFrom: number;
  timeZone: string;
  /** The job's repositories in configuration order. */
  repositories: RepositoryEvidence[];
  /** Every snapshot of the job in its repositories. */
  snapshots: RestorePointEvidence[];
  /** Of which complete (not partial): the restore points. */
  good: RestorePointEvidence[];
  /** Runs of the job (and check runs of its repositories) by kind, oldest first. */
  runs: (kind: string) => RunEvidence[];
  /** The earliest time the job is known to have existed (first snapshot or run), if any. */
  firstSeen: number | undefined;
  /** Snapshot ID (in any repository) → restore point key. */
  pointKeyOf: Map<string, string>;
}

/** ISO-8601 text of a time. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const byStart = <T extends { startedAt: number }>(a: T, b: T) => a.startedAt - b.startedAt;

/** Collect one job's evidence from everything gathered. */
export function jobEvidence(
  evidence: ReportEvidence,
  targets: JobTargets,
  policy: PolicyTargets,
  now: number,
  windowFrom: number,
  timeZone: string,
): JobEvidence {
  const names = new Set(targets.repositories);
  const repositories = targets.repositories.map(
    (name): RepositoryEvidence =>
      evidence.repositories.find((r) => r.name === name) ?? {
        name,
        offsite: false,
        opened: false,
        error: { code: 'E_NOT_READ', message: `repository ${name} was not read` },
        journalSince: now,
        journalProblems: [],
        immutability: {},
      },
  );
  const snapshots = evidence.restorePoints
    .filter((p) => p.job === targets.job && names.has(p.repository))
    .sort(byStart);
  const byKind = new Map<string, RunEvidence[]>();
  const seen = new Set<string>();
  for (const run of [...evidence.runs].sort(byStart)) {
    if (!names.has(run.repository)) continue;
    // Checks judge a repository, not a job; everything else must name this job.
    if (run.kind !== 'check' && run.job !== targets.job) continue;
    const key = `${run.kind}:${run.repository}:${run.id}`;
    // Two configured names may point at one repository: a run is counted once.
    const runKey = run.kind === 'check' ? key : `${run.kind}:${run.id}`;
    if (seen.has(runKey)) continue;
    seen.add(runKey);
    const list = byKind.get(run.kind) ?? [];
    list.push(run);
    byKind.set(run.kind, list);
  }
  const firstTimes = [
    ...snapshots.slice(0, 1).map((s) => s.startedAt),
    ...[...byKind.entries()]
      .filter(([kind]) => kind !== 'check')
      .map(([, runs]) => runs[0]?.startedAt)
      .filter((t): t is number => t !== undefined),
  ];
  const pointKeyOf = new Map<string, string>();
  for (const p of evidence.restorePoints) if (p.job === targets.job) pointKeyOf.set(p.id, p.pointKey);
  return {
    targets,
    policy,
    now,
    windowFrom,
    timeZone,
    repositories,
    snapshots,
    good: snapshots.filter((s) => !s.partial),
    runs: (kind) => byKind.get(kind) ?? [],
    firstSeen: firstTimes.length ? Math.min(...firstTimes) : undefined,
    pointKeyOf,
  };
}

/** An evidence pointer to a snapshot. */
export function snapshotRef(p: RestorePointEvidence): EvidenceRef {
  return { kind: 'snapshot', id: p.id, repository: p.repository, time: iso(p.startedAt) };
}

/** An evidence pointer to a journal run: drills and checks by their kind, other runs as `run`. */
export function runRef(r: RunEvidence): EvidenceRef {
  const kind: EvidenceKind = r.kind === 'drill' ? 'drill' : r.kind === 'check' ? 'check' : 'run';
  return { kind, id: r.id, repository: r.repository, time: iso(r.startedAt) };
}

/** The newest good restore point of the job in one repository. */
export function newestIn(ev: JobEvidence, repository: string): RestorePointEvidence | undefined {
  let newest: RestorePointEvidence | undefined;
  for (const p of ev.good) {
    if (p.repository === repository && (!newest || p.startedAt > newest.startedAt)) newest = p;
  }
  return newest;
}

/** The oldest good restore point of the job in one repository. */
export function oldestIn(ev: JobEvidence, repository: string): RestorePointEvidence | undefined {
  return ev.good.find((p) => p.repository === repository);
}

/** Runs of a kind inside the report window. */
export function inWindow(ev: JobEvidence, runs: RunEvidence[]): RunEvidence[] {
  return runs.filter((r) => r.startedAt >= ev.windowFrom && r.startedAt <= ev.now);
}

/** Percentage text: 97.9%, 100%. */
export function percent(share: number): string {
  const p = Math.round(share * 1000) / 10;
  return `${p}%`;
}

/** At most `n` of a list (evidence lists stay readable; counts live in values). */
export function first<T>(list: T[], n = 20): T[] {
  return list.slice(0, n);
}
