/**
 * Counts of backup runs by job and outcome, kept in the state directory so the Prometheus
 * counter lifeboat_job_runs_total keeps growing across runs (losing the file resets the
 * counter, which Prometheus handles as a counter reset).
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../platform/atomicWrite.js';

export type RunCounts = Record<string, Record<string, number>>;

/** Read the counts; a missing or damaged file starts from zero. */
export async function readRunCounts(file: string): Promise<RunCounts> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    const out: RunCounts = {};
    if (typeof parsed !== 'object' || parsed === null) return out;
    for (const [job, byOutcome] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof byOutcome !== 'object' || byOutcome === null) continue;
      for (const [outcome, n] of Object.entries(byOutcome as Record<string, unknown>)) {
        if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) (out[job] ??= {})[outcome] = n;
      }
    }
    return out;
  } catch {
    return {};
  }
}

/** Add runs to the counts and store them; returns the new counts. */
export async function addRunCounts(
  file: string,
  runs: Array<{ job: string; outcome: string }>,
): Promise<RunCounts> {
  const counts = await readRunCounts(file);
  for (const r of runs) {
    const byOutcome = (counts[r.job] ??= {});
    byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
  }
  if (runs.length) await writeFileAtomic(file, JSON.stringify(counts) + '\n', { mode: 0o600 });
  return counts;
}

/** The counts as metric samples, sorted by job and outcome. */
export function runCountSamples(counts: RunCounts): Array<{ job: string; outcome: string; count: number }> {
  return Object.entries(counts)
    .flatMap(([job, byOutcome]) =>
      Object.entries(byOutcome).map(([outcome, count]) => ({ job, outcome, count })),
    )
    .sort((a, b) => (a.job === b.job ? a.outcome.localeCompare(b.outcome) : a.job.localeCompare(b.job)));
}
