/**
 * Cross-field rules: checks that need more than one part of the file. Each rule returns
 * findings whose message explains why the combination cannot work, and a hint to fix it.
 */
import { formatDuration } from '../policy/duration.js';
import { describeSchedule, longestGap } from '../policy/schedule.js';
import { suggestion } from './didYouMean.js';
import type { Finding } from './finding.js';
import type { DeclaredNames } from './resolve.js';
import type { JobConfig, LifeboatConfig } from './schema.js';

export interface RuleContext {
  /** The time schedules are sampled from (ms since epoch). */
  now: number;
  /** Every name declared in the file, valid or not. */
  names: DeclaredNames;
}

export interface RuleResult {
  errors: Finding[];
  warnings: Finding[];
}

type Rule = (config: LifeboatConfig, ctx: RuleContext, out: RuleResult) => void;

const YEAR = 365 * 86_400_000;
const DATABASE_KINDS = new Set(['postgres', 'mysql']);

const quote = (name: string) => `\`${name}\``;
const list = (names: readonly string[]) => names.map(quote).join(', ');

/** A job names a policy that does not exist. */
export const policyExists: Rule = (config, ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    if (job.policy === '' || ctx.names.policies.includes(job.policy)) continue;
    out.errors.push({
      path: ['jobs', job.name, 'policy'],
      message: `unknown policy ${quote(job.policy)}`,
      hint: suggestion(job.policy, ctx.names.policies, 'policies defined'),
    });
  }
};

/** A job names a repository that does not exist. */
export const repositoriesExist: Rule = (config, ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    const seen = new Set<string>();
    job.repositories.forEach((repo, i) => {
      if (!ctx.names.repositories.includes(repo)) {
        out.errors.push({
          path: ['jobs', job.name, 'repositories', i],
          message: `unknown repository ${quote(repo)}`,
          hint: suggestion(repo, ctx.names.repositories, 'repositories defined'),
        });
      } else if (seen.has(repo)) {
        out.errors.push({
          path: ['jobs', job.name, 'repositories', i],
          message: `repository ${quote(repo)} is listed twice`,
          hint: 'a repository holds one copy however often it is listed; remove the repeat',
        });
      }
      seen.add(repo);
    });
  }
};

/** dependsOn names an unknown job, the job itself, or closes a circle. */
export const dependenciesValid: Rule = (config, ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    job.dependsOn.forEach((dep, i) => {
      if (dep === job.name) {
        out.errors.push({
          path: ['jobs', job.name, 'dependsOn', i],
          message: `job ${quote(job.name)} depends on itself`,
          hint: 'remove it from its own dependsOn',
        });
      } else if (!ctx.names.jobs.includes(dep)) {
        out.errors.push({
          path: ['jobs', job.name, 'dependsOn', i],
          message: `unknown job ${quote(dep)}`,
          hint: suggestion(dep, ctx.names.jobs, 'jobs defined'),
        });
      }
    });
  }
  for (const cycle of dependencyCycles(config.jobs)) {
    const first = cycle[0]!;
    const index = config.jobs[first]!.dependsOn.indexOf(cycle[1]!);
    out.errors.push({
      path: ['jobs', first, 'dependsOn', index],
      message: `jobs depend on each other in a circle: ${[...cycle].join(' → ')}`,
      hint: 'a restore order needs a job to start with; remove one of these dependsOn entries',
    });
  }
};

/** Every elementary circle in the dependsOn graph, each reported once (starting at its smallest name). */
function dependencyCycles(jobs: Record<string, JobConfig>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (name: string, stack: string[]) => {
    const at = stack.indexOf(name);
    if (at >= 0) {
      const cycle = stack.slice(at);
      if (cycle.length < 2) return; // self-dependency is reported on its own
      const start = cycle.indexOf([...cycle].sort()[0]!);
      const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
      const key = rotated.join('\u0000');
      if (!seen.has(key)) {
        seen.add(key);
        cycles.push([...rotated, rotated[0]!]);
      }
      return;
    }
    const job = jobs[name];
    if (!job || stack.length > Object.keys(jobs).length) return;
    for (const dep of job.dependsOn) visit(dep, [...stack, name]);
  };
  for (const name of Object.keys(jobs)) visit(name, []);
  return cycles;
}

