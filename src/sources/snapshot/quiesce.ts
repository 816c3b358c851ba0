/**
 * The snapshot moment and what surrounds it: `before` commands, the
 * database quiesce callback, fsfreeze, the snapshot itself, then unfreeze,
 * database release and `after` commands. Everything that was started is
 * undone, also on failure and on SIGINT/SIGTERM (via registerCleanup).
 */
import { OperationError } from '../../errors.js';
import { registerCleanup } from '../../platform/cleanup.js';
import { formatCommand, runChecked } from '../../platform/exec.js';
import type { Logger } from '../../platform/logger.js';
import type { DatabaseQuiesce, QuiesceSpec } from './types.js';

const DEFAULT_HOOK_TIMEOUT_MS = 60_000;

export interface QuiesceContext {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

async function hook(
  kind: 'before' | 'after',
  argv: string[],
  q: QuiesceSpec,
  ctx: QuiesceContext,
): Promise<void> {
  if (argv.length === 0) throw new OperationError('E_QUIESCE_HOOK', `quiesce.${kind} holds an empty command`);
  ctx.logger.debug(`quiesce ${kind}: ${formatCommand(argv)}`);
  try {
    await runChecked(argv, { env: ctx.env, timeoutMs: q.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new OperationError('E_QUIESCE_HOOK', `quiesce ${kind}-command failed: ${why}`, {
      hint: `Run ${formatCommand(argv)} by hand to see why; it runs ${kind} the snapshot is taken.`,
      cause: err,
    });
  }
}

async function unfreeze(path: string, ctx: QuiesceContext): Promise<void> {
  let last: unknown;
  // Retried: a filesystem left frozen blocks every writer on the machine.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await runChecked(['fsfreeze', '--unfreeze', path], { env: ctx.env, timeoutMs: 30_000 });
      return;
    } catch (err) {
      last = err;
    }
  }
  throw new OperationError('E_UNFREEZE_FAILED', `could not unfreeze ${path}: ${String(last)}`, {
    hint: `Run fsfreeze --unfreeze ${path} now: writes to it are blocked until then.`,
    cause: last,
  });
}

async function frozen<T>(path: string, ctx: QuiesceContext, take: () => Promise<T>): Promise<T> {
  await runChecked(['fsfreeze', '--freeze', path], { env: ctx.env, timeoutMs: 60_000 });
  const unregister = registerCleanup(`unfreeze ${path}`, () => unfreeze(path, ctx));
  try {
    return await take();
  } finally {
    await unfreeze(path, ctx);
    unregister();
  }
}

async function underDatabaseQuiesce<T>(db: DatabaseQuiesce, take: () => Promise<T>): Promise<T> {
  let calls = 0;
  const result = await db(async () => {
    if (++calls > 1)
      throw new OperationError('E_QUIESCE_DATABASE', 'the database quiesce callback took the snapshot twice');
    return take();
  });
  if (calls === 0) {
    throw new OperationError(
      'E_QUIESCE_DATABASE',
      'the database quiesce callback returned without taking the snapshot',
    );
  }
  return result;
}

/**
 * Run `take` (the snapshot) at a quiesced moment. `freezePath` is the
 * mounted source to fsfreeze when `q.fsfreeze` is set.
 */
export async function atQuiescedMoment<T>(
  q: QuiesceSpec | undefined,
  freezePath: string,
  ctx: QuiesceContext,
  take: () => Promise<T>,
): Promise<T> {
  if (!q) return take();
  const after = q.after ?? [];
  let afterDone = false;
  const runAfter = async () => {
    if (afterDone) return;
    afterDone = true;
    let first: unknown;
    for (const argv of after) {
      try {
        await hook('after', argv, q, ctx);
      } catch (err) {
        ctx.logger.error(err instanceof Error ? err.message : String(err));
        first ??= err;
      }
    }
    if (first) throw first;
  };
  const unregister = after.length > 0 ? registerCleanup('quiesce after-commands', runAfter) : () => {};
  let value: T;
  try {
    for (const argv of q.before ?? []) await hook('before', argv, q, ctx);
    const snap = q.fsfreeze ? () => frozen(freezePath, ctx, take) : take;
    value = q.database ? await underDatabaseQuiesce(q.database, snap) : await snap();
  } catch (err) {
    // The snapshot failed: still resume what `before` paused, but report the first failure.
    await runAfter().catch(() => undefined);
    unregister();
    throw err;
  }
  try {
    await runAfter();
  } finally {
    unregister();
  }
  return value;
}
