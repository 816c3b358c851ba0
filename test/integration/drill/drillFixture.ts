/**
 * A lifeboat setup for drill tests: a temp directory with a configuration (parsed from
 * YAML like a user's), a real repository on local storage (cheap KDF), a state directory
 * and a scratch root, and helpers to back up, drill, read the journal and find leftovers.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { backupJobs, type JobBackupResult } from '../../../src/app/backup.js';
import type { Deps } from '../../../src/app/deps.js';
import { runDrills, type DrillOptions, type DrillRunResult } from '../../../src/app/drill.js';
import { openConfiguredRepository } from '../../../src/app/repositories.js';
import { parseConfigText } from '../../../src/config/load.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { systemClock, type Clock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import type { JournalRecord } from '../../../src/repository/journal.js';
import { initRepository } from '../../../src/repository/repository.js';
import { scratchStateDir } from '../../../src/scratch/index.js';
import { LocalStorage } from '../../../src/storage/local.js';

export const PASSWORD = 'drill test password';

export interface DrillFixture {
  dir: string;
  repoDir: string;
  stateDir: string;
  scratchRoot: string;
  config: LifeboatConfig;
  deps: Deps;
  backup(job: string): Promise<JobBackupResult>;
  drill(opts: Partial<DrillOptions> & { jobs: string[] }): Promise<DrillRunResult>;
  journal(): Promise<JournalRecord[]>;
  /** State files of scratch environments still present. */
  stateFiles(): Promise<string[]>;
  dispose(): Promise<void>;
}

export interface FixtureOptions {
  /** YAML of the `policies:` and `jobs:` sections (indented two spaces under them); `jobs` may first make files in the fixture's directory. */
  policies: string;
  jobs: string | ((dir: string) => Promise<string>);
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** The scratch root; default `<dir>/scratch`. */
  scratchRoot?: string;
}

/** A fresh setup in its own temp directory. */
export async function drillFixture(opts: FixtureOptions): Promise<DrillFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-drill-'));
  const repoDir = join(dir, 'repo');
  const stateDir = join(dir, 'state');
  const scratchRoot = opts.scratchRoot ?? join(dir, 'scratch');
  const text = [
    'defaults:',
    `  stateDir: ${JSON.stringify(stateDir)}`,
    `  scratchRoot: ${JSON.stringify(scratchRoot)}`,
    '  host: drill-test',
    'repositories:',
    '  main:',
    `    url: ${JSON.stringify(pathToFileURL(repoDir).href)}`,
    '    password: env:LB_DRILL_PW',
    'policies:',
    opts.policies,
    'jobs:',
    typeof opts.jobs === 'string' ? opts.jobs : await opts.jobs(dir),
    '',
  ].join('\n');
  const env = { ...process.env, LB_DRILL_PW: PASSWORD, ...opts.env };
  const { config } = parseConfigText(text, { file: join(dir, 'lifeboat.yaml'), env });
  const clock = opts.clock ?? systemClock;
  const repo = await initRepository(await LocalStorage.create(pathToFileURL(repoDir).href), PASSWORD, {
    clock,
    host: 'drill-test',
    user: 'tester',
    kdf: { N: 1024, r: 8, p: 1 },
    compressionWorkers: 1,
  });
  await repo.close();
  const deps: Deps = { clock, logger: silentLogger, env, host: 'drill-test', user: 'tester' };
  return {
    dir,
    repoDir,
    stateDir,
    scratchRoot,
    config,
    deps,
    async backup(job) {
      const [r] = await backupJobs(config, { jobs: [job] }, deps);
      if (!r || r.outcome !== 'success') throw new Error(`backup of ${job} failed: ${r?.error?.message}`);
      return r;
    },
    drill: (o) => runDrills(config, { ...o }, deps),
    async journal() {
      const repo = await openConfiguredRepository(config, 'main', deps);
      try {
        return (await repo.listJournal()).records;
      } finally {
        await repo.close();
      }
    },
    async stateFiles() {
      return (await readdir(scratchStateDir(stateDir)).catch(() => [] as string[])).filter((n) =>
        n.endsWith('.json'),
      );
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Entries of a directory (empty when it does not exist). */
export async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.lifeboat-templates'));
}