/** The schedule leaves gaps longer than the policy's RPO (or there is no schedule: a warning). */
export const scheduleMeetsRpo: Rule = (config, ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    const policy = config.policies[job.policy];
    if (!policy) continue;
    const rpo = formatDuration(policy.rpo);
    if (!job.schedule) {
      out.warnings.push({
        path: ['jobs', job.name],
        at: 'key',
        message: `job ${quote(job.name)} has no schedule: it runs only when started by hand, so meeting its rpo of ${rpo} is up to you`,
        hint: `add schedule: "${cronFor(policy.rpo)}" (or run it from your own scheduler)`,
      });
      continue;
    }
    const gap = longestGap(job.schedule, ctx.now, YEAR);
    if (!gap) {
      out.errors.push({
        path: ['jobs', job.name, 'schedule'],
        message: `${describeSchedule(job.schedule)} does not run twice within a year, so an rpo of ${rpo} cannot be met`,
        hint: `schedule it at least every ${rpo}, e.g. "${cronFor(policy.rpo)}"`,
      });
    } else if (gap.ms > policy.rpo) {
      out.errors.push({
        path: ['jobs', job.name, 'schedule'],
        message:
          `${describeSchedule(job.schedule)} leaves up to ${formatDuration(gap.ms)} between runs ` +
          `(${isoMinute(gap.start)} → ${isoMinute(gap.end)}), so policy ${quote(policy.name)}'s rpo of ${rpo} cannot be met`,
        hint: `run it at least every ${rpo}, e.g. schedule: "${cronFor(policy.rpo)}", or raise the rpo`,
      });
    }
  }
};

function isoMinute(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + 'Z';
}

/** A cron expression that runs at least every `rpo` (for hints). */
export function cronFor(rpo: number): string {
  const minutes = Math.floor(rpo / 60_000);
  if (minutes >= 24 * 60) return '0 3 * * *';
  if (minutes >= 60) {
    const hours = [12, 8, 6, 4, 3, 2, 1].find((h) => h * 60 <= minutes) ?? 1;
    return hours === 1 ? '0 * * * *' : `0 */${hours} * * *`;
  }
  const step = [30, 20, 15, 10, 5, 2, 1].find((m) => m <= minutes) ?? 1;
  return step === 1 ? '* * * * *' : `*/${step} * * * *`;
}

/** A drill or check cadence longer than the report window: some reports would hold no evidence. */
export const evidenceFitsReportWindow: Rule = (config, _ctx, out) => {
  const window = config.defaults.reportWindow;
  for (const policy of Object.values(config.policies)) {
    for (const [section, what] of [
      ['drill', 'drill'],
      ['check', 'integrity check'],
    ] as const) {
      const every = policy[section]?.every;
      if (every === undefined || every <= window) continue;
      out.errors.push({
        path: ['policies', policy.name, section, 'every'],
        message:
          `${section}.every ${formatDuration(every)} is longer than defaults.reportWindow ${formatDuration(window)}: ` +
          `a report could cover a window without any ${what} and fail for lack of evidence`,
        hint: `${what}s at least every ${formatDuration(window)}, or widen defaults.reportWindow`,
      });
    }
  }
};

/** The policy wants more copies, or more offsite copies, than the job's repositories can hold. */
export const copiesAvailable: Rule = (config, _ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    const policy = config.policies[job.policy];
    if (!policy) continue;
    // Unknown or invalid repositories are reported elsewhere; counting without them would mislead.
    if (!job.repositories.every((r) => config.repositories[r])) continue;
    const repos = [...new Set(job.repositories)];
    // Points at the job's key when it relies on the default (every repository).
    const where = ['jobs', job.name, 'repositories'];
    if (policy.copies > repos.length) {
      out.errors.push({
        path: where,
        message:
          `policy ${quote(policy.name)} wants copies in ${policy.copies} repositories, ` +
          `but job ${quote(job.name)} writes to ${repos.length} (${list(repos)})`,
        hint: `list at least ${policy.copies} repositories for the job, or lower copies`,
      });
    }
    const offsite = repos.filter((r) => config.repositories[r]!.offsite);
    if (policy.offsite > offsite.length) {
      out.errors.push({
        path: where,
        message:
          `policy ${quote(policy.name)} wants ${policy.offsite} offsite ${policy.offsite === 1 ? 'copy' : 'copies'}, ` +
          `but job ${quote(job.name)} writes to ${offsite.length === 0 ? 'no offsite repository' : `only ${list(offsite)} offsite`}`,
        hint: 'add a repository with offsite: true to the job (and mark it offsite only if it really is elsewhere)',
      });
    }
  }
};

/** A snapshot job lacks the section its provider needs, or has one for another provider. */
export const snapshotProviderSection: Rule = (config, _ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    if (job.kind !== 'snapshot') continue;
    const needs = { btrfs: 'source', lvm: 'lvm', zfs: 'zfs' } as const;
    const needed = needs[job.provider];
    if (job[needed] === undefined) {
      const example = {
        source: 'source: /mnt/data (the btrfs subvolume)',
        lvm: 'lvm: { volumeGroup: vg0, logicalVolume: data, snapshotSize: 2G }',
        zfs: 'zfs: { dataset: tank/data }',
      }[needed];
      out.errors.push({
        path: ['jobs', job.name],
        at: 'key',
        message: `provider ${job.provider} needs \`${needed}\``,
        hint: `add ${example}`,
      });
    }
    for (const section of ['lvm', 'zfs'] as const) {
      if (section !== job.provider && job[section] !== undefined) {
        out.errors.push({
          path: ['jobs', job.name, section],
          at: 'key',
          message: `\`${section}\` only applies to provider ${section}, but this job uses ${job.provider}`,
          hint: `remove it, or set provider: ${section}`,
        });
      }
    }
  }
};

