/** Listing the contents of a files snapshot (`lifeboat ls SNAPSHOT [PATH]`). */
import type { Repo } from '../../repository/api.js';
import type { BlobId, NodeType, TreeNode } from '../../repository/tree.js';
import { SnapshotPathError } from './errors.js';

export interface LsEntry {
  /** Path in the snapshot, without a leading `/` (e.g. `srv/www/index.html`). */
  path: string;
  name: string;
  type: NodeType;
  mode: number;
  /** Files only: logical size in bytes. */
  size?: number;
  mtimeNs: string;
  /** ISO-8601 modification time (millisecond precision). */
  mtime: string;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  linkTarget?: string;
  hardlinkKey?: string;
}

export interface ListOptions {
  /** List everything below the path instead of only its direct entries. */
  recursive: boolean;
}

function entry(node: TreeNode, path: string): LsEntry {
  const e: LsEntry = {
    path,
    name: node.name,
    type: node.type,
    mode: node.mode,
    mtimeNs: node.mtimeNs,
    mtime: new Date(Number(BigInt(node.mtimeNs) / 1_000_000n)).toISOString(),
    uid: node.uid,
    gid: node.gid,
  };
  if (node.size !== undefined) e.size = node.size;
  if (node.user !== undefined) e.user = node.user;
  if (node.group !== undefined) e.group = node.group;
  if (node.linkTarget !== undefined) e.linkTarget = node.linkTarget;
  if (node.hardlinkKey !== undefined) e.hardlinkKey = node.hardlinkKey;
  return e;
}

/** Find the node at `path` (components separated by `/`); undefined path or `/` means the root. */
async function resolvePath(
  repo: Repo,
  treeId: BlobId,
  path: string,
): Promise<{ node?: TreeNode; tree: BlobId | undefined; prefix: string }> {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let tree: BlobId = treeId;
  let node: TreeNode | undefined;
  for (const [i, part] of parts.entries()) {
    const here = parts.slice(0, i + 1).join('/');
    const nodes = (await repo.loadTree(tree)).nodes;
    node = nodes.find((n) => n.name === part);
    if (!node) {
      throw new SnapshotPathError(`${here} does not exist in the snapshot`, {
        hint: 'List the snapshot without a path to see what it contains (paths have no leading /).',
      });
    }
    if (i < parts.length - 1) {
      if (node.type !== 'dir' || !node.subtree)
        throw new SnapshotPathError(`${here} in the snapshot is not a directory`);
      tree = node.subtree;
    }
  }
  const prefix = parts.join('/');
  if (node === undefined) return { tree: treeId, prefix };
  return { node, tree: node.type === 'dir' ? node.subtree : undefined, prefix };
}

/** Entries of a snapshot tree at `path` (all of them below it with `recursive`), depth first, sorted. */
export async function* listTree(
  repo: Repo,
  treeId: BlobId,
  path = '',
  opts: ListOptions = { recursive: false },
): AsyncGenerator<LsEntry> {
  const start = await resolvePath(repo, treeId, path);
  if (start.node && start.node.type !== 'dir') {
    yield entry(start.node, start.prefix);
    return;
  }
  if (!start.tree) return;
  // Explicit stack: arbitrarily deep trees must not grow the call stack.
  const stack: { prefix: string; nodes: TreeNode[]; next: number }[] = [
    { prefix: start.prefix, nodes: (await repo.loadTree(start.tree)).nodes, next: 0 },
  ];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const node = frame.nodes[frame.next++];
    if (node === undefined) {
      stack.pop();
      continue;
    }
    const p = frame.prefix === '' ? node.name : `${frame.prefix}/${node.name}`;
    yield entry(node, p);
    if (opts.recursive && node.type === 'dir' && node.subtree) {
      stack.push({ prefix: p, nodes: (await repo.loadTree(node.subtree)).nodes, next: 0 });
    }
  }
}
