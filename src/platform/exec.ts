import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { OperationError } from '../errors.js';
import { redact } from './redact.js';

/**
 * The only door to external programs. Commands are argv arrays, never shell
 * strings; output captured for errors is bounded and redacted; every run can
 * time out.
 */
export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the process (SIGTERM, then SIGKILL after 5 s) after this many ms. */
  timeoutMs?: number;
  /** Data written to stdin, then closed. */
  input?: string | Uint8Array;
  /** Run as this uid/gid (e.g. an unprivileged server user). */
  uid?: number;
  gid?: number;
  /**
   * spawnStreaming only: ask the program's C stdio to write its stdout in
   * pieces of this many bytes (through coreutils' `stdbuf` when it is on
   * PATH; without it the program runs as is). Dump tools write a pipe 4 KiB
   * at a time; each write wakes this process for its own read, which cost
   * about 0.5 s of CPU per 500 MiB here (pg_dump's own writes included).
   */
  stdoutBuffer?: number;
  /** spawnStreaming only: the program's stdout is this file descriptor (drainThread.ts) instead of a pipe. */
  stdoutFd?: number;
}

export interface ExecResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Keep only the last `limit` bytes of a growing text, so huge stderr cannot exhaust memory. */
export class TailBuffer {
  private text = '';
  constructor(private readonly limit = 64 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.length > this.limit ? this.text.slice(-this.limit) : this.text;
  }
}

/** Render argv for messages and --dry-run: quoted where needed, secrets redacted. */
export function formatCommand(argv: readonly string[]): string {
  return redact(
    argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' '),
  );
}

function spawnOptions(opts: ExecOptions): SpawnOptions {
  const o: SpawnOptions = {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['pipe', opts.stdoutFd ?? 'pipe', 'pipe'],
  };
  if (opts.uid !== undefined) o.uid = opts.uid;
  if (opts.gid !== undefined) o.gid = opts.gid;
  return o;
}

function armTimeout(child: ChildProcess, timeoutMs: number | undefined, onTimeout: () => void): () => void {
  if (!timeoutMs) return () => {};
  let killer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    onTimeout();
    child.kill('SIGTERM');
    killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    killer.unref();
  }, timeoutMs);
  return () => {
    clearTimeout(timer);
    if (killer) clearTimeout(killer);
  };
}

function notFound(argv: readonly string[], err: NodeJS.ErrnoException): OperationError {
  return new OperationError('E_EXEC_NOT_FOUND', `cannot run ${argv[0]}: ${err.message}`, {
    hint: `Install ${argv[0]} or put it on PATH.`,
    cause: err,
  });
}

/** Run a command to completion, capturing stdout and stderr. Never throws for a non-zero exit. */
export function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('run() needs a command');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOptions(opts));
    const out = new TailBuffer(16 * 1024 * 1024);
    const err = new TailBuffer();
    let timedOut = false;
    const disarm = armTimeout(child, opts.timeoutMs, () => (timedOut = true));
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      disarm();
      reject(e.code === 'ENOENT' ? notFound(argv, e) : e);
    });
    child.on('close', (code, signal) => {
      disarm();
      const stderr = redact(err.toString()) + (timedOut ? `\n(timed out after ${opts.timeoutMs} ms)` : '');
      resolve({ code: code ?? -1, signal, stdout: out.toString(), stderr });
    });
    child.stdin?.on('error', () => {});
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Run a command and fail with its (redacted) stderr when it exits non-zero. */
export async function runChecked(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const result = await run(argv, opts);
  if (result.code !== 0) {
    throw new OperationError(
      'E_EXEC_FAILED',
      `${formatCommand(argv)} failed (exit ${result.code}${result.signal ? `, ${result.signal}` : ''}): ${lastLines(result.stderr)}`,
      { details: { command: formatCommand(argv), exitCode: result.code, stderr: result.stderr } },
    );
  }
  return result;
}

/** A running process whose stdout is consumed as a stream (e.g. pg_dump into the repository). */
export interface StreamingProcess {
  stdout: Readable;
  stdin: Writable;
  /** Resolves when the process ends; rejects with a redacted error on non-zero exit. */
  done: Promise<ExecResult>;
  kill(signal?: NodeJS.Signals): void;
}

/** Where `stdbuf` was found (null: not installed), for the PATH it was looked up on. */
let stdbufLookup: { path: string; found: string | null } | undefined;

function findStdbuf(): string | null {
  const searched = process.env.PATH ?? '';
  if (stdbufLookup?.path === searched) return stdbufLookup.found;
  let found: string | null = null;
  for (const dir of searched.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, 'stdbuf'), constants.X_OK);
      found = join(dir, 'stdbuf');
      break;
    } catch {
      // not in this directory
    }
  }
  stdbufLookup = { path: searched, found };
  return found;
}

/** stdbuf's own exit when it cannot execute the command (coreutils: 127 not found, 126 not executable). */
function stdbufCouldNotRun(code: number | null, stderr: string): boolean {
  return (code === 126 || code === 127) && /^(\S*\/)?stdbuf: failed to run command/m.test(stderr);
}

/** Start a command whose stdout is read as a stream; stderr is captured (bounded) for errors. */
export function spawnStreaming(argv: readonly string[], opts: ExecOptions = {}): StreamingProcess {
  if (!argv[0]) throw new Error('spawnStreaming() needs a command');
  const stdbuf = opts.stdoutBuffer ? findStdbuf() : null;
  // stdbuf sets the buffer and then execs the command: the child's pid is the command's own.
  const [cmd, ...args] = stdbuf ? [stdbuf, `--output=${opts.stdoutBuffer}`, ...argv] : argv;
  const child = spawn(cmd as string, args, spawnOptions(opts));
  const err = new TailBuffer();
  let timedOut = false;
  const disarm = armTimeout(child, opts.timeoutMs, () => (timedOut = true));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  child.stdin?.on('error', () => {});
  const done = new Promise<ExecResult>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      disarm();
      reject(e.code === 'ENOENT' ? notFound(argv, e) : e);
    });
    child.on('close', (code, signal) => {
      disarm();
      const stderr = redact(err.toString()) + (timedOut ? `\n(timed out after ${opts.timeoutMs} ms)` : '');
      const result = { code: code ?? -1, signal, stdout: '', stderr };
      if (code === 0) resolve(result);
      else if (stdbuf && stdbufCouldNotRun(code, stderr))
        reject(notFound(argv, Object.assign(new Error(lastLines(stderr, 1)), { code: 'ENOENT' })));
      else
        reject(
          new OperationError(
            'E_EXEC_FAILED',
            `${formatCommand(argv)} failed (exit ${code ?? signal}): ${lastLines(stderr)}`,
            { details: { command: formatCommand(argv), exitCode: code, stderr } },
          ),
        );
    });
  });
  // Callers attach their own handlers; avoid an unhandled rejection if they only read stdout.
  done.catch(() => {});
  return {
    // With stdoutFd the output goes elsewhere: an empty stream here.
    stdout: child.stdout ?? Readable.from([]),
    stdin: child.stdin as Writable,
    done,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
  };
}

/** The last few lines of a tool's stderr, for one-line error messages. */
export function lastLines(text: string, n = 5): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.slice(-n).join(' | ') || '(no output)';
}
