/**
 * Immutable restore points (a policy's `immutableFor`), as use cases see them:
 *
 * - protectRestorePoints: after a backup or copy into a repository, every
 *   restore point of the job that retention still keeps is made undeletable
 *   until `now + immutableFor` (S3 Object Lock retention on each object it
 *   needs; src/repository/retention-lock.ts). Restore points retention no
 *   longer keeps are not extended: their retention runs out, after which
 *   forget and prune can remove them.
 * - immutabilityState / repositoryImmutability: is a job's newest restore
 *   point in a repository really locked? For status and reports; a policy
 *   asking for immutability in a repository that cannot lock objects is a
 *   breach, never silently passed.
 * - checkImmutability / addImmutabilityFindings: for `check`, read the
 *   retention of every object the restore points younger than their
 *   `immutableFor` need, and report each one locked too briefly.
 */
import type { LifeboatConfig, PolicyConfig } from '../config/schema.js';
import { formatDuration } from '../policy/duration.js';
import type { TargetState } from '../policy/rpo.js';
import type { SnapshotEntry } from '../repository/api.js';
import type { CheckProblem, CheckReport } from '../repository/check.js';
import { KEYS_PREFIX, snapshotKey } from '../repository/layout.js';
import type { Repository } from '../repository/repository.js';
import {
  applyRetention,
  findRetentionShortfalls,
  lockedKeys,
  objectLockAvailability,
  requiredObjects,
  type LockWant,
} from '../repository/retention-lock.js';
import type { Deps } from './deps.js';
import { planJobRetention, rulesFromConfig } from './forget.js';
import { jobRepositoryNames } from './repositories.js';
import { describeFailure, isoTime } from './runRecord.js';

const DAY = 86_400_000;

/**
 * Retention is extended by this much more than needed (at most a day, at
 * most a tenth of immutableFor), so that hourly backups do not rewrite the
 * retention of every object every hour.
 */
export function retentionSlackMs(immutableForMs: number): number {
  return Math.min(DAY, Math.floor(immutableForMs / 10));
}

/** What protectRestorePoints did (recorded in the journal record's details). */
export type ProtectionOutcome =
  | {
      state: 'locked';
      /** ISO-8601: every kept restore point is undeletable at least until then. */
      lockedUntil: string;
      restorePoints: number;
      objects: number;
      /** Objects whose retention was set or extended in this run. */
      extended: number;
      /** Blobs the restore points refer to that no index lists (see `check`). */
      missing: number;
    }
  | { state: 'unavailable'; reason: string }
  | { state: 'failed'; reason: string };

/**
 * After a backup or copy of `job` into `repositoryName`: lock every restore
 * point of the job that retention keeps until now + immutableFor. Returns
 * undefined when the job's policy does not ask for immutability. Never
 * throws: a repository that cannot lock, or a failure while locking, is
 * logged and returned (status reports the job as breached).
 */
export async function protectRestorePoints(
  config: LifeboatConfig,
  job: string,
  repositoryName: string,
  repo: Repository,
  deps: Deps,
): Promise<ProtectionOutcome | undefined> {
  const policy = policyOf(config, job);
  if (policy?.immutableFor === undefined) return undefined;
  const availability = objectLockAvailability(repo);
  if (!availability.available) {
    const reason = unavailableText(repositoryName, availability.reason, policy);
    deps.logger.warn(reason);
    return { state: 'unavailable', reason };
  }
  try {
    const now = deps.clock.now();
    const until = now + policy.immutableFor;
    const kept = await keptSnapshots(config, job, repo, now);
    const wants: LockWant[] = kept.map((snapshot) => ({ snapshot, until }));
    const required = await requiredObjects(repo, wants, deps.signal ? { signal: deps.signal } : {});
    const applied = await applyRetention(repo, required.objects, {
      slackMs: retentionSlackMs(policy.immutableFor),
    });
    if (required.missing.length > 0) {
      deps.logger.warn(
        `repository ${repositoryName}: ${required.missing.length} blobs of ${job}'s restore points are in no index ` +
          'file and could not be locked; run `lifeboat check`',
      );
    }
    return {
      state: 'locked',
      lockedUntil: isoTime(until),
      restorePoints: kept.length,
      objects: applied.objects,
      extended: applied.extended,
      missing: required.missing.length,
    };
  } catch (err) {
    const reason = `could not lock the restore points of ${job} in repository ${repositoryName}: ${describeFailure(err).message}`;
    deps.logger.warn(reason);
    return { state: 'failed', reason };
  }
}

