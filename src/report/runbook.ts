/**
 * The recovery runbook as data: the emergency plan from the configuration and the evidence. Jobs
 * in recovery order (dependencies first, `dependsOn`), each with where its restore points are
 * (every repository, the newest point and its age), the exact restore commands, the restore time
 * to expect from recent drills, and the last drill's outcome. Pure.
 */
import { formatDuration } from '../policy/duration.js';
import { drillFacts, type DrillFacts } from './drillControls.js';
import type { JobTargets, ReportEvidence } from './evidence.js';
import { iso } from './jobEvidence.js';

/** What restoring a job needs to know beyond its targets. */
export interface RestoreHints {
  /** files/snapshot jobs: the paths backed up. */
  paths?: string[];
  /** image jobs: the device or image file. */
  device?: string;
  /** database jobs: whether roles/users were dumped too. */
  globals?: boolean;
}

export interface RunbookTargets {
  /** Absolute path of the configuration file, as the commands name it. */
  configPath: string;
  jobs: Array<JobTargets & { restore: RestoreHints }>;
  /** Where each repository lives, already redacted. */
  repositories: Array<{ name: string; offsite: boolean; location: string }>;
  /** Where the commands restore files and images to try them out. */
  scratchDir: string;
  timeZone: string;
  generator: { name: string; version: string };
}

export interface RunbookLocation {
  repository: string;
  offsite: boolean;
  reachable: boolean;
  error: string | null;
  restorePoints: number;
  newest: { id: string; time: string; ageMs: number } | null;
}

export interface RunbookCommand {
  purpose: string;
  command: string;
}

export interface RunbookDrill {
  id: string;
  time: string;
  repository: string;
  verdict: string;
  outcome: string;
  measuredMs: number | null;
  snapshotId: string | null;
}

export interface RunbookJob {
  step: number;
  job: string;
  kind: string;
  policy: string;
  dependsOn: string[];
  rpoMs: number | null;
  rtoMs: number | null;
  locations: RunbookLocation[];
  /** The repository to restore from: the first reachable one holding a restore point. */
  restoreFrom: string | null;
  commands: RunbookCommand[];
  /** Median measured restore time of the last drills that timed one. */
  expectedRestoreMs: number | null;
  worstRestoreMs: number | null;
  timedDrills: number;
  lastDrill: RunbookDrill | null;
  notes: string[];
}

export interface Runbook {
  generatedAt: string;
  generator: { name: string; version: string };
  configPath: string;
  repositories: Array<{
    name: string;
    offsite: boolean;
    location: string;
    reachable: boolean;
    error: string | null;
  }>;
  jobs: RunbookJob[];
  warnings: string[];
}

/** How many recent timed drills the expected restore time is taken from. */
export const RECENT_DRILLS = 5;

/** Jobs in recovery order: every job after the jobs it depends on, otherwise in configuration order. */
export function recoveryOrder(jobs: Array<{ job: string; dependsOn: string[] }>): {
  order: string[];
  cycle: string[];
} {
  const names = new Set(jobs.map((j) => j.job));
  const placed = new Set<string>();
  const order: string[] = [];
  let progress = true;
  while (progress && order.length < jobs.length) {
    progress = false;
    for (const j of jobs) {
      if (placed.has(j.job)) continue;
      if (j.dependsOn.every((d) => placed.has(d) || !names.has(d))) {
        order.push(j.job);
        placed.add(j.job);
        progress = true;
        // Restart so an earlier job freed by this one keeps its configuration position.
        break;
      }
    }
  }
  const cycle = jobs.filter((j) => !placed.has(j.job)).map((j) => j.job);
  return { order: [...order, ...cycle], cycle };
}

