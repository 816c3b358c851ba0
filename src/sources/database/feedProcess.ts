/**
 * Feeding a stored dump into a restore tool's stdin (pg_restore, psql, mariadb)
 * and waiting for the tool. When the tool stops reading early (EPIPE) its own
 * exit status says why; any other failure of the source (a repository read,
 * an integrity error) kills the tool and wins, so a restore is never reported
 * as successful on partial input.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExecResult, StreamingProcess } from '../../platform/exec.js';

/** Pipe `source` into the process and wait for it; `toolError` maps the tool's failure. */
export async function feedProcess(
  source: Readable,
  proc: StreamingProcess,
  toolError: (err: unknown) => Error,
): Promise<ExecResult> {
  proc.stdout.resume();
  let feedError: unknown;
  await pipeline(source, proc.stdin).catch((err: unknown) => {
    if (
      (err as NodeJS.ErrnoException).code !== 'EPIPE' &&
      (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE'
    ) {
      feedError = err;
      proc.kill('SIGKILL');
    }
  });
  let result: ExecResult;
  try {
    result = await proc.done;
  } catch (err) {
    if (feedError !== undefined) throw feedError;
    throw toolError(err);
  }
  if (feedError !== undefined) throw feedError;
  return result;
}