/** The job's snapshots in the repository that its retention keeps (all of them without rules). */
async function keptSnapshots(
  config: LifeboatConfig,
  job: string,
  repo: Repository,
  now: number,
): Promise<SnapshotEntry[]> {
  const snapshots = (await repo.listSnapshots()).filter((s) => s.job === job);
  if (snapshots.length === 0) return [];
  const policy = policyOf(config, job);
  const rules = rulesFromConfig(policy?.retention);
  if (Object.keys(rules).length === 0) return snapshots;
  // The same decision forget makes, including its safety rules (drilled and last complete snapshot).
  const { records } = await repo.listJournal({ since: snapshots[0]!.startedAt });
  const plan = planJobRetention({
    job,
    snapshots,
    journal: records,
    rules,
    rulesFrom: `policy ${policy?.name ?? ''}`,
    now,
    timeZone: config.defaults.timezone,
  });
  const keep = new Set(plan.keep.map((k) => k.id));
  return snapshots.filter((s) => keep.has(s.id));
}

/** Is a job's newest restore point in one repository protected as its policy asks? */
export interface ImmutabilityStatus {
  job: string;
  repository: string;
  /** not-required: no immutableFor; unavailable: the storage cannot lock; not-locked: it can, but the newest restore point is not locked long enough. */
  state: 'not-required' | 'ok' | 'unavailable' | 'not-locked' | 'unknown';
  /** How status counts it: unavailable and not-locked are breaches. */
  targetState: TargetState;
  reason: string;
  immutableForMs?: number;
  /** ISO-8601 retention of the newest restore point's snapshot object. */
  lockedUntil?: string;
  snapshotId?: string;
}

/**
 * Judge one job in one open repository: is immutability required, can the
 * repository lock, and is the newest restore point's snapshot object locked
 * until at least its end + immutableFor? One retention read per job.
 */
export async function immutabilityState(
  repo: Repository,
  repositoryName: string,
  job: string,
  policy: PolicyConfig | undefined,
  snapshots: readonly SnapshotEntry[],
  now: number,
): Promise<ImmutabilityStatus> {
  const base = { job, repository: repositoryName };
  if (policy?.immutableFor === undefined) {
    return {
      ...base,
      state: 'not-required',
      targetState: 'ok',
      reason: 'the policy asks for no immutability',
    };
  }
  const immutableForMs = policy.immutableFor;
  const availability = objectLockAvailability(repo);
  if (!availability.available) {
    return {
      ...base,
      immutableForMs,
      state: 'unavailable',
      targetState: 'breached',
      reason: unavailableText(repositoryName, availability.reason, policy),
    };
  }
  const newest = snapshots
    .filter((s) => s.job === job)
    .reduce<SnapshotEntry | undefined>(
      (best, s) => (!best || s.startedAt > best.startedAt ? s : best),
      undefined,
    );
  if (!newest) {
    return {
      ...base,
      immutableForMs,
      state: 'ok',
      targetState: 'ok',
      reason: 'no restore point to lock yet',
    };
  }
  const requiredUntil = Date.parse(newest.endedAt) + immutableForMs;
  if (requiredUntil <= now) {
    // Older than immutableFor: its lock may rightly have run out (the RPO check covers its age).
    return {
      ...base,
      immutableForMs,
      snapshotId: newest.id,
      state: 'ok',
      targetState: 'ok',
      reason: `the newest restore point is older than immutableFor ${formatDuration(immutableForMs)}`,
    };
  }
  try {
    const locked = await lockedKeys(repo, [snapshotKey(newest.id)], now);
    const until = locked.get(snapshotKey(newest.id));
    if (until !== undefined && until >= requiredUntil) {
      return {
        ...base,
        immutableForMs,
        snapshotId: newest.id,
        lockedUntil: isoTime(until),
        state: 'ok',
        targetState: 'ok',
        reason: `newest restore point locked until ${isoTime(until)}`,
      };
    }
    return {
      ...base,
      immutableForMs,
      snapshotId: newest.id,
      ...(until === undefined ? {} : { lockedUntil: isoTime(until) }),
      state: 'not-locked',
      targetState: 'breached',
      reason:
        `newest restore point ${newest.id.slice(0, 12)} is ` +
        (until === undefined ? 'not locked' : `locked only until ${isoTime(until)}`) +
        `, policy ${policy.name} requires ${isoTime(requiredUntil)} (immutableFor ${formatDuration(immutableForMs)})`,
    };
  } catch (err) {
    return {
      ...base,
      immutableForMs,
      snapshotId: newest.id,
      state: 'unknown',
      targetState: 'unknown',
      reason: `could not read the retention in repository ${repositoryName}: ${describeFailure(err).message}`,
    };
  }
}

