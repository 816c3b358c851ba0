/**
 * The hash a files job records of each regular file's content, checked when
 * the file is restored, compared (overwrite if-changed) or verified by a drill
 * (docs/repository-format.md §10). A tree node carries one of two kinds:
 * - `sha256`: the SHA-256 of the whole content, zero runs included;
 * - `dataSha256`: the SHA-256 of the content's data chunks alone, in order,
 *   the bytes under its `{ zero: n }` runs left out. The node's content list,
 *   in the same authenticated tree, says where those runs are, so the two
 *   together still pin every byte of the file; but a sparse file's holes are
 *   hashed neither at backup nor at restore (a 1 GiB disk image holding
 *   400 MiB of data would otherwise hash 600 MiB of zeros both times).
 * For content without zero runs the two are the same hash, and writers then
 * record `sha256`, which readers older than `dataSha256` check too.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { ContentRef, TreeNode } from '../../repository/tree.js';
import { isZeroRange } from './zeroRuns.js';

export interface ContentDigest {
  /** Hex SHA-256. */
  hex: string;
  /** True: the bytes under the content's zero runs are not in the hash (recorded as `dataSha256`). */
  dataOnly: boolean;
}

/** The digest a tree node records, if any. */
export function recordedDigest(node: Pick<TreeNode, 'sha256' | 'dataSha256'>): ContentDigest | undefined {
  if (node.sha256 !== undefined) return { hex: node.sha256, dataOnly: false };
  if (node.dataSha256 !== undefined) return { hex: node.dataSha256, dataOnly: true };
  return undefined;
}

/** The tree node field that records `digest`. */
export function digestField(digest: ContentDigest): { sha256: string } | { dataSha256: string } {
  return digest.dataOnly ? { dataSha256: digest.hex } : { sha256: digest.hex };
}

const READ_SIZE = 1024 * 1024;

/** Plaintext length of a data chunk, from the repository's index (undefined when not there). */
export type ChunkLength = (id: string) => number | undefined;

/**
 * Hash the file at `path` the way `digest` was taken of `content`. For a
 * data-only digest the bytes under the zero runs are not hashed but must be
 * zeros (their offsets come from the chunks' lengths in the index): when they
 * are not, or a chunk's length is unknown, the result says so (and so never
 * equals a digest). A file of another size simply hashes differently.
 */
export async function hashFileLike(
  path: Buffer | string,
  content: readonly ContentRef[],
  digest: ContentDigest,
  lengthOf: ChunkLength,
  flags: number,
): Promise<string> {
  const zeroRuns = digest.dataOnly ? zeroRunsOf(content, lengthOf) : [];
  if (typeof zeroRuns === 'string') return zeroRuns;
  const fh = await open(path, flags);
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(READ_SIZE);
    let run = 0;
    let position = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, position);
      if (bytesRead === 0) break;
      const end = position + bytesRead;
      let at = position; // the bytes of buf before `at` are done
      while (at < end) {
        while (run < zeroRuns.length && zeroRuns[run]!.end <= at) run++;
        const zero = zeroRuns[run];
        if (!zero || zero.start >= end) {
          hash.update(buf.subarray(at - position, bytesRead));
          break;
        }
        if (zero.start > at) {
          hash.update(buf.subarray(at - position, zero.start - position));
          at = zero.start;
        }
        const zeroEnd = Math.min(zero.end, end);
        if (!isZeroRange(buf, at - position, zeroEnd - position)) {
          return `data where the snapshot has a run of zeros (bytes ${zero.start}-${zero.end})`;
        }
        at = zeroEnd;
      }
      position = end;
    }
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/** File offsets [start, end) of the zero runs of `content`, or why they cannot be known. */
function zeroRunsOf(
  content: readonly ContentRef[],
  lengthOf: ChunkLength,
): { start: number; end: number }[] | string {
  const runs: { start: number; end: number }[] = [];
  let offset = 0;
  for (const ref of content) {
    if (typeof ref === 'string') {
      const length = lengthOf(ref);
      if (length === undefined) return `chunk ${ref} is not in the repository's index`;
      offset += length;
    } else {
      runs.push({ start: offset, end: offset + ref.zero });
      offset += ref.zero;
    }
  }
  return runs;
}
