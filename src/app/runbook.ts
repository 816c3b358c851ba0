/**
 * `lifeboat runbook`: the emergency plan from the configuration and the evidence (the same
 * gathering as the report: snapshot lists and drill records of every repository). The plan
 * itself is src/report/runbook.ts (pure).
 */
import { resolve } from 'node:path';
import type { JobConfig, LifeboatConfig } from '../config/schema.js';
import { redact } from '../platform/redact.js';
import { buildRunbook, type RestoreHints, type Runbook, type RunbookTargets } from '../report/index.js';
import { VERSION } from '../version.js';
import type { Deps } from './deps.js';
import { gatherEvidence, jobTargets, journalSince, type GatheredEvidence } from './report.js';

/** What a restore of the job needs to know beyond its targets. */
function restoreHints(job: JobConfig): RestoreHints {
  switch (job.kind) {
    case 'files':
      return { paths: [...job.paths] };
    case 'snapshot':
      return { paths: job.source ? [job.source] : [] };
    case 'image':
      return { device: job.device };
    case 'postgres':
      return { globals: job.globals };
    case 'mysql':
      return { globals: job.usersAndGrants };
  }
}

/** The runbook's targets: every configured job, with where its repositories live (redacted). */
export function runbookTargets(config: LifeboatConfig, configPath: string): RunbookTargets {
  return {
    configPath: resolve(configPath),
    jobs: Object.values(config.jobs).map((job) => ({
      ...jobTargets(config, job),
      restore: restoreHints(job),
    })),
    repositories: Object.values(config.repositories).map((r) => ({
      name: r.name,
      offsite: r.offsite,
      location: redact(r.url),
    })),
    scratchDir: `${config.defaults.scratchRoot}/restore`,
    timeZone: config.defaults.timezone,
    generator: { name: 'lifeboat', version: VERSION },
  };
}

export interface RunbookRun {
  runbook: Runbook;
  failures: GatheredEvidence['failures'];
}

/** Gather the evidence of every job and build the recovery runbook. */
export async function collectRunbook(
  config: LifeboatConfig,
  configPath: string,
  deps: Deps,
): Promise<RunbookRun> {
  const now = deps.clock.now();
  const jobs = Object.values(config.jobs);
  const gathered = await gatherEvidence(
    config,
    jobs,
    journalSince(config, jobs, config.defaults.reportWindow, now),
    deps,
  );
  return {
    runbook: buildRunbook(gathered.evidence, runbookTargets(config, configPath), now),
    failures: gathered.failures,
  };
}
