/**
 * What a compliance report is built from: plain data gathered by src/app/report.ts from the
 * repositories (snapshot lists and run journals) and from the configuration (targets). Times are
 * milliseconds since the epoch. Nothing here knows about storage, keys or the configuration
 * file: any machine with the repository passwords can gather the same evidence.
 */
import type { RetentionRules } from '../policy/retention.js';

export type RunOutcome = 'success' | 'partial' | 'failure' | 'interrupted';

/** A snapshot as a restore point of a job in one repository. */
export interface RestorePointEvidence {
  /** Snapshot ID in this repository. */
  id: string;
  job: string;
  repository: string;
  startedAt: number;
  endedAt: number;
  /** Partial snapshots miss files: they are not good restore points. */
  partial: boolean;
  /**
   * The same restore point in every repository (a copy keeps job, host, start and end):
   * copies of one backup share this key.
   */
  pointKey: string;
}

/** One journal record (a run), as read from one repository's journal. */
export interface RunEvidence {
  /** Journal run ID. */
  id: string;
  /** backup | copy | drill | check | prune | forget (others are kept but ignored). */
  kind: string;
  job?: string;
  /** The repository whose journal holds the record. */
  repository: string;
  startedAt: number;
  endedAt: number;
  outcome: RunOutcome;
  snapshotIds: string[];
  error?: { code: string; message: string };
  stats?: Record<string, number>;
  details: Record<string, unknown>;
  toolVersion: string;
}

/** How the repository protected its data, as seen when opening it. */
export interface EncryptionEvidence {
  repositoryId: string;
  /** The key slot the password unlocked. */
  keyId: string;
  /** Where the password came from: a literal in the configuration is weaker. */
  passwordSource: 'env' | 'file' | 'command' | 'literal' | 'environment' | 'prompt';
}

/** Is a job's newest restore point in one repository locked as `immutableFor` asks? */
export interface ImmutabilityEvidence {
  state: 'not-required' | 'ok' | 'unavailable' | 'not-locked' | 'unknown';
  reason: string;
  lockedUntil?: number;
  snapshotId?: string;
}

/** One repository: whether it could be opened, and what could not be used. */
export interface RepositoryEvidence {
  name: string;
  offsite: boolean;
  opened: boolean;
  /** Why it could not be opened or read (redacted). */
  error?: { code: string; message: string; hint?: string };
  encryption?: EncryptionEvidence;
  /** The journal was read from this time on (older runs are not evidence). */
  journalSince: number;
  /** Journal records that could not be used (damaged, or from a newer lifeboat). */
  journalProblems: Array<{ key: string; reason: string }>;
  /** Per job name; absent for jobs whose policy sets no immutableFor. */
  immutability: Record<string, ImmutabilityEvidence>;
}

export interface ReportEvidence {
  repositories: RepositoryEvidence[];
  restorePoints: RestorePointEvidence[];
  runs: RunEvidence[];
}

/** A job's targets, from its policy. Durations in ms. */
export interface PolicyTargets {
  name: string;
  rpoMs: number;
  rtoMs?: number;
  retention?: RetentionRules;
  drill?: { everyMs: number; snapshot: 'latest' | 'random'; windowMs: number };
  copies: number;
  offsite: number;
  immutableForMs?: number;
  /** readData: share of pack data a check must read (0: a structural check suffices). */
  check?: { everyMs: number; readData: number };
}

/** A configured job and what it promises. */
export interface JobTargets {
  job: string;
  kind: string;
  /** The policy's name as the job names it. */
  policyName: string;
  /** Undefined when the named policy does not exist: every control is then unknown. */
  policy?: PolicyTargets;
  repositories: string[];
  dependsOn: string[];
}

export interface ReportTargets {
  jobs: JobTargets[];
  /** Every job in the configuration (records of other jobs are listed as unconfigured). */
  configuredJobs?: string[];
  /** The evidence window: the report judges [now - windowMs, now]. */
  windowMs: number;
  /** Time zone for times shown in words. */
  timeZone: string;
  generator: { name: string; version: string };
}