/** A word for a POSIX shell: left bare when safe, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : Math.round((s[mid - 1]! + s[mid]!) / 2);
}

function commandsFor(
  t: JobTargets & { restore: RestoreHints },
  configPath: string,
  scratchDir: string,
  restoreFrom: string | null,
  primary: string | undefined,
): RunbookCommand[] {
  const lb = `lifeboat --config ${shellQuote(configPath)}`;
  const job = shellQuote(t.job);
  // Name the repository only when the first one cannot serve: restore's default tries them in order.
  const from = restoreFrom && restoreFrom !== primary ? ` --repository ${shellQuote(restoreFrom)}` : '';
  const restore = `${lb} restore ${job}${from}`;
  const commands: RunbookCommand[] = [
    { purpose: 'list the restore points in every repository', command: `${lb} snapshots --job ${job}` },
  ];
  switch (t.kind) {
    case 'files':
    case 'snapshot': {
      const scratch = shellQuote(`${scratchDir}/${t.job}`);
      commands.push(
        {
          purpose: 'see what would be restored (writes nothing)',
          command: `${restore} --target ${scratch} --dry-run`,
        },
        { purpose: 'restore into a scratch directory to inspect', command: `${restore} --target ${scratch}` },
        {
          purpose: `restore in place (${(t.restore.paths ?? []).join(', ') || 'the backed-up paths'}); files that differ are replaced`,
          command: `${restore} --target / --overwrite if-changed`,
        },
      );
      break;
    }
    case 'image': {
      commands.push({
        purpose: 'restore into an image file (SHA-256 verified)',
        command: `${restore} --target ${shellQuote(`${scratchDir}/${t.job}.img`)}`,
      });
      if (t.restore.device?.startsWith('/dev/')) {
        commands.push({
          purpose: `write it back to ${t.restore.device} (refused while mounted)`,
          command: `${restore} --target ${shellQuote(t.restore.device)} --to-device`,
        });
      }
      break;
    }
    case 'postgres':
    case 'mysql': {
      const globals = t.restore.globals ? ' --globals' : '';
      const example = t.kind === 'postgres' ? 'postgres://postgres@HOST:5432/' : 'mysql://root@HOST:3306/';
      commands.push(
        {
          purpose:
            `name the server to restore into (edit user and host; keep the password in ` +
            `${t.kind === 'postgres' ? '~/.pgpass' : '~/.my.cnf'}, not in the shell history)`,
          command: `export RESTORE_DSN=${shellQuote(example)}`,
        },
        {
          purpose: 'see the plan and the exact commands',
          command: `${restore} --into env:RESTORE_DSN --create${globals} --dry-run`,
        },
        {
          purpose: 'restore and verify against the fingerprint taken at backup time (exit 4 on differences)',
          command: `${restore} --into env:RESTORE_DSN --create${globals}`,
        },
      );
      break;
    }
    default:
      commands.push({
        purpose: 'restore',
        command: `${restore} --target ${shellQuote(`${scratchDir}/${t.job}`)}`,
      });
  }
  return commands;
}

function runbookJob(
  evidence: ReportEvidence,
  t: JobTargets & { restore: RestoreHints },
  targets: RunbookTargets,
  now: number,
  step: number,
): RunbookJob {
  const locations: RunbookLocation[] = t.repositories.map((name) => {
    const repo = evidence.repositories.find((r) => r.name === name);
    const good = evidence.restorePoints.filter((p) => p.job === t.job && p.repository === name && !p.partial);
    const newest = good.reduce<(typeof good)[number] | undefined>(
      (best, p) => (!best || p.startedAt > best.startedAt ? p : best),
      undefined,
    );
    return {
      repository: name,
      offsite: repo?.offsite ?? false,
      reachable: repo?.opened ?? false,
      error: repo?.opened ? null : (repo?.error?.message ?? 'not read'),
      restorePoints: good.length,
      newest: newest
        ? { id: newest.id, time: iso(newest.startedAt), ageMs: Math.max(0, now - newest.startedAt) }
        : null,
    };
  });
  const restoreFrom = locations.find((l) => l.reachable && l.newest)?.repository ?? null;
  const seen = new Set<string>();
  const drills: DrillFacts[] = evidence.runs
    .filter((r) => r.kind === 'drill' && r.job === t.job && t.repositories.includes(r.repository))
    .filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true)))
    .sort((a, b) => a.startedAt - b.startedAt)
    .map(drillFacts);
  const timed = drills.filter((d) => d.measuredMs !== undefined).slice(-RECENT_DRILLS);
  const times = timed.map((d) => d.measuredMs!);
  const last = drills[drills.length - 1];
  const notes: string[] = [];
  if (!restoreFrom) {
    notes.push(
      locations.some((l) => !l.reachable)
        ? 'no reachable repository holds a restore point: fix access to the unreachable ones first'
        : 'no restore point exists: there is nothing to restore',
    );
  }
  if (timed.length === 0) notes.push('no drill has timed a restore: the restore time is unknown');
  if (last && last.verdict !== 'pass') {
    notes.push(
      `the last drill did not pass (${last.verdict ?? 'interrupted'}): expect trouble and allow extra time`,
    );
  }
  const expected = median(times);
  if (t.policy?.rtoMs !== undefined && expected !== undefined && expected > t.policy.rtoMs) {
    notes.push(`drills take longer than the RTO of ${formatDuration(t.policy.rtoMs)}`);
  }
  return {
    step,
    job: t.job,
    kind: t.kind,
    policy: t.policyName,
    dependsOn: [...t.dependsOn],
    rpoMs: t.policy?.rpoMs ?? null,
    rtoMs: t.policy?.rtoMs ?? null,
    locations,
    restoreFrom,
    commands: commandsFor(t, targets.configPath, targets.scratchDir, restoreFrom, t.repositories[0]),
    expectedRestoreMs: expected ?? null,
    worstRestoreMs: times.length ? Math.max(...times) : null,
    timedDrills: times.length,
    lastDrill: last
      ? {
          id: last.run.id,
          time: iso(last.run.startedAt),
          repository: last.run.repository,
          verdict: last.verdict ?? 'interrupted',
          outcome: last.run.outcome,
          measuredMs: last.measuredMs ?? null,
          snapshotId: last.run.snapshotIds[0] ?? null,
        }
      : null,
    notes,
  };
}

/** Build the runbook from the evidence and the configuration at `now`. */
export function buildRunbook(evidence: ReportEvidence, targets: RunbookTargets, now: number): Runbook {
  const { order, cycle } = recoveryOrder(targets.jobs);
  const byName = new Map(targets.jobs.map((j) => [j.job, j]));
  const warnings: string[] = [];
  if (cycle.length) {
    warnings.push(
      `jobs ${cycle.join(', ')} depend on each other in a circle; they are listed last, in configuration order`,
    );
  }
  for (const r of evidence.repositories.filter((x) => !x.opened)) {
    warnings.push(`repository ${r.name} could not be opened: ${r.error?.message ?? 'unknown error'}`);
  }
  return {
    generatedAt: iso(now),
    generator: { ...targets.generator },
    configPath: targets.configPath,
    repositories: targets.repositories.map((r) => {
      const e = evidence.repositories.find((x) => x.name === r.name);
      return {
        name: r.name,
        offsite: r.offsite,
        location: r.location,
        reachable: e?.opened ?? false,
        error: e?.opened ? null : (e?.error?.message ?? 'not read'),
      };
    }),
    jobs: order.map((name, i) => runbookJob(evidence, byName.get(name)!, targets, now, i + 1)),
    warnings,
  };
}
