/**
 * Canonical encoding of trees (docs/repository-format.md §10): nodes sorted
 * by the UTF-8 bytes of their names, fields in a fixed order, absent fields
 * omitted — identical directories give identical bytes, so they dedup.
 */
import { IntegrityError } from '../errors.js';
import { InvalidRepositoryInputError } from './errors.js';
import type { NodeType, Tree, TreeNode } from './tree.js';

const FIELD_ORDER = [
  'name',
  'nameRaw',
  'type',
  'mode',
  'uid',
  'gid',
  'user',
  'group',
  'mtimeNs',
  'size',
  'content',
  'subtree',
  'linkTarget',
  'linkTargetRaw',
  'rdev',
  'hardlinkKey',
  'xattrs',
  'sha256',
  'dataSha256',
] as const;
const KNOWN = new Set<string>(FIELD_ORDER);
const NODE_TYPES = new Set<NodeType>(['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev']);

/** Why a node name breaks the format's rules, if it does. */
export function invalidNodeName(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name === '.' || name === '..') return `is "${name}"`;
  if (name.includes('/')) return 'contains "/"';
  if (name.includes('\0')) return 'contains a NUL character';
  return undefined;
}

const byUtf8 = (a: TreeNode, b: TreeNode) =>
  Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8'));

/** A copy of `node` with fields in canonical order, absent fields dropped. */
function canonicalNode(node: TreeNode): Record<string, unknown> {
  const source = node as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of FIELD_ORDER) if (source[field] !== undefined) out[field] = source[field];
  for (const field of Object.keys(source).sort()) {
    if (!KNOWN.has(field) && source[field] !== undefined) out[field] = source[field];
  }
  return out;
}

/** Validate and encode a tree as canonical UTF-8 JSON. */
export function encodeTree(tree: Tree): Buffer {
  const nodes = [...tree.nodes].sort(byUtf8);
  for (const [i, node] of nodes.entries()) {
    const problem = invalidNodeName(node.name);
    if (problem)
      throw new InvalidRepositoryInputError(`tree entry name ${JSON.stringify(node.name)} ${problem}`);
    if (i > 0 && nodes[i - 1]!.name === node.name) {
      throw new InvalidRepositoryInputError(`tree has two entries named ${JSON.stringify(node.name)}`);
    }
    if (!NODE_TYPES.has(node.type))
      throw new InvalidRepositoryInputError(`tree entry ${node.name} has type ${node.type}`);
  }
  return Buffer.from(JSON.stringify({ nodes: nodes.map(canonicalNode) }), 'utf8');
}

/** Parse a tree blob, checking its structure; IntegrityError naming the blob otherwise. */
export function decodeTree(bytes: Uint8Array, id: string): Tree {
  const fail = (why: string) =>
    new IntegrityError(`tree ${id} is malformed: ${why}`, { details: { blob: id } });
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw fail('it is not JSON');
  }
  const nodes = (raw as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes)) throw fail('it has no nodes list');
  for (const n of nodes as unknown[]) {
    const node = n as Partial<TreeNode> | null;
    if (typeof node !== 'object' || node === null || typeof node.name !== 'string')
      throw fail('a node has no name');
    if (!NODE_TYPES.has(node.type as NodeType))
      throw fail(`node ${node.name} has unknown type ${String(node.type)}`);
    if (typeof node.mode !== 'number' || typeof node.mtimeNs !== 'string') {
      throw fail(`node ${node.name} lacks mode or mtimeNs`);
    }
    if (node.content !== undefined && !Array.isArray(node.content))
      throw fail(`node ${node.name} has invalid content`);
    if (node.subtree !== undefined && typeof node.subtree !== 'string')
      throw fail(`node ${node.name} has invalid subtree`);
  }
  return raw as Tree;
}
