/**
 * Shared set-up of the copy and immutability tests: a temp dir with a source
 * tree, a lifeboat.yaml naming repositories `a` and `b` (and a files job
 * `site` using both), repositories created in-process with cheap scrypt
 * parameters (opening them through the app then uses those), and Deps with
 * a fake clock and a logger that keeps what it was told.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Deps } from '../../../src/app/deps.js';
import { loadConfig } from '../../../src/config/load.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { FakeClock } from '../../../src/platform/clock.js';
import type { Logger } from '../../../src/platform/logger.js';
import { initRepository } from '../../../src/repository/repository.js';
import { openStorage, type OpenStorageOptions } from '../../../src/storage/registry.js';

export const PASSWORDS = { a: 'password of repository a', b: 'password of repository b' };
export const T0 = Date.parse('2025-03-01T10:00:00Z');

export interface Sandbox {
  dir: string;
  source: string;
  configPath: string;
  clock: FakeClock;
  logs: { level: string; message: string }[];
  env: NodeJS.ProcessEnv;
  deps: Deps;
  load(): Promise<LifeboatConfig>;
  cleanup(): Promise<void>;
}

/** A logger that records every message (tests assert on warnings). */
export function recordingLogger(logs: { level: string; message: string }[]): Logger {
  const keep = (level: string) => (message: string) => void logs.push({ level, message });
  return { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

export interface SandboxOptions {
  /** YAML of the repositories section entries (default: a and b on local disk under the sandbox). */
  repositories?: (dir: string) => string;
  /** YAML of the policies section entries. */
  policies?: string;
  /** Policy of job `site` (default `plain`). */
  policy?: string;
  /** Repositories of job `site` (default `[a, b]`). */
  jobRepositories?: string;
  env?: NodeJS.ProcessEnv;
}

export async function makeSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-copy-'));
  const source = join(dir, 'site');
  await mkdir(join(source, 'pages', 'deep'), { recursive: true });
  await writeFile(join(source, 'pages', 'index.html'), '<h1>hello</h1>\n');
  await writeFile(join(source, 'pages', 'deep', 'note.txt'), 'deep note\n');
  await writeFile(join(source, 'random.bin'), randomBytes(3 * 1024 * 1024 + 17));
  await writeFile(join(source, 'zeros.bin'), Buffer.alloc(2 * 1024 * 1024));
  await writeFile(join(source, 'empty'), '');
  const repositories =
    opts.repositories?.(dir) ??
    [
      '  a:',
      `    url: file://${join(dir, 'repo-a')}`,
      '    password: env:LB_PW_A',
      '    packSize: 1MiB',
      '  b:',
      `    url: file://${join(dir, 'repo-b')}`,
      '    password: env:LB_PW_B',
      '    offsite: true',
      '    packSize: 1MiB',
    ].join('\n');
  const configPath = join(dir, 'lifeboat.yaml');
  await writeFile(
    configPath,
    [
      'defaults:',
      `  stateDir: ${join(dir, 'state')}`,
      '  host: copy-test',
      'repositories:',
      repositories,
      'policies:',
      opts.policies ?? '  plain: { rpo: 1d }',
      'jobs:',
      '  site:',
      '    kind: files',
      `    paths: [${source}]`,
      `    policy: ${opts.policy ?? 'plain'}`,
      `    repositories: ${opts.jobRepositories ?? '[a, b]'}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env: NodeJS.ProcessEnv = { LB_PW_A: PASSWORDS.a, LB_PW_B: PASSWORDS.b, ...opts.env };
  const clock = new FakeClock(T0);
  const logs: { level: string; message: string }[] = [];
  const deps: Deps = { clock, logger: recordingLogger(logs), env, host: 'copy-test', user: 'tester' };
  return {
    dir,
    source,
    configPath,
    clock,
    logs,
    env,
    deps,
    load: async () => (await loadConfig({ path: configPath, env, cwd: dir })).config,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Create the configured repository `name` with cheap scrypt parameters (like `repo init`). */
export async function initRepo(
  config: LifeboatConfig,
  name: 'a' | 'b',
  clock: FakeClock,
  storageOpts: OpenStorageOptions = {},
): Promise<void> {
  const r = config.repositories[name]!;
  const storage = await openStorage(r.url, { create: true, ...storageOpts });
  const repo = await initRepository(storage, PASSWORDS[name], {
    clock,
    host: 'copy-test',
    kdf: { N: 1024, r: 8, p: 1 },
    compressionWorkers: 1,
  });
  await repo.close();
  await storage.close?.();
}

/** Every regular file under `root`: relative path → SHA-256 of its content (cheap to compare). */
export async function readTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile())
        out.set(
          relative(root, p),
          createHash('sha256')
            .update(await readFile(p))
            .digest('hex'),
        );
    }
  };
  await walk(root);
  return out;
}

/** Every object key under a local repository directory (temp files excluded). */
export async function localObjects(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (!e.name.startsWith('.')) out.push(relative(root, p));
    }
  };
  await walk(root);
  return out.sort();
}
