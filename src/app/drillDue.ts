/**
 * `lifeboat drill --due`: which jobs need a drill now. The same rule as `lifeboat run
 * --due` (policy/due.ts): a drill is due when no successful drill of the job started
 * within the policy's `drill.every`; a failed one is retried after `drill.every` or a day,
 * whichever is shorter. Jobs whose policy sets no drill cadence are never due.
 */
import type { LifeboatConfig } from '../config/schema.js';
import { journalHorizon, planActivities, type JournalView, type PlanJob } from '../policy/due.js';
import type { Deps } from './deps.js';
import { jobRepositoryNames, openConfiguredRepository } from './repositories.js';
import { describeFailure } from './runRecord.js';

export interface DueSelection {
  due: Array<{ job: string; reason: string }>;
  notDue: Array<{ job: string; reason: string }>;
}

/** Split `names` into jobs whose drill is due and the others, with the reason for each. */
export async function dueDrills(config: LifeboatConfig, names: string[], deps: Deps): Promise<DueSelection> {
  const out: DueSelection = { due: [], notDue: [] };
  const jobs: PlanJob[] = [];
  for (const name of names) {
    const job = config.jobs[name]!;
    const every = config.policies[job.policy]?.drill?.every;
    if (every === undefined) {
      out.notDue.push({
        job: name,
        reason: `not due: policy ${job.policy} sets no drill cadence (drill.every)`,
      });
      continue;
    }
    jobs.push({
      name,
      schedule: undefined,
      repositories: jobRepositoryNames(config, job),
      drillEvery: every,
      retention: false,
    });
  }
  if (jobs.length === 0) return out;
  const now = deps.clock.now();
  const since = journalHorizon({ now, jobs, repositories: [] });
  const journals: Record<string, JournalView> = {};
  for (const name of new Set(jobs.flatMap((j) => j.repositories))) {
    try {
      const repo = await openConfiguredRepository(config, name, deps);
      try {
        journals[name] = { records: (await repo.listJournal({ since })).records };
      } finally {
        await repo.close();
      }
    } catch (err) {
      journals[name] = { records: [], error: describeFailure(err).message };
    }
  }
  const plan = planActivities({
    now,
    jobs,
    repositories: [],
    journals,
    since,
    timeZone: config.defaults.timezone,
  });
  for (const item of plan) {
    if (item.kind !== 'drill' || !item.job) continue;
    (item.due ? out.due : out.notDue).push({ job: item.job, reason: item.reason });
  }
  return out;
}
