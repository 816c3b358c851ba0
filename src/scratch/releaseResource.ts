/**
 * Releasing what scratch environments create — the same code for a normal dispose, an
 * interrupted drill (SIGINT/SIGTERM) and `lifeboat drill cleanup` of a crashed one.
 * Every release is idempotent: releasing something already gone is a no-op.
 */
import { readFile, rm } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import { run } from '../platform/exec.js';
import { stopProcessesMentioning } from './processes.js';
import type { ScratchResource } from './types.js';

/** Directories scratch environments create start with this; nothing else is ever removed. */
export const SCRATCH_DIR_PREFIX = 'lifeboat-drill-';

export interface ReleaseContext {
  /** Drops a scratch database on a configured server. */
  dropDatabase?: (resource: Extract<ScratchResource, { type: 'database' }>) => Promise<void>;
  env?: NodeJS.ProcessEnv;
}

/** One line describing a resource, for reports. */
export function describeResource(r: ScratchResource): string {
  switch (r.type) {
    case 'dir':
      return `directory ${r.path}`;
    case 'process':
      return `server processes of ${r.mention}`;
    case 'loop':
      return `loop devices of ${r.backingFile}`;
    case 'mount':
      return `mount ${r.path}`;
    case 'database':
      return `${r.engine} database ${r.name} (drill server of job ${r.job})`;
  }
}

/** Unescape the octal escapes of /proc/self/mountinfo (`\040` is a space). */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** True when `path` is a mount point now. */
export async function isMountPoint(path: string): Promise<boolean> {
  try {
    const text = await readFile('/proc/self/mountinfo', 'utf8');
    return text.split('\n').some((line) => unescapeMountPath(line.split(' ')[4] ?? '') === path);
  } catch {
    return false;
  }
}

/** Loop devices whose backing file is `file` (`losetup -j`). */
export async function loopDevicesOf(file: string, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const r = await run(['losetup', '-j', file], { timeoutMs: 15_000, ...(env ? { env } : {}) }).catch(
    () => undefined,
  );
  if (!r || r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => /^(\/dev\/[^:]+):/.exec(l)?.[1])
    .filter((d): d is string => d !== undefined);
}

/** Release one resource; throws with a message saying what is left when it cannot. */
export async function releaseResource(r: ScratchResource, ctx: ReleaseContext = {}): Promise<void> {
  const opts = { timeoutMs: 60_000, ...(ctx.env ? { env: ctx.env } : {}) };
  switch (r.type) {
    case 'dir': {
      // A damaged or forged state file must never make lifeboat delete anything else.
      if (!isAbsolute(r.path) || !basename(r.path).startsWith(SCRATCH_DIR_PREFIX)) {
        throw new Error(`refusing to remove ${r.path}: not a lifeboat scratch directory`);
      }
      if (await isMountPoint(r.path)) throw new Error(`${r.path} is a mount point; not removing it`);
      await rm(r.path, { recursive: true, force: true, maxRetries: 3 });
      return;
    }
    case 'process':
      await stopProcessesMentioning(r.mention, r.signal);
      return;
    case 'loop':
      for (const device of await loopDevicesOf(r.backingFile, ctx.env)) {
        const res = await run(['losetup', '-d', device], opts);
        if (res.code !== 0) throw new Error(`losetup -d ${device} failed: ${res.stderr.trim()}`);
      }
      return;
    case 'mount': {
      if (!(await isMountPoint(r.path))) return;
      let res = await run(['umount', r.path], opts);
      // Busy (a process still inside): detach it lazily so the device can go.
      if (res.code !== 0) res = await run(['umount', '-l', r.path], opts);
      if (res.code !== 0) throw new Error(`umount ${r.path} failed: ${res.stderr.trim()}`);
      return;
    }
    case 'database':
      if (!ctx.dropDatabase) throw new Error(`no way to reach the server of ${describeResource(r)}`);
      await ctx.dropDatabase(r);
      return;
  }
}

/**
 * Release resources newest first (a mount before its loop device, a server before its
 * directory). Keeps going after a failure; returns the problems.
 */
export async function releaseAll(
  resources: readonly ScratchResource[],
  ctx: ReleaseContext = {},
): Promise<string[]> {
  const problems: string[] = [];
  const failedDirs = new Set<string>();
  for (const r of [...resources].reverse()) {
    // Never rm -r a directory whose mount or server could not be released: it may hold a live filesystem.
    if (r.type === 'dir' && [...failedDirs].some((p) => p.startsWith(r.path + '/') || p === r.path)) {
      problems.push(`left ${r.path} in place because something inside it could not be released`);
      continue;
    }
    try {
      await releaseResource(r, ctx);
    } catch (err) {
      problems.push(`${describeResource(r)}: ${(err as Error).message}`);
      if (r.type === 'mount') failedDirs.add(r.path);
      if (r.type === 'process') failedDirs.add(r.mention);
    }
  }
  return problems;
}
