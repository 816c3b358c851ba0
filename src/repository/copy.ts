/**
 * Copy restore points from one repository into another (`lifeboat copy`).
 *
 * The two repositories have different keys, so nothing can be copied as
 * stored: blob IDs are keyed with each repository's HMAC key and trees name
 * their children by those IDs. A copy therefore reads each blob's plaintext
 * from the source, computes its ID under the target's key, stores it in the
 * target only when the target lacks it (compressed and encrypted with the
 * target's keys), and rewrites every tree with the target's IDs. Chunk
 * boundaries stay the source's; that is fine, a blob is a blob.
 *
 * Order is the one of every writer (docs/repository-format.md §13): the
 * target's packs, then its index files (both inside Repo.saveBlob/flush),
 * then the snapshot object as the commit point (Repo.saveSnapshot). A copy
 * interrupted at any point leaves only packs and index files no snapshot
 * refers to; running it again reuses what was indexed.
 *
 * Work saved on later copies: a snapshot already copied (same job, host,
 * kind and times) is skipped. A new snapshot is translated alongside the
 * newest earlier pair (source snapshot, its copy): a subtree whose source ID
 * equals the earlier one's is the earlier copy's subtree, and a file whose
 * content list is the earlier one's gets the earlier copy's list — neither
 * is read again. Only what changed is read from the source.
 *
 * Memory is bounded: trees are handled one directory at a time along the
 * current path, at most `concurrency` blobs are being read at once, at most
 * MAX_PENDING data blobs are queued, the target's own byte budget bounds
 * what waits for packing, and the ID caches have a fixed size.
 */
import type { Repo, SnapshotEntry, SnapshotRecord } from './api.js';
import type { BlobId, ContentRef, Tree, TreeNode } from './tree.js';
import { encodeTree } from './trees.js';

/** Where a copied snapshot came from (recorded in SnapshotRecord.copiedFrom). */
export interface CopySource {
  /** Repository ID (config `id`) of the source. */
  repository: string;
  /** Snapshot ID in the source. */
  snapshot: string;
}

/** Progress of one snapshot's copy. */
export interface CopyProgress {
  /** Source snapshot being copied. */
  snapshot: string;
  job: string;
  /** Data blobs read from the source so far. */
  blobsRead: number;
  /** Plaintext bytes read from the source so far. */
  bytesRead: number;
  /** Blobs the target lacked and received. */
  newBlobs: number;
  newBytes: number;
  /** Logical size of the snapshot (what a restore writes), for an estimate. */
  totalBytes: number;
}

/** What copying one snapshot did. */
export interface SnapshotCopyStats {
  /** Data blobs read from the source (plaintext needed to compute the target's ID). */
  blobsRead: number;
  bytesRead: number;
  /** Blobs (data and tree) the target did not have and now has. */
  newBlobs: number;
  /** Plaintext bytes of those blobs. */
  newBytes: number;
  /** Trees read from the source. */
  treesRead: number;
  /** Subtrees taken over from an earlier copy without reading them. */
  treesReused: number;
}

export interface SnapshotCopyResult {
  sourceId: string;
  targetId: string;
  /** Root tree of the copy (the target's blob ID). */
  targetTree: string;
  job: string;
  startedAt: string;
  stats: SnapshotCopyStats;
}

export interface CopierOptions {
  /** Identity of the source repository, recorded in every copied snapshot. */
  sourceRepositoryId: string;
  /** Identity of the target repository, to recognise snapshots copied the other way. */
  targetRepositoryId: string;
  /** Blob reads from the source in flight at once (default 8). */
  concurrency?: number;
  onProgress?: (p: CopyProgress) => void;
  signal?: AbortSignal;
}

/** Data blobs queued for reading before the tree walk waits (bounds memory of queued work). */
const MAX_PENDING = 256;
/** Entries of each ID cache (source ID → target ID); about 150 bytes each. */
const CACHE_ENTRIES = 100_000;

/**
 * The identity of a restore point across repositories: snapshot IDs differ
 * (they are hashes of objects sealed with each repository's key), but a copy
 * keeps job, kind, host and the run's start and end.
 */
export function restorePointKey(
  s: Pick<SnapshotRecord, 'job' | 'kind' | 'host' | 'startedAt' | 'endedAt'>,
): string {
  return JSON.stringify([s.job, s.kind, s.host, s.startedAt, s.endedAt]);
}

/** Which source snapshots the target lacks, and the target's copy of each one it has. */
export function planCopies(
  source: readonly SnapshotEntry[],
  target: readonly SnapshotEntry[],
): { missing: SnapshotEntry[]; present: Map<string, SnapshotEntry> } {
  const byKey = new Map<string, SnapshotEntry>();
  const bySource = new Map<string, SnapshotEntry>();
  for (const t of target) {
    byKey.set(restorePointKey(t), t);
    if (t.copiedFrom) bySource.set(t.copiedFrom.snapshot, t);
  }
  const missing: SnapshotEntry[] = [];
  const present = new Map<string, SnapshotEntry>();
  for (const s of source) {
    const copy = bySource.get(s.id) ?? byKey.get(restorePointKey(s));
    if (copy) present.set(s.id, copy);
    else missing.push(s);
  }
  missing.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
  return { missing, present };
}

