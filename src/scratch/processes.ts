/**
 * Finding and stopping scratch server processes by what their command line mentions
 * (their private data directory), so a leftover of a crashed drill is found even
 * though its PID was never recorded, and a reused PID is never killed by mistake.
 */
import { readdir, readFile } from 'node:fs/promises';
import { monotonicMs } from '../platform/clock.js';

interface ProcInfo {
  pid: number;
  ppid: number;
  /** 'Z' zombie, 'X' dead … */
  state: string;
}

async function procInfo(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

async function allPids(): Promise<number[]> {
  try {
    return (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), to tell reused PIDs apart. */
export async function processStartTicks(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True while the process exists and is not a zombie (optionally: and started at `startTicks`). */
export async function processAlive(pid: number, startTicks?: string): Promise<boolean> {
  const info = await procInfo(pid);
  if (!info) {
    // No /proc (not Linux): ask the kernel directly.
    if (startTicks !== undefined) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (info.state === 'Z' || info.state === 'X') return false;
  return startTicks === undefined || (await processStartTicks(pid)) === startTicks;
}

/** PIDs of live processes with an argument that contains `mention`, and all their descendants. */
export async function processesMentioning(mention: string): Promise<number[]> {
  const found = new Set<number>();
  const infos: ProcInfo[] = [];
  for (const pid of await allPids()) {
    if (pid === process.pid) continue;
    const info = await procInfo(pid);
    if (!info || info.state === 'Z' || info.state === 'X') continue;
    infos.push(info);
    try {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      if (argv.some((a) => a.includes(mention))) found.add(pid);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  // Server children (postgres backends) do not repeat the data directory in their title.
  let grew = true;
  while (grew) {
    grew = false;
    for (const info of infos) {
      if (!found.has(info.pid) && found.has(info.ppid)) {
        found.add(info.pid);
        grew = true;
      }
    }
  }
  return [...found];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Signal the processes mentioning `mention` and wait until they are gone; after
 * `graceMs` the survivors get SIGKILL. Returns the PIDs that were signalled.
 */
export async function stopProcessesMentioning(
  mention: string,
  signal: NodeJS.Signals,
  graceMs = 5000,
): Promise<number[]> {
  const pids = await processesMentioning(mention);
  const send = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone.
    }
  };
  // Only the top-level processes get the polite signal: a postmaster stops its own children.
  const roots = new Set(pids);
  for (const pid of pids) {
    const info = await procInfo(pid);
    if (info && pids.includes(info.ppid)) roots.delete(pid);
  }
  for (const pid of roots) send(pid, signal);
  const deadline = monotonicMs() + graceMs;
  const alive = async () => {
    const left: number[] = [];
    for (const pid of pids) if (await processAlive(pid)) left.push(pid);
    return left;
  };
  let left = await alive();
  let orphansSignalled = false;
  while (left.length > 0 && monotonicMs() < deadline) {
    // The top-level processes are gone but some of their children live on: they get the signal too.
    if (!orphansSignalled && ![...roots].some((pid) => left.includes(pid))) {
      for (const pid of left) send(pid, signal);
      orphansSignalled = true;
    }
    await sleep(10);
    left = await alive();
  }
  if (left.length > 0) {
    for (const pid of left) send(pid, 'SIGKILL');
    for (let i = 0; i < 200 && (await alive()).length > 0; i++) await sleep(10);
  }
  return pids;
}
