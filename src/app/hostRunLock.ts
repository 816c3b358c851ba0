/**
 * One `lifeboat run` per host at a time: a lock file in the state directory, created with
 * O_EXCL, holding the owner's pid. The owner touches it every minute; a lock whose process is
 * gone, or which has not been touched for ten minutes (the pid may have been reused), is
 * stale and taken over. Taking over goes through a second O_EXCL file so two processes that
 * both find the same stale lock cannot both win.
 */
import { hostname } from 'node:os';
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrnoException } from '../errors.js';
import { systemClock } from '../platform/clock.js';

export const RUN_LOCK_FILE = 'run.lock';
const BREAK_FILE = 'run.lock.break';
const HEARTBEAT_MS = 60_000;
const DEFAULT_STALE_MS = 10 * 60_000;
/** A lock file without readable content younger than this is being written right now. */
const FRESH_EMPTY_MS = 60_000;

/** What a lock file records about its owner. */
export interface HostRunLockInfo {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

export interface HostRunLockOptions {
  /** Whether a process exists (tests inject their own). */
  isAlive?: (pid: number) => boolean;
  /** A lock not touched for this long is stale even if its pid exists. */
  staleAfterMs?: number;
  /** Called on every heartbeat (the run touches its activity markers). */
  onHeartbeat?: () => Promise<void> | void;
  /**
   * The real wall clock (ms) for file ages: mtimes are real times, so a pinned test clock
   * (LIFEBOAT_FAKE_NOW) must not be used here.
   */
  now?: () => number;
}

export type AcquireResult =
  | { acquired: true; lock: HostRunLock }
  | { acquired: false; path: string; holder: HostRunLockInfo | undefined };

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrnoException(err) && err.code === 'EPERM';
  }
}

/** A held run lock; release() removes it. */
export class HostRunLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(
    readonly path: string,
    readonly info: HostRunLockInfo,
    private readonly onHeartbeat?: () => Promise<void> | void,
  ) {
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Touch the lock file so others see its owner is alive. */
  async heartbeat(): Promise<void> {
    if (this.released) return;
    const t = systemClock.now() / 1000;
    await utimes(this.path, t, t).catch(() => undefined);
    await Promise.resolve(this.onHeartbeat?.()).catch(() => undefined);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    // Only remove the file if it is still ours (a takeover after a long stall replaces it).
    const current = await readLockInfo(this.path);
    if (current && current.pid === this.info.pid && current.startedAt === this.info.startedAt) {
      await rm(this.path, { force: true });
    }
  }
}

async function readLockInfo(path: string): Promise<HostRunLockInfo | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<HostRunLockInfo>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return undefined;
    return {
      pid: parsed.pid,
      host: parsed.host,
      startedAt: String(parsed.startedAt ?? ''),
      command: String(parsed.command ?? ''),
    };
  } catch {
    return undefined;
  }
}

async function createExclusive(path: string, content: string): Promise<boolean> {
  try {
    const handle = await open(path, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if (isErrnoException(err) && err.code === 'EEXIST') return false;
    throw err;
  }
}

/** Why the existing lock may be taken over, or undefined when its owner looks alive. */
async function staleness(
  path: string,
  opts: Required<Pick<HostRunLockOptions, 'isAlive' | 'staleAfterMs' | 'now'>>,
): Promise<string | undefined> {
  const info = await readLockInfo(path);
  let mtime: number;
  try {
    mtime = (await stat(path)).mtimeMs;
  } catch {
    return 'it disappeared';
  }
  const age = opts.now() - mtime;
  if (!info) return age > FRESH_EMPTY_MS ? 'it is unreadable' : undefined;
  if (info.host === hostname() && !opts.isAlive(info.pid)) return `process ${info.pid} is gone`;
  if (age > opts.staleAfterMs) return `it was not refreshed for ${Math.round(age / 60_000)} min`;
  return undefined;
}

/**
 * Take the host's run lock in `dir` (created if missing). When another live run holds it,
 * returns the holder instead; a stale lock is taken over.
 */
export async function acquireHostRunLock(
  dir: string,
  owner: { startedAt: string; command: string },
  options: HostRunLockOptions = {},
): Promise<AcquireResult> {
  const opts = {
    isAlive: options.isAlive ?? processAlive,
    staleAfterMs: options.staleAfterMs ?? DEFAULT_STALE_MS,
    now: options.now ?? (() => systemClock.now()),
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, RUN_LOCK_FILE);
  const info: HostRunLockInfo = { pid: process.pid, host: hostname(), ...owner };
  const content = JSON.stringify(info) + '\n';
  if (await createExclusive(path, content)) {
    return { acquired: true, lock: new HostRunLock(path, info, options.onHeartbeat) };
  }
  const reason = await staleness(path, opts);
  if (reason === undefined) return { acquired: false, path, holder: await readLockInfo(path) };

  // Break the stale lock under a second exclusive file, so only one process does it.
  const breakPath = join(dir, BREAK_FILE);
  if (!(await createExclusive(breakPath, content))) {
    const breakAge = await stat(breakPath).then(
      (s) => opts.now() - s.mtimeMs,
      () => 0,
    );
    // A breaker that died mid-way leaves its file behind; after a minute it is ignored.
    if (breakAge <= FRESH_EMPTY_MS) return { acquired: false, path, holder: await readLockInfo(path) };
    await rm(breakPath, { force: true });
    if (!(await createExclusive(breakPath, content))) {
      return { acquired: false, path, holder: await readLockInfo(path) };
    }
  }
  try {
    // Check again under the break lock: someone may have taken over between our looks.
    if ((await staleness(path, opts)) === undefined) {
      return { acquired: false, path, holder: await readLockInfo(path) };
    }
    await rm(path, { force: true });
    if (!(await createExclusive(path, content))) {
      return { acquired: false, path, holder: await readLockInfo(path) };
    }
    return { acquired: true, lock: new HostRunLock(path, info, options.onHeartbeat) };
  } finally {
    await rm(breakPath, { force: true });
  }
}