/** Two repositories with one URL would count one copy twice. */
export const uniqueRepositoryUrls: Rule = (config, _ctx, out) => {
  const byUrl = new Map<string, string>();
  for (const repo of Object.values(config.repositories)) {
    const key = normaliseUrl(repo.url);
    const other = byUrl.get(key);
    if (other !== undefined) {
      out.errors.push({
        path: ['repositories', repo.name, 'url'],
        message: `same URL as repository ${quote(other)}`,
        hint: 'two names for one repository would count a single copy twice; remove one of them',
      });
    } else byUrl.set(key, repo.name);
  }
};

function normaliseUrl(url: string): string {
  const m = /^([a-z0-9+.-]+):\/\/(.*)$/i.exec(url);
  if (!m) return url;
  const path = m[2]!.replace(/\/+/g, '/').replace(/\/$/, '');
  return `${m[1]!.toLowerCase()}://${path}`;
}

/** An s3 section on a repository that is not on S3. */
export const s3SectionOnlyForS3: Rule = (config, _ctx, out) => {
  for (const repo of Object.values(config.repositories)) {
    if (repo.s3 !== undefined && !/^s3:\/\//i.test(repo.url)) {
      out.errors.push({
        path: ['repositories', repo.name, 's3'],
        at: 'key',
        message: '`s3` settings only apply to s3:// repositories',
        hint: 'remove the s3 section, or change the url to s3://bucket/prefix',
      });
    }
  }
};

/** quiesce.database must name a database job. */
export const quiesceDatabaseIsDatabaseJob: Rule = (config, ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    if (job.kind !== 'snapshot' || job.quiesce?.database === undefined) continue;
    const target = job.quiesce.database;
    const path = ['jobs', job.name, 'quiesce', 'database'];
    const other = config.jobs[target];
    if (!ctx.names.jobs.includes(target)) {
      const dbJobs = Object.values(config.jobs)
        .filter((j) => DATABASE_KINDS.has(j.kind))
        .map((j) => j.name);
      out.errors.push({
        path,
        message: `unknown job ${quote(target)}`,
        hint: suggestion(target, dbJobs, 'database jobs'),
      });
    } else if (other && !DATABASE_KINDS.has(other.kind)) {
      out.errors.push({
        path,
        message: `job ${quote(target)} is a ${other.kind} job, not a database`,
        hint: 'name a postgres or mysql job whose server should be quiesced',
      });
    }
  }
};

/** SQL assertions and existing scratch servers only make sense for database jobs. */
export const databaseOnlyDrillSettings: Rule = (config, _ctx, out) => {
  for (const job of Object.values(config.jobs)) {
    if (!job.drill || DATABASE_KINDS.has(job.kind)) continue;
    job.drill.assertions.forEach((a, i) => {
      if (a.type === 'sql') {
        out.errors.push({
          path: ['jobs', job.name, 'drill', 'assertions', i, 'sql'],
          at: 'key',
          message: `sql assertions need a database job; ${quote(job.name)} is a ${job.kind} job`,
          hint: 'use a command assertion, e.g. { command: ["test", "-s", "index.html"] }',
        });
      }
    });
    if (job.drill.scratch === 'existing' || job.drill.server !== undefined) {
      out.errors.push({
        path: ['jobs', job.name, 'drill', job.drill.server !== undefined ? 'server' : 'scratch'],
        at: 'key',
        message: `scratch servers are for database jobs; ${quote(job.name)} is a ${job.kind} job`,
        hint: 'remove scratch/server: file drills always restore into a temporary directory',
      });
    }
  }
};

/** A configuration without jobs is valid but does nothing. */
export const hasJobs: Rule = (config, ctx, out) => {
  if (ctx.names.jobs.length === 0) {
    out.warnings.push({
      path: ['jobs'],
      at: 'key',
      message: 'no jobs defined: nothing will be backed up',
      hint: 'add a job under jobs:, e.g. home: { kind: files, paths: [/home], schedule: "0 * * * *" }',
    });
  }
};

/** Every rule, in the order their findings are reported. */
export const RULES: Record<string, Rule> = {
  policyExists,
  repositoriesExist,
  dependenciesValid,
  scheduleMeetsRpo,
  evidenceFitsReportWindow,
  copiesAvailable,
  snapshotProviderSection,
  uniqueRepositoryUrls,
  s3SectionOnlyForS3,
  quiesceDatabaseIsDatabaseJob,
  databaseOnlyDrillSettings,
  hasJobs,
};

/** Run every cross-field rule. */
export function checkRules(config: LifeboatConfig, ctx: RuleContext): RuleResult {
  const out: RuleResult = { errors: [], warnings: [] };
  for (const rule of Object.values(RULES)) rule(config, ctx, out);
  return out;
}
