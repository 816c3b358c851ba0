/**
 * Fill in the defaults that depend on the machine (state directory, host name, time zone) and
 * on the rest of the file (a job's repositories and policy), turning the schema's output into
 * the LifeboatConfig the rest of lifeboat uses.
 */
import { readlinkSync } from 'node:fs';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { canonicalTimeZone } from '../policy/timeZone.js';
import type { Finding } from './finding.js';
import type { JobConfig, LifeboatConfig, ParsedConfig, PolicyConfig, RepositoryConfig } from './schema.js';

/** Facts about the machine the defaults come from (tests pass their own). */
export interface MachineFacts {
  env: NodeJS.ProcessEnv;
  hostname: string;
  /** undefined on platforms without uids */
  uid: number | undefined;
  homedir: string;
  /** The process's time zone, used when neither the file nor TZ names one. */
  systemTimeZone: string;
}

/** The facts of this machine and process. */
export function machineFacts(env: NodeJS.ProcessEnv): MachineFacts {
  return {
    env,
    hostname: hostname(),
    uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
    homedir: env.HOME?.startsWith('/') ? env.HOME : homedir(),
    systemTimeZone: systemZoneIsUtc() ? 'UTC' : Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
  };
}

/**
 * True when TZ says UTC, or is unset and /etc/localtime links to a UTC zone (Etc/UTC, UTC, GMT, …):
 * Intl would report 'UTC', and the zone is known without Intl, whose first use pages in ~8 MiB of ICU
 * data that every command would carry. Anything else is left to Intl, as before.
 */
function systemZoneIsUtc(): boolean {
  const tz = process.env.TZ;
  if (tz !== undefined) return tz === 'UTC' || tz === 'Etc/UTC';
  try {
    return /(^|\/)zoneinfo\/(Etc\/)?(UTC|UCT|Universal|Zulu|GMT)$/.test(readlinkSync('/etc/localtime'));
  } catch {
    return false;
  }
}

/** Where local state lives when defaults.stateDir is not set. */
export function defaultStateDir(facts: MachineFacts): string {
  const override = facts.env.LIFEBOAT_STATE_DIR;
  if (override && override.startsWith('/')) return override;
  if (facts.uid === 0) return '/var/lib/lifeboat';
  const xdg = facts.env.XDG_STATE_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'lifeboat');
  return join(facts.homedir, '.local', 'state', 'lifeboat');
}

/** Names present in the file, including entries that failed validation (so references to them are not reported twice). */
export interface DeclaredNames {
  repositories: string[];
  policies: string[];
  jobs: string[];
}

/** Resolve defaults; a job whose policy cannot be determined is reported. */
export function resolveConfig(
  parsed: ParsedConfig,
  facts: MachineFacts,
  names: DeclaredNames = {
    repositories: Object.keys(parsed.repositories),
    policies: Object.keys(parsed.policies),
    jobs: Object.keys(parsed.jobs),
  },
): { config: LifeboatConfig; findings: Finding[] } {
  const findings: Finding[] = [];
  const d = parsed.defaults;
  const stateDir = d.stateDir ?? defaultStateDir(facts);
  const defaults = {
    stateDir,
    scratchRoot: d.scratchRoot ?? join(stateDir, 'scratch'),
    host: d.host ?? facts.hostname,
    timezone: d.timezone ?? canonicalTimeZone(facts.env.TZ ?? '') ?? facts.systemTimeZone,
    concurrency: d.concurrency,
    reportWindow: d.reportWindow,
  };

  const repositories: Record<string, RepositoryConfig> = {};
  for (const [name, repo] of Object.entries(parsed.repositories)) repositories[name] = { ...repo, name };

  const policies: Record<string, PolicyConfig> = {};
  for (const [name, policy] of Object.entries(parsed.policies)) {
    const drill = policy.drill
      ? { ...policy.drill, window: policy.drill.window ?? defaults.reportWindow }
      : undefined;
    policies[name] = { ...policy, name, drill };
  }

  const jobs: Record<string, JobConfig> = {};
  for (const [name, job] of Object.entries(parsed.jobs)) {
    let policy = job.policy;
    if (policy === undefined) {
      if (names.policies.length === 1) policy = names.policies[0]!;
      else {
        findings.push({
          // The policy key is absent, so this points at the job's name.
          path: ['jobs', name, 'policy'],
          at: 'key',
          message: `job \`${name}\` names no policy`,
          hint:
            names.policies.length === 0
              ? 'define one under policies: (e.g. standard: { rpo: 1h }); with a single policy every job uses it'
              : `add policy: with one of ${names.policies.map((p) => `\`${p}\``).join(', ')}`,
        });
        policy = '';
      }
    }
    const schedule = job.schedule
      ? { cron: job.schedule.cron, timezone: job.schedule.timezone ?? defaults.timezone }
      : undefined;
    jobs[name] = {
      ...job,
      name,
      policy,
      schedule,
      repositories: job.repositories ?? [...names.repositories],
    } as JobConfig;
  }

  return {
    config: {
      version: parsed.version,
      defaults,
      repositories,
      policies,
      jobs,
      notifications: parsed.notifications,
    },
    findings,
  };
}
