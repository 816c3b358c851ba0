// Running one benchmark step under GNU time and reading what it reports:
// wall seconds, user+system CPU seconds and the peak resident set size.
// Also the small system helpers the step needs (page-cache drop, du -sb, a plain
// tool run with its output redirected to a file).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';

export const GNU_TIME = '/usr/bin/time';

/** Install a Debian package when `probe` (an argv) fails; returns the probe's output. */
export function ensureTool(probe, debianPackage) {
  const run = () => execFileSync(probe[0], probe.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  try {
    return run();
  } catch {
    console.error(`${probe[0]} not found: installing it (apt-get install -y ${debianPackage})…`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', debianPackage], { stdio: 'inherit', env });
    return run();
  }
}

/** `sync` then drop the page, dentry and inode caches (root only). */
export function dropCaches() {
  execFileSync('sync');
  execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
}

/** Apparent size in bytes of everything under `path` (`du -sb`), 0 when it does not exist. */
export function duBytes(path) {
  try {
    return Number(
      execFileSync('du', ['-sb', path], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .split('\t')[0],
    );
  } catch {
    return 0;
  }
}

/**
 * Run `argv` under `/usr/bin/time`, appending its output to `logFile`.
 * Resolves to { wall, cpu, rssKiB, code, load } where load is the 1-minute
 * load average just before the start; rejects when the exit code is not in `okCodes`.
 */
export async function measure(argv, { env, cwd, logFile, okCodes = [0] }) {
  const timeFile = `${logFile}.time`;
  const load = loadavg()[0];
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`\n$ ${argv.join(' ')}\n`);
  const code = await new Promise((resolveCode, reject) => {
    const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, ...argv], {
      env,
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.on('error', reject);
    child.on('close', (c) => resolveCode(c));
  });
  await new Promise((done) => log.end(done));
  // GNU time prints "Command exited with non-zero status N" before the format line.
  const lines = (await readFile(timeFile, 'utf8')).trim().split('\n');
  await rm(timeFile, { force: true });
  const [wall, user, sys, rss] = lines[lines.length - 1].split(' ').map(Number);
  if (!okCodes.includes(code)) {
    const tail = (await readFile(logFile, 'utf8')).split('\n').slice(-15).join('\n');
    throw new Error(`${argv.join(' ')} exited with ${code}; end of ${logFile}:\n${tail}`);
  }
  return { wall, cpu: user + sys, rssKiB: rss, code, load };
}

/**
 * Run a plain tool the way a person would in a shell (`tool > out`, `tool < in`):
 * its stdout is the file itself and its stdin the file itself, not a pipe
 * through this process. Piping ~500 MiB through Node costs the tool's run
 * about 1.5 s on 2 cores (mariadb-dump > file 2.8 s, through Node 4.2–4.8 s),
 * which would flatter the ratio against it. Resolves when it exits 0.
 */
export async function runRedirected(argv, { env, stdout, stdin } = {}) {
  const out = stdout === undefined ? 'ignore' : openSync(stdout, 'w');
  const inp = stdin === undefined ? 'ignore' : openSync(stdin, 'r');
  try {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: [inp, out, 'inherit'] });
    await new Promise((resolveRun, reject) => {
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolveRun() : reject(new Error(`${argv[0]} exited ${code}`)),
      );
    });
  } finally {
    // The child has its own copies of the descriptors.
    if (typeof out === 'number') closeSync(out);
    if (typeof inp === 'number') closeSync(inp);
  }
}