/**
 * immutabilityState for every job that uses this repository and whose
 * policy has immutableFor (jobs without it are left out). For status.
 */
export async function repositoryImmutability(
  config: LifeboatConfig,
  repositoryName: string,
  repo: Repository,
  snapshots: readonly SnapshotEntry[],
  now: number,
): Promise<ImmutabilityStatus[]> {
  const out: ImmutabilityStatus[] = [];
  for (const job of Object.values(config.jobs)) {
    const policy = config.policies[job.policy];
    if (policy?.immutableFor === undefined) continue;
    if (!jobRepositoryNames(config, job).includes(repositoryName)) continue;
    out.push(await immutabilityState(repo, repositoryName, job.name, policy, snapshots, now));
  }
  return out;
}

/** What check found about retention in one repository. */
export interface ImmutabilityCheck {
  /** Some job stored here asks for immutability. */
  required: boolean;
  available: boolean;
  /** Restore points still within their immutableFor, whose objects were verified. */
  restorePoints: number;
  /** Objects whose retention was read. */
  objects: number;
  problems: CheckProblem[];
  notes: string[];
  /** The restore points named by problems. */
  affected: Array<{ id: string; job: string; host: string; startedAt: string }>;
}

/**
 * Verify retention: every object needed by a restore point whose
 * `endedAt + immutableFor` lies in the future must be locked at least until
 * then. Key files: one locked key file is enough to open the repository;
 * unlocked others are noted. Storage failures are thrown.
 */