/** A Map that forgets its oldest entries beyond a fixed size. */
class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(key: K): V | undefined {
    return this.map.get(key);
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }
}

/** At most `size` tasks at once. */
class Limiter {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    while (this.active >= this.size) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiters.shift()?.();
    }
  }
}

/** A source tree and the target tree it was copied to (both loaded), for reuse. */
interface HintPair {
  source: Tree;
  target: Tree;
}

/**
 * Copies snapshots from `source` into `target`. One copier per run: its
 * caches carry over from one snapshot to the next. The caller holds locks
 * on both repositories and closes them.
 */
export class SnapshotCopier {
  private readonly trees = new BoundedMap<BlobId, BlobId>(CACHE_ENTRIES);
  private readonly data = new BoundedMap<BlobId, BlobId>(CACHE_ENTRIES);
  private readonly limiter: Limiter;
  /** Data copies queued or running (for backpressure), and by source ID (so each is read once). */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly inflight = new Map<BlobId, Promise<BlobId>>();
  private stats: SnapshotCopyStats = emptyStats();
  private current: { snapshot: SnapshotEntry } | undefined;

  constructor(
    private readonly source: Repo,
    private readonly target: Repo,
    private readonly opts: CopierOptions,
  ) {
    this.limiter = new Limiter(Math.max(1, opts.concurrency ?? 8));
  }

  /**
   * Copy one snapshot; returns the target's snapshot ID. `earlier` is an
   * earlier snapshot of the source and its copy in the target (for reuse);
   * `parent` the target's copy of the snapshot's parent, if there is one.
   */
  async copy(
    snapshot: SnapshotEntry,
    earlier?: { source: SnapshotEntry; target: SnapshotEntry },
    parent?: string,
  ): Promise<SnapshotCopyResult> {
    this.stats = emptyStats();
    this.current = { snapshot };
    const root = await this.translate(
      snapshot.tree,
      earlier ? [earlier.source.tree, earlier.target.tree] : undefined,
    );
    const { id: _sourceId, copiedFrom: _previousOrigin, parent: _sourceParent, ...rest } = snapshot;
    const record: SnapshotRecord = {
      ...rest,
      tree: root,
      ...(parent ? { parent } : {}),
      copiedFrom: { repository: this.opts.sourceRepositoryId, snapshot: snapshot.id },
    };
    // The commit point: flushes packs and index files first (Repo.saveSnapshot).
    const targetId = await this.target.saveSnapshot(record);
    this.report();
    return {
      sourceId: snapshot.id,
      targetId,
      targetTree: root,
      job: snapshot.job,
      startedAt: snapshot.startedAt,
      stats: { ...this.stats },
    };
  }

  /** The target ID of source tree `id`, storing it (and what it needs) in the target when missing. */
  private async translate(id: BlobId, hint: [BlobId, BlobId] | undefined): Promise<BlobId> {
    this.opts.signal?.throwIfAborted();
    if (hint && hint[0] === id && this.target.hasBlob(hint[1])) {
      this.stats.treesReused++;
      this.trees.set(id, hint[1]);
      return hint[1];
    }
    const known = this.trees.get(id);
    if (known !== undefined && this.target.hasBlob(known)) return known;

    const tree = await this.source.loadTree(id);
    this.stats.treesRead++;
    const pair = hint ? await this.loadHint(hint) : undefined;
    const nodes: TreeNode[] = [];
    const contents: Promise<ContentRef[]>[] = [];
    for (const [i, node] of tree.nodes.entries()) {
      const before = pair ? matchingNodes(pair, node, i) : undefined;
      const content = node.content ? this.translateContent(node.content, before) : Promise.resolve([]);
      content.catch(() => {}); // awaited below; a failing subtree must not leave it unobserved
      contents.push(content);
      // Subtrees depth first; the data of this directory is read meanwhile.
      const subtree =
        node.subtree === undefined
          ? undefined
          : await this.translate(
              node.subtree,
              before?.source.subtree && before.target.subtree
                ? [before.source.subtree, before.target.subtree]
                : undefined,
            );
      nodes.push(subtree === undefined ? { ...node } : { ...node, subtree });
    }
    const resolved = await Promise.all(contents);
    for (const [i, node] of nodes.entries()) if (node.content) node.content = resolved[i]!;
    const result = await this.target.saveBlob('tree', encodeTree({ nodes }));
    if (result.stored) {
      this.stats.newBlobs++;
      this.stats.newBytes += result.length;
    }
    this.trees.set(id, result.id);
    return result.id;
  }

