/** A short account of a valid configuration, for `lifeboat config validate`. */
import type { LifeboatConfig } from './schema.js';

export interface ConfigSummary {
  jobs: number;
  /** Jobs per kind, e.g. { files: 2, postgres: 1 }. */
  kinds: Record<string, number>;
  repositories: number;
  offsiteRepositories: number;
  policies: number;
  scheduledJobs: number;
}

/** Count what the configuration defines. */
export function summarizeConfig(config: LifeboatConfig): ConfigSummary {
  const jobs = Object.values(config.jobs);
  const kinds: Record<string, number> = {};
  for (const job of jobs) kinds[job.kind] = (kinds[job.kind] ?? 0) + 1;
  const repos = Object.values(config.repositories);
  return {
    jobs: jobs.length,
    kinds,
    repositories: repos.length,
    offsiteRepositories: repos.filter((r) => r.offsite).length,
    policies: Object.keys(config.policies).length,
    scheduledJobs: jobs.filter((j) => j.schedule).length,
  };
}

/** `5 jobs (2 files, 1 postgres), 2 repositories (1 offsite), 3 policies`. */
export function describeSummary(s: ConfigSummary): string {
  const plural = (n: number, word: string, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;
  const kinds = Object.entries(s.kinds)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
  return [
    `${plural(s.jobs, 'job')}${kinds ? ` (${kinds})` : ''}`,
    `${plural(s.repositories, 'repository', 'repositories')}${s.offsiteRepositories ? ` (${s.offsiteRepositories} offsite)` : ''}`,
    plural(s.policies, 'policy', 'policies'),
  ].join(', ');
}
