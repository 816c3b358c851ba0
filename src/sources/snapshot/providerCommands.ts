/** Running provider tools (btrfs, lvcreate, zfs, mount …) with the job's environment and a timeout. */
import { formatCommand, run, runChecked, type ExecResult } from '../../platform/exec.js';
import type { ProviderContext } from './types.js';

const DEFAULT_TIMEOUT_MS = 120_000;

/** Run a tool; fails with its stderr on a non-zero exit. */
export function tool(ctx: ProviderContext, argv: string[]): Promise<ExecResult> {
  ctx.logger.debug(`$ ${formatCommand(argv)}`);
  return runChecked(argv, { env: ctx.env, timeoutMs: ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS });
}

/** Run a tool whose non-zero exit is an answer (e.g. "no such volume"), not a failure. */
export function probe(ctx: ProviderContext, argv: string[]): Promise<ExecResult> {
  ctx.logger.debug(`$ ${formatCommand(argv)}`);
  return run(argv, { env: ctx.env, timeoutMs: ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS });
}
