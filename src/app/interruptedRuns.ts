/**
 * Runs that never recorded their end. Before `run` starts an activity it writes a small
 * "running" marker into `<stateDir>/running/`, and removes it when the activity is over. A
 * marker whose process is gone at the next start means the run was killed (kill -9, OOM,
 * power loss): it is recorded in the repository journal as `interrupted`, so reports and the
 * planner see the attempt, and then removed.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { systemClock } from '../platform/clock.js';
import type { JournalInput, JournalKind, JournalRecord } from '../repository/journal.js';
import { processAlive } from './hostRunLock.js';

export const RUNNING_DIR = 'running';

/** What a marker records about the activity it stands for. */
export interface RunningMarker {
  v: 1;
  pid: number;
  host: string;
  /** Planner activity id, e.g. `backup:web`. */
  activity: string;
  /** The journal kind a record of this activity has. */
  kind: JournalKind;
  job?: string;
  repository: string;
  startedAt: string;
  /**
   * The real wall clock when the marker was written. The mtime (heartbeat) minus this is how
   * long the run was seen alive, whatever clock `startedAt` came from.
   */
  wallStartedMs?: number;
}

/** A marker left behind by a process that is gone. */
export interface StaleMarker {
  file: string;
  marker: RunningMarker;
  /** When the owner last showed a sign of life, on the clock of `startedAt` (from the heartbeat's mtime). */
  lastSeenMs: number;
}

/** A written marker; remove() once the activity's outcome is recorded. */
export interface MarkerHandle {
  file: string;
  remove(): Promise<void>;
}

function markersDir(stateDir: string): string {
  return join(stateDir, RUNNING_DIR);
}

/** Write a marker for an activity about to start. */
export async function writeRunningMarker(
  stateDir: string,
  marker: Omit<RunningMarker, 'v' | 'pid' | 'host' | 'wallStartedMs'>,
): Promise<MarkerHandle> {
  const file = join(markersDir(stateDir), `${randomBytes(8).toString('hex')}.json`);
  const full: RunningMarker = {
    v: 1,
    pid: process.pid,
    host: hostname(),
    ...marker,
    wallStartedMs: systemClock.now(),
  };
  await writeFileAtomic(file, JSON.stringify(full) + '\n', { mode: 0o600 });
  return { file, remove: () => rm(file, { force: true }) };
}

/** Touch every marker of this process (called with the run lock's heartbeat). */
export async function touchRunningMarkers(stateDir: string): Promise<void> {
  const t = systemClock.now() / 1000;
  for (const { file, marker } of await readMarkers(stateDir)) {
    if (marker.pid === process.pid) await utimes(file, t, t).catch(() => undefined);
  }
}

function parseMarker(text: string): RunningMarker | undefined {
  try {
    const m = JSON.parse(text) as Partial<RunningMarker>;
    if (m.v !== 1 || typeof m.pid !== 'number' || typeof m.activity !== 'string') return undefined;
    if (typeof m.kind !== 'string' || typeof m.repository !== 'string' || typeof m.startedAt !== 'string') {
      return undefined;
    }
    return m as RunningMarker;
  } catch {
    return undefined;
  }
}

async function readMarkers(
  stateDir: string,
): Promise<Array<{ file: string; marker: RunningMarker; mtimeMs: number }>> {
  const dir = markersDir(stateDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Array<{ file: string; marker: RunningMarker; mtimeMs: number }> = [];
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const file = join(dir, name);
    try {
      const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      const marker = parseMarker(text);
      if (marker) out.push({ file, marker, mtimeMs: info.mtimeMs });
      else await rm(file, { force: true }); // unreadable: nothing could be recorded from it
    } catch {
      // Removed meanwhile.
    }
  }
  return out;
}

/** Markers whose process is gone (on this host). */
export async function findStaleMarkers(
  stateDir: string,
  isAlive: (pid: number) => boolean = processAlive,
): Promise<StaleMarker[]> {
  const here = hostname();
  return (await readMarkers(stateDir))
    .filter(({ marker }) => marker.host !== here || (marker.pid !== process.pid && !isAlive(marker.pid)))
    .map(({ file, marker, mtimeMs }) => {
      const start = Date.parse(marker.startedAt) || 0;
      const alive = marker.wallStartedMs === undefined ? 0 : Math.max(0, mtimeMs - marker.wallStartedMs);
      return { file, marker, lastSeenMs: start + alive };
    })
    .sort((a, b) => a.marker.startedAt.localeCompare(b.marker.startedAt));
}

/** Facts about records already in a journal, to avoid recording a run twice. */
export interface KnownRun {
  kind: string;
  job?: string;
  host: string;
  startedAt: string;
}

/**
 * Whether the journal already has the run a marker stands for: the process may have recorded
 * its own failure (SIGTERM) before it died.
 */
export function alreadyRecorded(stale: StaleMarker, known: KnownRun[]): boolean {
  const start = Date.parse(stale.marker.startedAt);
  return known.some((r) => {
    const t = Date.parse(r.startedAt);
    return (
      r.kind === stale.marker.kind &&
      r.job === stale.marker.job &&
      r.host === stale.marker.host &&
      t >= start - 1000 &&
      t <= stale.lastSeenMs + 60_000
    );
  });
}

/** The journal record that tells of an interrupted run. */
export function interruptedRecord(stale: StaleMarker): JournalInput {
  const m = stale.marker;
  return {
    kind: m.kind,
    ...(m.job === undefined ? {} : { job: m.job }),
    startedAt: m.startedAt,
    endedAt: new Date(Math.max(stale.lastSeenMs, Date.parse(m.startedAt))).toISOString(),
    outcome: 'interrupted',
    error: {
      code: 'E_INTERRUPTED',
      message: `the ${m.activity} run (process ${m.pid} on ${m.host}) stopped without recording its end`,
      hint: 'it was killed, crashed or the machine went down; the next run catches up',
    },
    host: m.host,
    details: { repository: m.repository, activity: m.activity, recovered: 'running marker' },
  };
}

export interface RecoveryResult {
  recorded: JournalRecord[];
  /** Markers whose run the journal already had. */
  duplicates: StaleMarker[];
  /** Markers kept for the next start because the journal could not be written. */
  kept: Array<{ stale: StaleMarker; error: string }>;
}

/**
 * Record every stale marker as an interrupted run in its repository's journal, then remove
 * it. `known` lists runs already in the journals; `append` writes to a repository's journal.
 */
export async function recordInterruptedRuns(
  stale: StaleMarker[],
  known: Record<string, KnownRun[]>,
  append: (repository: string, input: JournalInput) => Promise<JournalRecord>,
): Promise<RecoveryResult> {
  const result: RecoveryResult = { recorded: [], duplicates: [], kept: [] };
  for (const s of stale) {
    if (alreadyRecorded(s, known[s.marker.repository] ?? [])) {
      result.duplicates.push(s);
      await rm(s.file, { force: true });
      continue;
    }
    try {
      result.recorded.push(await append(s.marker.repository, interruptedRecord(s)));
      await rm(s.file, { force: true });
    } catch (err) {
      result.kept.push({ stale: s, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return result;
}
