/**
 * File names as bytes. Linux names are arbitrary bytes except `/` and NUL, so
 * the walker and restore work on Buffer paths; trees carry a readable `name`
 * plus the exact bytes (`nameRaw`, base64) when the name is not valid UTF-8.
 */
import type { TreeNode } from '../../repository/tree.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const SLASH = Buffer.from('/');

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  const cont = (j: number, lo = 0x80, hi = 0xbf) => j < b.length && b[j]! >= lo && b[j]! <= hi;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    // No overlong forms (E0 80..9F) and no surrogates (ED A0..BF).
    const ok = cont(i + 1, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf) && cont(i + 2);
    return ok ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const ok = cont(i + 1, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf) && cont(i + 2) && cont(i + 3);
    return ok ? 4 : 0;
  }
  return 0;
}

/** Readable text for bytes that are not valid UTF-8: valid parts as they are, other bytes as `\xNN`. */
export function escapeInvalidUtf8(raw: Buffer): string {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const n = utf8SequenceLength(raw, i);
    if (n === 0) {
      out += `\\x${raw[i]!.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += raw.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/**
 * The tree fields for a name read from disk: the name itself when it is valid
 * UTF-8, else a readable escaped form plus the exact bytes in `nameRaw`.
 */
export function decodeName(raw: Buffer): { name: string; nameRaw?: string } {
  try {
    return { name: strictUtf8.decode(raw) };
  } catch {
    return { name: escapeInvalidUtf8(raw), nameRaw: raw.toString('base64') };
  }
}

/**
 * Make display names unique among siblings: the repository requires unique
 * `name`s, and an escaped name could equal a real sibling's name. Only nodes
 * carrying `nameRaw` are renamed (with a `~N` suffix); their bytes are kept.
 */
export function uniqueDisplayNames(nodes: TreeNode[]): void {
  const taken = new Set(nodes.filter((n) => n.nameRaw === undefined).map((n) => n.name));
  for (const node of nodes) {
    if (node.nameRaw === undefined) continue;
    let name = node.name;
    for (let k = 1; taken.has(name); k++) name = `${node.name}~${k}`;
    node.name = name;
    taken.add(name);
  }
}

/** The exact bytes of a node's name. */
export function nameBytes(node: Pick<TreeNode, 'name' | 'nameRaw'>): Buffer {
  return node.nameRaw !== undefined ? Buffer.from(node.nameRaw, 'base64') : Buffer.from(node.name, 'utf8');
}

/** `dir/name` as bytes, without doubling the slash of `/`. */
export function joinRaw(dir: Buffer, name: Buffer): Buffer {
  return dir.length > 0 && dir[dir.length - 1] === 0x2f
    ? Buffer.concat([dir, name])
    : Buffer.concat([dir, SLASH, name]);
}

/** A byte path as text for messages and cache keys (lossy for invalid UTF-8). */
export function showPath(raw: Buffer): string {
  return raw.toString('utf8');
}

/** True when the bytes decode as UTF-8 without loss (so they can be passed to external tools). */
export function isUtf8(raw: Buffer): boolean {
  try {
    strictUtf8.decode(raw);
    return true;
  } catch {
    return false;
  }
}

/** Why a name may not be created on restore, or undefined when it is safe. */
export function unsafeNameReason(raw: Buffer): string | undefined {
  if (raw.length === 0) return 'the name is empty';
  if (raw.equals(Buffer.from('.')) || raw.equals(Buffer.from('..'))) return `the name is "${raw.toString()}"`;
  if (raw.includes(0x2f)) return 'the name contains "/"';
  if (raw.includes(0)) return 'the name contains a NUL byte';
  return undefined;
}
