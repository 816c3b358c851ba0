/**
 * The job's own checks of a restored copy (`drill.assertions`): SQL whose first value must
 * equal `expect` (default true), run against the scratch database, and commands (argv, no
 * shell) that must exit 0, run with the scratch environment in their environment. Inherited
 * PG* and MYSQL_* variables are removed first, so an assertion can never reach production
 * by accident.
 */
import type { DrillAssertion } from '../config/schema.js';
import { registerCleanup } from '../platform/cleanup.js';
import { monotonicMs } from '../platform/clock.js';
import { formatCommand, lastLines, spawnStreaming, TailBuffer } from '../platform/exec.js';
import { redact } from '../platform/redact.js';
import type { DrillStep } from './drillModel.js';

/** What assertions see of the scratch environment. */
export interface AssertionContext {
  /** Working directory of commands: the restored data (or the mount of an image). */
  cwd: string;
  /** Variables describing the scratch environment (LIFEBOAT_DRILL_DIR, PGHOST …). */
  env: Record<string, string>;
  /** Scratch databases (database jobs). */
  database?: {
    /** Databases of the snapshot (source names). */
    sources: string[];
    /** Scratch name of a source database. */
    scratchName(source: string): Promise<string>;
    queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown>;
    /** Client variables (PGDATABASE …) for a scratch database. */
    clientEnv(database: string): Record<string, string>;
  };
}

/** True when a value from the database equals what the assertion expects. */
export function matchesExpectation(actual: unknown, expected: boolean | number | string): boolean {
  if (actual === null || actual === undefined) return false;
  const value = Buffer.isBuffer(actual) ? actual.toString('utf8') : actual;
  if (typeof expected === 'boolean') {
    const text = String(value).trim().toLowerCase();
    if (typeof value === 'boolean') return value === expected;
    if (['t', 'true', '1', 'yes', 'on'].includes(text)) return expected;
    if (['f', 'false', '0', 'no', 'off'].includes(text)) return !expected;
    return false;
  }
  if (typeof expected === 'number') {
    const n = typeof value === 'bigint' ? Number(value) : Number(String(value).trim());
    return Number.isFinite(n) && n === expected;
  }
  return String(value) === expected;
}

/** A value for messages. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'no row';
  if (v === null) return 'NULL';
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString('utf8'));
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function shorten(text: string, n = 70): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/** The step name of assertion `i`. */
export function assertionName(a: DrillAssertion, i: number): string {
  return a.type === 'sql'
    ? `assertion ${i + 1}: sql ${shorten(a.sql)}`
    : `assertion ${i + 1}: command ${shorten(formatCommand(a.command))}`;
}

/** The inherited environment without variables that point client tools at other servers. */
export function assertionBaseEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^PG[A-Z]/.test(k) || /^MYSQL_/.test(k) || k === 'DATABASE_URL' || k.startsWith('LIFEBOAT_'))
      continue;
    out[k] = v;
  }
  return out;
}

async function sqlAssertion(
  a: Extract<DrillAssertion, { type: 'sql' }>,
  ctx: AssertionContext,
  timeoutMs: number,
): Promise<Omit<DrillStep, 'name' | 'durationMs'>> {
  const db = ctx.database;
  if (!db) return { status: 'fail', message: 'sql assertions need a database job' };
  let source = a.database;
  if (source === undefined) {
    if (db.sources.length !== 1) {
      return {
        status: 'fail',
        message: `the snapshot holds ${db.sources.length} databases (${db.sources.join(', ')}); name one with database:`,
      };
    }
    source = db.sources[0]!;
  } else if (!db.sources.includes(source)) {
    return {
      status: 'fail',
      message: `the snapshot has no database ${source} (it holds ${db.sources.join(', ') || 'none'})`,
    };
  }
  const name = await db.scratchName(source);
  try {
    const actual = await db.queryValue(name, a.sql, timeoutMs);
    const ok = matchesExpectation(actual, a.expect);
    return {
      status: ok ? 'pass' : 'fail',
      message: ok
        ? `returned ${showValue(actual)} in ${source}`
        : `expected ${showValue(a.expect)}, got ${showValue(actual)} in ${source}`,
      expected: showValue(a.expect),
      actual: showValue(actual),
    };
  } catch (err) {
    return { status: 'fail', message: `query failed in ${source}: ${redact((err as Error).message)}` };
  }
}

async function commandAssertion(
  a: Extract<DrillAssertion, { type: 'command' }>,
  ctx: AssertionContext,
  baseEnv: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Omit<DrillStep, 'name' | 'durationMs'>> {
  let dbEnv: Record<string, string> = {};
  const db = ctx.database;
  if (db && db.sources.length === 1) dbEnv = db.clientEnv(await db.scratchName(db.sources[0]!));
  const env = { ...assertionBaseEnv(baseEnv), ...ctx.env, ...dbEnv };
  let proc;
  try {
    proc = spawnStreaming(a.command, { cwd: ctx.cwd, env, timeoutMs });
  } catch (err) {
    return { status: 'fail', message: `cannot run ${formatCommand(a.command)}: ${(err as Error).message}` };
  }
  // An interrupted drill must not leave the command running in the scratch environment.
  const unregister = registerCleanup(`drill assertion ${formatCommand(a.command)}`, () =>
    proc.kill('SIGKILL'),
  );
  const out = new TailBuffer(16 * 1024);
  proc.stdout.on('data', (c: Buffer) => out.push(c));
  try {
    await proc.done;
    return { status: 'pass', message: 'exited 0', expected: 'exit 0', actual: 'exit 0' };
  } catch (err) {
    const e = err as {
      details?: { exitCode?: number | null; stderr?: string };
      message: string;
      code?: string;
    };
    if (e.code === 'E_EXEC_NOT_FOUND') return { status: 'fail', message: redact(e.message) };
    const code = e.details?.exitCode;
    const output = lastLines(`${out.toString()}\n${e.details?.stderr ?? ''}`, 3);
    return {
      status: 'fail',
      message: `exited ${code ?? 'by a signal'}${/timed out/.test(e.details?.stderr ?? '') ? ' (timed out)' : ''}: ${redact(output)}`,
      expected: 'exit 0',
      actual: `exit ${code ?? 'signal'}`,
    };
  } finally {
    unregister();
  }
}

/** Run the assertions in order; each becomes a step. `deadline` (monotonic ms) bounds them all. */
export async function runAssertions(
  assertions: readonly DrillAssertion[],
  ctx: AssertionContext,
  baseEnv: NodeJS.ProcessEnv,
  deadline: number,
  signal?: AbortSignal,
): Promise<DrillStep[]> {
  const steps: DrillStep[] = [];
  for (const [i, a] of assertions.entries()) {
    const name = assertionName(a, i);
    const left = deadline - monotonicMs();
    if (signal?.aborted || left <= 0) {
      steps.push({
        name,
        status: 'skip',
        message: signal?.aborted ? 'interrupted' : 'the drill timed out',
        durationMs: 0,
      });
      continue;
    }
    const timeoutMs = Math.max(1, Math.min(a.timeout, left));
    const t0 = monotonicMs();
    const r =
      a.type === 'sql'
        ? await sqlAssertion(a, ctx, timeoutMs)
        : await commandAssertion(a, ctx, baseEnv, timeoutMs);
    steps.push({ name, ...r, durationMs: monotonicMs() - t0 });
  }
  return steps;
}