  /** Load the earlier pair's trees; dropped when they do not line up (then it is no copy of each other). */
  private async loadHint([sourceId, targetId]: [BlobId, BlobId]): Promise<HintPair | undefined> {
    if (!this.target.hasBlob(targetId)) return undefined;
    const [source, target] = await Promise.all([
      this.source.loadTree(sourceId),
      this.target.loadTree(targetId),
    ]);
    if (source.nodes.length !== target.nodes.length) return undefined;
    for (const [i, node] of source.nodes.entries()) if (node.name !== target.nodes[i]!.name) return undefined;
    return { source, target };
  }

  /** The target's content list for a file: from the earlier copy where it matches, else blob by blob. */
  private async translateContent(
    content: ContentRef[],
    before: { source: TreeNode; target: TreeNode } | undefined,
  ): Promise<ContentRef[]> {
    const known = before ? contentMap(before.source.content, before.target.content) : undefined;
    const out: Promise<ContentRef>[] = [];
    for (const ref of content) {
      if (typeof ref !== 'string') {
        out.push(Promise.resolve(ref));
        continue;
      }
      const mapped = known?.get(ref) ?? this.data.get(ref);
      if (mapped !== undefined && this.target.hasBlob(mapped)) {
        out.push(Promise.resolve(mapped));
        continue;
      }
      const running = this.inflight.get(ref);
      if (running) {
        out.push(running);
        continue;
      }
      while (this.pending.size >= MAX_PENDING) await Promise.race(this.pending).catch(() => {});
      const copied = this.limiter.run(() => this.copyData(ref));
      this.inflight.set(ref, copied);
      const tracked: Promise<void> = copied.then(
        () => this.settled(ref, tracked),
        () => this.settled(ref, tracked),
      );
      this.pending.add(tracked);
      out.push(copied);
      copied.catch(() => {}); // awaited below; avoids an unhandled rejection while others are queued
    }
    return Promise.all(out);
  }

  /** Read one data blob from the source and store it in the target unless it is there. */
  private async copyData(sourceId: BlobId): Promise<BlobId> {
    this.opts.signal?.throwIfAborted();
    const cached = this.data.get(sourceId);
    if (cached !== undefined && this.target.hasBlob(cached)) return cached;
    const plaintext = await this.source.loadBlob(sourceId);
    this.stats.blobsRead++;
    this.stats.bytesRead += plaintext.length;
    const saved = await this.target.saveBlob('data', plaintext);
    if (saved.stored) {
      this.stats.newBlobs++;
      this.stats.newBytes += saved.length;
    }
    this.data.set(sourceId, saved.id);
    this.report();
    return saved.id;
  }

  private settled(ref: BlobId, tracked: Promise<unknown>): void {
    this.pending.delete(tracked);
    this.inflight.delete(ref);
  }

  private report(): void {
    const s = this.current?.snapshot;
    if (!s || !this.opts.onProgress) return;
    this.opts.onProgress({
      snapshot: s.id,
      job: s.job,
      blobsRead: this.stats.blobsRead,
      bytesRead: this.stats.bytesRead,
      newBlobs: this.stats.newBlobs,
      newBytes: this.stats.newBytes,
      totalBytes: s.stats.bytes,
    });
  }
}

function emptyStats(): SnapshotCopyStats {
  return { blobsRead: 0, bytesRead: 0, newBlobs: 0, newBytes: 0, treesRead: 0, treesReused: 0 };
}

/**
 * The earlier pair's nodes for `node` (the i-th of its directory): the pair's
 * trees list the same names in the same order, so position and name must agree.
 */
function matchingNodes(
  pair: HintPair,
  node: TreeNode,
  i: number,
): { source: TreeNode; target: TreeNode } | undefined {
  let j = i;
  if (pair.source.nodes[j]?.name !== node.name) j = pair.source.nodes.findIndex((n) => n.name === node.name);
  if (j < 0) return undefined;
  const source = pair.source.nodes[j]!;
  const target = pair.target.nodes[j]!;
  return source.type === node.type && target.type === node.type ? { source, target } : undefined;
}

/** Source blob ID → target blob ID from two content lists that are copies of each other. */
function contentMap(
  source: ContentRef[] | undefined,
  target: ContentRef[] | undefined,
): Map<BlobId, BlobId> | undefined {
  if (!source || !target || source.length !== target.length) return undefined;
  const map = new Map<BlobId, BlobId>();
  for (const [i, s] of source.entries()) {
    const t = target[i]!;
    if (typeof s === 'string' && typeof t === 'string') map.set(s, t);
    else if (typeof s === 'string' || typeof t === 'string' || s.zero !== t.zero) return undefined;
  }
  return map;
}