export async function checkImmutability(
  config: LifeboatConfig,
  repositoryName: string,
  repo: Repository,
  now: number,
  opts: { signal?: AbortSignal } = {},
): Promise<ImmutabilityCheck> {
  const requiring = Object.values(config.jobs).filter(
    (j) =>
      config.policies[j.policy]?.immutableFor !== undefined &&
      jobRepositoryNames(config, j).includes(repositoryName),
  );
  const result: ImmutabilityCheck = {
    required: requiring.length > 0,
    available: objectLockAvailability(repo).available,
    restorePoints: 0,
    objects: 0,
    problems: [],
    notes: [],
    affected: [],
  };
  if (!result.required) return result;
  if (!result.available) {
    const policies = [...new Set(requiring.map((j) => j.policy))].join(', ');
    result.notes.push(
      `immutability unavailable for repository ${repositoryName}: ${objectLockAvailability(repo).reason}; ` +
        `policy ${policies} asks for immutableFor (status reports this as a breach)`,
    );
    return result;
  }
  const wants: LockWant[] = [];
  for (const s of await repo.listSnapshots()) {
    const immutableFor = policyOf(config, s.job)?.immutableFor;
    if (immutableFor === undefined) continue;
    const until = Date.parse(s.endedAt) + immutableFor;
    if (until > now) wants.push({ snapshot: s, until });
  }
  result.restorePoints = wants.length;
  if (wants.length === 0) return result;
  const required = await requiredObjects(repo, wants, opts);
  result.objects = required.objects.size;
  const shortfalls = await findRetentionShortfalls(repo, required.objects);
  const keyFiles = [...required.objects.keys()].filter((k) => k.startsWith(KEYS_PREFIX));
  const shortKeys = shortfalls.filter((s) => s.key.startsWith(KEYS_PREFIX));
  const bySnapshotKey = new Map(wants.map((w) => [snapshotKey(w.snapshot.id), w.snapshot]));
  for (const s of shortfalls) {
    const text =
      `${s.key} must stay undeletable until ${isoTime(s.requiredUntil)} but ` +
      (s.retainUntil === undefined ? 'has no retention' : `is locked only until ${isoTime(s.retainUntil)}`);
    if (s.key.startsWith(KEYS_PREFIX) && shortKeys.length < keyFiles.length) {
      result.notes.push(`${text} (another key file is locked; this one can be deleted)`);
      continue;
    }
    const snapshot = bySnapshotKey.get(s.key);
    if (snapshot)
      result.affected.push({
        id: snapshot.id,
        job: snapshot.job,
        host: snapshot.host,
        startedAt: snapshot.startedAt,
      });
    result.problems.push({
      kind: 'immutability',
      object: s.key,
      message: `${text} (policy immutableFor; a backup or copy of the job locks it again)`,
      snapshots: snapshot ? [snapshot.id] : [],
    });
  }
  return result;
}

/** Fold checkImmutability's findings into a check report (problems make it fail). */
export function addImmutabilityFindings(report: CheckReport, found: ImmutabilityCheck): void {
  report.problems.push(...found.problems);
  report.notes.push(...found.notes);
  for (const p of found.problems) {
    for (const id of p.snapshots) {
      const known = report.affectedSnapshots.find((a) => a.id === id);
      const info = found.affected.find((a) => a.id === id);
      if (known) known.problems++;
      else report.affectedSnapshots.push({ ...info, id, problems: 1 });
    }
  }
  if (found.problems.length > 0) report.ok = false;
  if (found.required && found.available && found.problems.length === 0 && found.restorePoints > 0) {
    report.notes.push(
      `retention verified: ${found.objects} objects of ${found.restorePoints} restore points are locked as their policy asks`,
    );
  }
}

function policyOf(config: LifeboatConfig, job: string): PolicyConfig | undefined {
  const name = config.jobs[job]?.policy;
  return name === undefined ? undefined : config.policies[name];
}

function unavailableText(repositoryName: string, reason: string | undefined, policy: PolicyConfig): string {
  return (
    `immutability unavailable for repository ${repositoryName}: ${reason ?? 'the storage cannot lock objects'}; ` +
    `policy ${policy.name} asks for immutableFor ${formatDuration(policy.immutableFor ?? 0)}`
  );
}

/** A snapshot forget must leave for now: its Object Lock retention has not ended. */
export interface LockedSnapshot {
  id: string;
  /** ISO-8601: when it can be forgotten. */
  lockedUntil: string;
}

/**
 * For forget: remove from each list (in place) the snapshots whose object is
 * still locked, and return them, so forget never tries to delete a locked
 * object and says until when it must wait. Without Object Lock nothing is
 * removed and no request is made.
 */
export async function holdLockedSnapshots(
  repo: Repository,
  lists: Array<Array<{ id: string }>>,
  now: number,
): Promise<LockedSnapshot[]> {
  const ids = [...new Set(lists.flat().map((s) => s.id))];
  const locked = await lockedKeys(repo, ids.map(snapshotKey), now);
  if (locked.size === 0) return [];
  for (const list of lists) {
    for (let i = list.length - 1; i >= 0; i--) if (locked.has(snapshotKey(list[i]!.id))) list.splice(i, 1);
  }
  return ids
    .filter((id) => locked.has(snapshotKey(id)))
    .map((id) => ({ id, lockedUntil: isoTime(locked.get(snapshotKey(id))!) }));
}
