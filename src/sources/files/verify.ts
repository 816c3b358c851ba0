/**
 * Compares a restored directory with the snapshot tree it came from: drills
 * use it to prove a restore is complete and correct. Content is compared by
 * hashing every file against the digest recorded at backup time (contentDigest.ts).
 */
import { constants as fsConstants, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { InterruptedError, isErrnoException } from '../../errors.js';
import type { Repo } from '../../repository/api.js';
import type { BlobId, TreeNode } from '../../repository/tree.js';
import { hashFileLike, recordedDigest, type ChunkLength } from './contentDigest.js';
import { joinRaw, nameBytes, showPath } from './names.js';
import { nodeTypeOf } from './nodeType.js';

export type MismatchKind =
  'missing' | 'extra' | 'type' | 'size' | 'content' | 'symlink-target' | 'device' | 'unreadable';

export interface TreeMismatch {
  /** Path in the snapshot (relative to the restore target). */
  path: string;
  kind: MismatchKind;
  expected?: string;
  actual?: string;
}

export interface VerifyOptions {
  signal?: AbortSignal;
}

const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

interface Frame {
  abs: Buffer;
  rel: string;
  nodes: TreeNode[];
  next: number;
  /** Names present on disk not (yet) matched by a node; left over at the end: extra. */
  onDisk: Map<string, Buffer>;
}

/** List the differences between the restored directory `dir` and the tree `treeId`. */
export async function verifyRestoredTree(
  repo: Repo,
  treeId: BlobId,
  dir: string,
  opts: VerifyOptions = {},
): Promise<TreeMismatch[]> {
  const mismatches: TreeMismatch[] = [];
  const lengthOf: ChunkLength = (id) => repo.blobLength?.(id);
  const openFrame = async (abs: Buffer, rel: string, subtree: BlobId): Promise<Frame | undefined> => {
    let names: Buffer[];
    try {
      names = await readdir(abs, { encoding: 'buffer' });
    } catch (err) {
      mismatches.push({ path: rel || '.', kind: 'unreadable', actual: String(err) });
      return undefined;
    }
    const tree = await repo.loadTree(subtree);
    return {
      abs,
      rel,
      nodes: tree.nodes,
      next: 0,
      onDisk: new Map(names.map((n) => [n.toString('latin1'), n])),
    };
  };
  const root = await openFrame(Buffer.from(dir), '', treeId);
  const stack: Frame[] = root ? [root] : [];
  while (stack.length > 0) {
    if (opts.signal?.aborted) throw new InterruptedError('abort');
    const frame = stack[stack.length - 1]!;
    const node = frame.nodes[frame.next];
    if (node === undefined) {
      stack.pop();
      for (const name of frame.onDisk.values()) {
        const shown = showPath(name);
        mismatches.push({ path: frame.rel === '' ? shown : `${frame.rel}/${shown}`, kind: 'extra' });
      }
      continue;
    }
    frame.next++;
    const raw = nameBytes(node);
    const rel = frame.rel === '' ? node.name : `${frame.rel}/${node.name}`;
    frame.onDisk.delete(raw.toString('latin1'));
    if (node.type === 'socket') continue; // never restored
    const abs = joinRaw(frame.abs, raw);
    let st: Stats;
    try {
      st = await lstat(abs);
    } catch (err) {
      const missing = isErrnoException(err) && err.code === 'ENOENT';
      mismatches.push({
        path: rel,
        kind: missing ? 'missing' : 'unreadable',
        ...(missing ? {} : { actual: String(err) }),
      });
      continue;
    }
    const actualType = nodeTypeOf(st) ?? 'unknown';
    if (actualType !== node.type) {
      mismatches.push({ path: rel, kind: 'type', expected: node.type, actual: actualType });
      continue;
    }
    const problem = await compareEntry(node, abs, st, lengthOf);
    if (problem) mismatches.push({ path: rel, ...problem });
    if (node.type === 'dir' && node.subtree) {
      const child = await openFrame(abs, rel, node.subtree);
      if (child) stack.push(child);
    }
  }
  return mismatches;
}

async function compareEntry(
  node: TreeNode,
  abs: Buffer,
  st: Stats,
  lengthOf: ChunkLength,
): Promise<Omit<TreeMismatch, 'path'> | undefined> {
  switch (node.type) {
    case 'file': {
      if (st.size !== (node.size ?? 0)) {
        return { kind: 'size', expected: String(node.size ?? 0), actual: String(st.size) };
      }
      const digest = recordedDigest(node);
      if (digest === undefined) return undefined;
      let actual: string;
      try {
        actual = await hashFileLike(abs, node.content ?? [], digest, lengthOf, READ_FLAGS);
      } catch (err) {
        return { kind: 'unreadable', actual: String(err) };
      }
      return actual === digest.hex ? undefined : { kind: 'content', expected: digest.hex, actual };
    }
    case 'symlink': {
      const expected =
        node.linkTargetRaw !== undefined
          ? Buffer.from(node.linkTargetRaw, 'base64')
          : Buffer.from(node.linkTarget ?? '');
      const actual = await readlink(abs, { encoding: 'buffer' });
      return actual.equals(expected)
        ? undefined
        : { kind: 'symlink-target', expected: expected.toString('utf8'), actual: actual.toString('utf8') };
    }
    case 'chardev':
    case 'blockdev':
      return st.rdev === (node.rdev ?? 0)
        ? undefined
        : { kind: 'device', expected: String(node.rdev ?? 0), actual: String(st.rdev) };
    default:
      return undefined;
  }
}
