/**
 * Is a local restore point still the copy its repository snapshot was made
 * from ("intact", docs/snapshots-and-images.md § Local restore points)?
 *
 * The repository snapshot's tree is the reference: every entry it records is
 * looked up (lstat) at the same place in the local snapshot, and type,
 * permission bits, owner, size, mtime (to the nanosecond), symlink target and
 * device number must match. No entry may have changed (ctime) after the
 * backup ended either: nothing can change inside a read-only snapshot, so a
 * later ctime means someone made it writable and changed it, even if they
 * put size and mtime back. The snapshot's top directory is exempt from the
 * ctime rule because keeping the snapshot renames it, which sets its ctime.
 *
 * File content is not read here: a restore from the snapshot verifies every
 * chunk it reads against the chunk's keyed ID and takes the chunk from the
 * repository when it differs (localContent.ts), which covers all data, not a
 * sample. Entries of the snapshot that the tree does not record (excluded at
 * backup, or added later) are never copied, so they are not looked for.
 */
import type { BigIntStats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { InterruptedError, isErrnoException } from '../../errors.js';
import { monotonicMs } from '../../platform/clock.js';
import type { Repo } from '../../repository/api.js';
import type { BlobId, TreeNode } from '../../repository/tree.js';
import { joinRaw, nameBytes } from '../files/names.js';
import { nodeTypeOf } from '../files/nodeType.js';

/** Entries compared at once within one directory. */
const BATCH = 64;

export interface LocalTreeCheck {
  ok: boolean;
  /** The first difference found (absent when ok). */
  problem?: string;
  /** Entries compared. */
  entries: number;
  durationMs: number;
}

export interface LocalTreeCheckOptions {
  /** Directory where the local snapshot's files are. */
  root: string;
  /** The job's source as recorded in the tree (the path the snapshot stands for). */
  source: string;
  /** The job's `paths` (relative to the source); empty: the whole source was backed up. */
  paths: readonly string[];
  /** End of the backup (ms since the epoch): no entry may have a later ctime. */
  notChangedAfterMs: number;
  signal?: AbortSignal;
}

/** Where a tree directory is: on the way to the backed-up paths, or inside them (with its local path). */
type Place = { kind: 'prefix'; components: string[] } | { kind: 'inside'; local: Buffer; rel: string };

interface Frame {
  nodes: TreeNode[];
  next: number;
  place: Place;
}

const components = (path: string) => path.split('/').filter(Boolean);
const startsWith = (whole: string[], part: string[]) => part.every((c, i) => whole[i] === c);

/** Compare the local snapshot with the tree `treeId`; see the file comment. */
export async function checkLocalAgainstTree(
  repo: Pick<Repo, 'loadTree'>,
  treeId: BlobId,
  opts: LocalTreeCheckOptions,
): Promise<LocalTreeCheck> {
  const t0 = monotonicMs();
  const sourceParts = components(opts.source);
  const tops = opts.paths.length ? opts.paths.map((p) => [...sourceParts, ...components(p)]) : [sourceParts];
  // The recorded end is cut to the millisecond: allow the rest of that millisecond.
  const ctimeLimitNs = (BigInt(Math.floor(opts.notChangedAfterMs)) + 1n) * 1_000_000n;
  let entries = 0;
  const done = (problem?: string): LocalTreeCheck => ({
    ok: problem === undefined,
    ...(problem !== undefined ? { problem } : {}),
    entries,
    durationMs: monotonicMs() - t0,
  });

  /** The local path of a tree path that is at or below the source. */
  const localOf = (parts: string[]) => Buffer.from([opts.root, ...parts.slice(sourceParts.length)].join('/'));

  const compare = async (node: TreeNode, local: Buffer, rel: string, isRoot: boolean) => {
    entries++;
    return differs(node, local, rel, isRoot ? undefined : ctimeLimitNs);
  };

  const rootTree = await repo.loadTree(treeId);
  const rootPlace: Place = tops.some((t) => t.length === 0)
    ? { kind: 'inside', local: Buffer.from(opts.root), rel: '' }
    : { kind: 'prefix', components: [] };
  const stack: Frame[] = [{ nodes: rootTree.nodes, next: 0, place: rootPlace }];
  if (rootPlace.kind === 'inside') {
    const problem = await compareAll(rootTree.nodes, rootPlace, compare);
    if (problem) return done(problem);
  }
  while (stack.length > 0) {
    if (opts.signal?.aborted) throw new InterruptedError('abort');
    const frame = stack[stack.length - 1]!;
    const node = frame.nodes[frame.next++];
    if (node === undefined) {
      stack.pop();
      continue;
    }
    const place = frame.place;
    if (place.kind === 'inside') {
      // Compared with its siblings when the directory was entered; only descend.
      if (node.type !== 'dir' || !node.subtree) continue;
      const child: Place = {
        kind: 'inside',
        local: joinRaw(place.local, nameBytes(node)),
        rel: place.rel === '' ? node.name : `${place.rel}/${node.name}`,
      };
      const tree = await repo.loadTree(node.subtree);
      const problem = await compareAll(tree.nodes, child, compare);
      if (problem) return done(problem);
      stack.push({ nodes: tree.nodes, next: 0, place: child });
      continue;
    }
    const parts = [...place.components, node.name];
    if (tops.some((t) => t.length === parts.length && startsWith(t, parts))) {
      // A backed-up path: read from the snapshot at backup, so compared (the snapshot's top without ctime).
      const rel = parts.slice(sourceParts.length).join('/');
      const problem = await compare(node, localOf(parts), rel || '.', parts.length === sourceParts.length);
      if (problem) return done(problem);
      if (node.type === 'dir' && node.subtree) {
        const tree = await repo.loadTree(node.subtree);
        const inside: Place = { kind: 'inside', local: localOf(parts), rel };
        const inner = await compareAll(tree.nodes, inside, compare);
        if (inner) return done(inner);
        stack.push({ nodes: tree.nodes, next: 0, place: inside });
      }
    } else if (
      node.type === 'dir' &&
      node.subtree &&
      tops.some((t) => t.length > parts.length && startsWith(t, parts))
    ) {
      // A directory on the way (recorded from the live system at backup): not compared.
      stack.push({
        nodes: (await repo.loadTree(node.subtree)).nodes,
        next: 0,
        place: { kind: 'prefix', components: parts },
      });
    }
  }
  return done();
}

type Compare = (node: TreeNode, local: Buffer, rel: string, isRoot: boolean) => Promise<string | undefined>;

/** Compare the entries of one directory, a batch at a time; the first difference in tree order. */
async function compareAll(
  nodes: readonly TreeNode[],
  place: Extract<Place, { kind: 'inside' }>,
  compare: Compare,
): Promise<string | undefined> {
  for (let i = 0; i < nodes.length; i += BATCH) {
    const problems = await Promise.all(
      nodes.slice(i, i + BATCH).map((node) => {
        const rel = place.rel === '' ? node.name : `${place.rel}/${node.name}`;
        return compare(node, joinRaw(place.local, nameBytes(node)), rel, false);
      }),
    );
    const first = problems.find((p) => p !== undefined);
    if (first) return first;
  }
  return undefined;
}

/** How the local entry differs from its tree node, or undefined when it matches. */
async function differs(
  node: TreeNode,
  local: Buffer,
  rel: string,
  ctimeLimitNs: bigint | undefined,
): Promise<string | undefined> {
  let st: BigIntStats;
  try {
    st = await lstat(local, { bigint: true });
  } catch (err) {
    if (isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR'))
      return `${rel} is missing`;
    return `${rel} cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  }
  const type = nodeTypeOf(st) ?? 'unknown';
  if (type !== node.type) return `${rel} is a ${type}, the backup has a ${node.type}`;
  if (ctimeLimitNs !== undefined && st.ctimeNs > ctimeLimitNs) {
    return `${rel} was changed after the backup (ctime ${new Date(Number(st.ctimeMs)).toISOString()})`;
  }
  const mode = Number(st.mode & 0o7777n);
  if (mode !== node.mode)
    return `${rel} has mode ${mode.toString(8)}, the backup has ${node.mode.toString(8)}`;
  if (Number(st.uid) !== node.uid || Number(st.gid) !== node.gid)
    return `${rel} is owned by ${st.uid}:${st.gid}, the backup has ${node.uid}:${node.gid}`;
  if (node.type === 'file' && st.size !== BigInt(node.size ?? 0))
    return `${rel} has ${st.size} bytes, the backup has ${node.size ?? 0}`;
  if (st.mtimeNs.toString() !== node.mtimeNs)
    return `${rel} has another modification time than in the backup`;
  if (node.type === 'symlink') {
    const expected =
      node.linkTargetRaw !== undefined
        ? Buffer.from(node.linkTargetRaw, 'base64')
        : Buffer.from(node.linkTarget ?? '', 'utf8');
    const actual = await readlink(local, { encoding: 'buffer' });
    if (!actual.equals(expected)) return `${rel} points elsewhere than in the backup`;
  }
  if ((node.type === 'chardev' || node.type === 'blockdev') && Number(st.rdev) !== (node.rdev ?? 0))
    return `${rel} is another device than in the backup`;
  return undefined;
}
