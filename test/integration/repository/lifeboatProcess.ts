/**
 * Running the built `bin/lifeboat` as a separate process, as a user or cron
 * would: for tests that kill it, suspend it or run two at once. Needs
 * `npm run build` first (`npm test` does that).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * The binary under test. LIFEBOAT_TEST_BIN points to another build (e.g. a private
 * copy, when others rebuild dist/ of a shared work tree while the tests run).
 */
export const BIN = process.env.LIFEBOAT_TEST_BIN ?? join(ROOT, 'bin', 'lifeboat');
export const PASSWORD_ENV = 'LIFEBOAT_TEST_PASSWORD';
export const PASSWORD = 'crash and concurrency test password';

/** Fail early with a useful message when the CLI has not been built. */
export function requireBuild(): void {
  if (!process.env.LIFEBOAT_TEST_BIN && !existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the process tests');
  }
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment of a child: the test password, no colours, no configuration from the outside. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [PASSWORD_ENV]: PASSWORD, NO_COLOR: '1', ...extra };
  delete env.LIFEBOAT_CONFIG;
  delete env.LIFEBOAT_PASSWORD;
  delete env.LIFEBOAT_FAKE_NOW;
  return env;
}

/** Start `lifeboat -c config ARGS…`; the caller waits (finished) or kills it. */
export function startLifeboat(config: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, '-c', config, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const finished = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child: child as ChildProcess, finished };
}

/** Run `lifeboat -c config ARGS…` to the end. */
export function lifeboat(config: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return startLifeboat(config, args, env).finished;
}

/** Parse the --json document of a run, with the run's output in the error when it is not JSON. */
export function json<T = Record<string, unknown>>(run: Run): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}

export interface ConfigJob {
  name: string;
  paths: string[];
}

/** Write a lifeboat.yaml for one local repository under `dir` and return its path. */
export async function writeConfig(
  dir: string,
  jobs: ConfigJob[],
  opts: { host?: string; retention?: string } = {},
): Promise<string> {
  const lines = [
    'defaults:',
    `  stateDir: ${JSON.stringify(join(dir, 'state'))}`,
    `  host: ${opts.host ?? 'test-host'}`,
    'repositories:',
    '  local:',
    `    url: ${JSON.stringify('file://' + join(dir, 'repo'))}`,
    `    password: env:${PASSWORD_ENV}`,
    '    packSize: 1MiB',
    'policies:',
    '  standard:',
    '    rpo: 1h',
    '    rto: 1h',
    ...(opts.retention ? [`    retention: ${opts.retention}`] : []),
    'jobs:',
    ...jobs.flatMap((j) => [
      `  ${j.name}:`,
      '    kind: files',
      `    paths: ${JSON.stringify(j.paths)}`,
      '    schedule: "0 * * * *"',
      '    policy: standard',
    ]),
    '',
  ];
  const file = join(dir, 'lifeboat.yaml');
  await writeFile(file, lines.join('\n'));
  return file;
}

/** Relative path → SHA-256 of every regular file under `dir`. */
export async function manifest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (at: string) => {
    for (const e of await readdir(at, { withFileTypes: true })) {
      const p = join(at, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile())
        out[relative(dir, p)] = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
    }
  };
  await walk(dir);
  return out;
}

/** Names of the objects under `dir` (recursively), relative, sorted. */
export async function listObjects(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string) => {
    for (const e of await readdir(at, { withFileTypes: true })) {
      const p = join(at, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) await walk(dir);
  return out.sort();
}
