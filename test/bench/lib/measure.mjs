// Running one benchmark step under GNU time and reading what it reports:
// wall seconds, user+system CPU seconds and the peak resident set size.
// Also the small system helpers the step needs (page-cache drop, du -sb).
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
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
