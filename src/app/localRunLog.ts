/**
 * This host's own record of the runs it started, in `<stateDir>/run-history.json`. The
 * repository journal is the record that counts; this one covers what the journal cannot
 * hold — attempts on a repository that could not even be opened — so an unreachable
 * repository is retried on the planner's schedule, not at every five-minute tick.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunFacts, RunOutcome } from '../policy/due.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';

export const RUN_HISTORY_FILE = 'run-history.json';
/** Runs kept per activity: enough for the planner's retry rules. */
const KEEP_PER_ACTIVITY = 10;

/** One run as this host remembers it. */
export interface LocalRun extends RunFacts {
  /** Planner activity id, e.g. `backup:web`. */
  activity: string;
  repository: string;
}

const OUTCOMES: readonly RunOutcome[] = ['success', 'partial', 'failure', 'interrupted'];

function valid(r: unknown): r is LocalRun {
  const x = r as Partial<LocalRun> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.activity === 'string' &&
    typeof x.repository === 'string' &&
    typeof x.kind === 'string' &&
    typeof x.startedAt === 'string' &&
    typeof x.endedAt === 'string' &&
    OUTCOMES.includes(x.outcome as RunOutcome)
  );
}

/** The remembered runs; a missing or damaged file is an empty history. */
export async function readLocalRuns(stateDir: string): Promise<LocalRun[]> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(stateDir, RUN_HISTORY_FILE), 'utf8'));
    return Array.isArray(parsed) ? parsed.filter(valid) : [];
  } catch {
    return [];
  }
}

/** Add runs, keeping the newest few per activity. */
export async function appendLocalRuns(stateDir: string, runs: LocalRun[]): Promise<void> {
  if (runs.length === 0) return;
  const all = [...(await readLocalRuns(stateDir)), ...runs];
  const byActivity = new Map<string, LocalRun[]>();
  for (const r of all) {
    const list = byActivity.get(r.activity) ?? [];
    list.push(r);
    byActivity.set(r.activity, list);
  }
  const kept = [...byActivity.values()].flatMap((list) =>
    list.sort((a, b) => a.startedAt.localeCompare(b.startedAt)).slice(-KEEP_PER_ACTIVITY),
  );
  await writeFileAtomic(join(stateDir, RUN_HISTORY_FILE), JSON.stringify(kept, null, 1) + '\n', {
    mode: 0o600,
  });
}
