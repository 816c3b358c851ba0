/**
 * Writes one file's content from the repository into an open file: every
 * chunk is loaded (and so verified) by repo.loadBlob, zero runs are skipped
 * to leave holes, and the whole file is hashed for comparison with the
 * recorded SHA-256. A few chunk loads run ahead of the writes.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Repo } from '../../repository/api.js';
import type { ContentRef } from '../../repository/tree.js';
import { zeroSlice } from './zeroRuns.js';

const LOAD_AHEAD = 4;

export interface WrittenContent {
  size: number;
  sha256: string;
}

/** Write `refs` into `fh` from offset 0 and set its length; returns what was written. */
export async function writeFileContent(
  repo: Repo,
  fh: FileHandle,
  refs: readonly ContentRef[],
  opts: { checkAbort?: () => void; onBytes?: (n: number) => void } = {},
): Promise<WrittenContent> {
  const hash = createHash('sha256');
  const loads: (Promise<Uint8Array> | undefined)[] = [];
  const start = (i: number): void => {
    const ref = refs[i];
    if (typeof ref !== 'string') return;
    const p = repo.loadBlob(ref);
    // Awaited below in order; a failure of a later load must not be an unhandled rejection meanwhile.
    p.catch(() => {});
    loads[i] = p;
  };
  for (let i = 0; i < Math.min(LOAD_AHEAD, refs.length); i++) start(i);
  let position = 0;
  for (let i = 0; i < refs.length; i++) {
    opts.checkAbort?.();
    if (i + LOAD_AHEAD < refs.length) start(i + LOAD_AHEAD);
    const ref = refs[i]!;
    if (typeof ref !== 'string') {
      // A hole: nothing is written, the file gets its length from truncate() below.
      for (let left = ref.zero; left > 0;) {
        const piece = zeroSlice(left);
        hash.update(piece);
        left -= piece.length;
      }
      position += ref.zero;
      continue;
    }
    const data = await loads[i]!;
    loads[i] = undefined;
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await fh.write(data, written, data.length - written, position + written);
      written += bytesWritten;
    }
    hash.update(data);
    position += data.length;
    opts.onBytes?.(data.length);
  }
  await fh.truncate(position);
  return { size: position, sha256: hash.digest('hex') };
}
