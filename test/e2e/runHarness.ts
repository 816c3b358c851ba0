/**
 * Helpers for end-to-end tests of `run`, `status` and `schedule`: a sandbox directory with a
 * configuration, the built binary run at a pinned time (LIFEBOAT_FAKE_NOW), and a look into
 * the repository through the engine's own API (journal, snapshots).
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FakeClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import type { SnapshotEntry } from '../../src/repository/api.js';
import type { JournalInput, JournalRecord } from '../../src/repository/journal.js';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { openStorage } from '../../src/storage/registry.js';
import { runLifeboat, type BinaryRun } from '../helpers/binary.js';

export const PASSWORD = 'e2e run-due password';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The suite runs against dist/ (`npm test` builds it first); build it when it is missing. */
export async function ensureBuilt(): Promise<void> {
  const built = await access(join(ROOT, 'dist', 'cli', 'main.js')).then(
    () => true,
    () => false,
  );
  if (!built) await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });
}

export interface Sandbox {
  dir: string;
  configFile: string;
  stateDir: string;
  /** Run `lifeboat --config <file> ARGS` at the pinned time `now` (ISO). */
  run(now: string, ...args: string[]): Promise<BinaryRun>;
  /** Run with extra environment. */
  runWith(env: NodeJS.ProcessEnv, now: string, ...args: string[]): Promise<BinaryRun>;
  /** Open a file:// repository of the sandbox in this process. */
  open(repoDir: string): Promise<Repository>;
  journal(
    repoDir: string,
  ): Promise<{ records: JournalRecord[]; problems: Array<{ key: string; reason: string }> }>;
  snapshots(repoDir: string): Promise<SnapshotEntry[]>;
  append(repoDir: string, record: JournalInput): Promise<JournalRecord>;
  cleanup(): Promise<void>;
}

/** A temp directory with `config(dir)` written as lifeboat.yaml and source trees created. */
export async function makeSandbox(
  prefix: string,
  config: (dir: string) => string,
  sources: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), `lb-e2e-${prefix}-`));
  for (const s of sources) {
    await mkdir(join(dir, s), { recursive: true });
    await writeFile(join(dir, s, 'file.txt'), `content of ${s}\n`);
  }
  const configFile = join(dir, 'lifeboat.yaml');
  await writeFile(configFile, config(dir), { mode: 0o600 });
  const baseEnv = { LB_E2E_PW: PASSWORD, ...env };
  const runWith = (extra: NodeJS.ProcessEnv, now: string, ...args: string[]) =>
    runLifeboat(['--config', configFile, ...args], {
      cwd: dir,
      env: { ...baseEnv, ...extra, LIFEBOAT_FAKE_NOW: now },
    });
  const open = async (repoDir: string) =>
    openRepository(await openStorage(`file://${join(dir, repoDir)}`), PASSWORD, {
      clock: new FakeClock(0),
      host: 'e2e-inspector',
      logger: silentLogger,
      compressionWorkers: 0,
    });
  const withRepo = async <T>(repoDir: string, fn: (r: Repository) => Promise<T>): Promise<T> => {
    const repo = await open(repoDir);
    try {
      return await fn(repo);
    } finally {
      await repo.close();
    }
  };
  return {
    dir,
    configFile,
    stateDir: join(dir, 'state'),
    run: (now, ...args) => runWith({}, now, ...args),
    runWith,
    open,
    journal: (repoDir) => withRepo(repoDir, (r) => r.listJournal()),
    snapshots: (repoDir) => withRepo(repoDir, (r) => r.listSnapshots()),
    append: (repoDir, record) => withRepo(repoDir, (r) => r.appendJournal(record)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The usual head of a sandbox configuration: state dir, host, UTC, one local repository. */
export function configHead(dir: string, extraRepos = ''): string {
  return [
    'defaults:',
    `  stateDir: ${join(dir, 'state')}`,
    '  host: e2e-host',
    '  timezone: UTC',
    '  concurrency: 2',
    'repositories:',
    '  local:',
    `    url: file://${join(dir, 'repo')}`,
    '    password: env:LB_E2E_PW',
    extraRepos,
  ]
    .filter(Boolean)
    .join('\n');
}
