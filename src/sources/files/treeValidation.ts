/**
 * Checks applied to every tree node before restore touches the disk. The
 * repository's contents are not trusted: a hand-crafted or damaged tree must
 * end in a clear error entry, never in a write outside the target.
 */
import type { ContentRef, NodeType, TreeNode } from '../../repository/tree.js';
import { nameBytes, unsafeNameReason } from './names.js';

const TYPES: ReadonlySet<NodeType> = new Set([
  'file',
  'dir',
  'symlink',
  'fifo',
  'socket',
  'chardev',
  'blockdev',
]);

function validRef(ref: ContentRef): boolean {
  if (typeof ref === 'string') return ref.length > 0;
  return typeof ref === 'object' && ref !== null && Number.isSafeInteger(ref.zero) && ref.zero > 0;
}

/** Why `node` cannot be restored, or undefined when it is well-formed. Names are checked separately. */
export function nodeProblem(node: TreeNode): string | undefined {
  if (typeof node !== 'object' || node === null) return 'the entry is not an object';
  if (typeof node.name !== 'string') return 'the entry has no name';
  if (!TYPES.has(node.type)) return `unknown entry type ${JSON.stringify(node.type)}`;
  if (!Number.isInteger(node.mode) || node.mode < 0 || node.mode > 0o7777) return 'invalid mode';
  if (typeof node.mtimeNs !== 'string' || !/^-?\d{1,30}$/.test(node.mtimeNs))
    return 'invalid modification time';
  switch (node.type) {
    case 'file':
      if (!Number.isSafeInteger(node.size ?? 0) || (node.size ?? 0) < 0) return 'invalid file size';
      if (node.content !== undefined && (!Array.isArray(node.content) || !node.content.every(validRef))) {
        return 'invalid content list';
      }
      return undefined;
    case 'dir':
      return typeof node.subtree === 'string' && node.subtree !== ''
        ? undefined
        : 'directory without a subtree';
    case 'symlink':
      return typeof node.linkTarget === 'string' && node.linkTarget !== ''
        ? undefined
        : 'symlink without a target';
    default:
      return undefined;
  }
}

/** Why a node's name is unsafe to create, or undefined. */
export function nameProblem(node: TreeNode): string | undefined {
  return unsafeNameReason(nameBytes(node));
}

/** Keys (latin1 of the name bytes) of names that occur more than once among siblings. */
export function duplicateNames(nodes: readonly TreeNode[]): Set<string> {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const node of nodes) {
    if (typeof node?.name !== 'string') continue;
    const key = nameBytes(node).toString('latin1');
    if (seen.has(key)) dups.add(key);
    seen.add(key);
  }
  return dups;
}

/** The duplicate-detection key of a node's name. */
export function nameKey(node: TreeNode): string {
  return nameBytes(node).toString('latin1');
}
