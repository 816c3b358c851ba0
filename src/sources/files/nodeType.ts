import type { BigIntStats, Stats } from 'node:fs';
import type { NodeType } from '../../repository/tree.js';

/** The tree node type of a file system entry, from its lstat; undefined for a kind trees cannot hold. */
export function nodeTypeOf(st: Stats | BigIntStats): NodeType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return undefined;
}
