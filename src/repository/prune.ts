/**
 * `prune`: remove data no snapshot needs. Runs under the exclusive lock
 * (the caller takes it), in the order of docs/repository-format.md §13 so a
 * crash at any point leaves a readable repository:
 *
 *   1. mark every blob reachable from every snapshot;
 *   2. repack: copy the used blobs of mostly-unused packs into new packs;
 *   3. write new index files covering every pack that stays (and the new ones);
 *   4. delete the old index files — only now that their replacement exists;
 *   5. delete packs no index lists any more (unused, repacked, old leftovers).
 *
 * Before step 5 every deleted pack is still listed by an old index file or
 * already by none; after step 3 every kept blob is listed by a new one. A
 * crash between steps leaves only duplicates and unindexed packs, which the
 * next prune removes. Prune refuses to run on a repository where it cannot
 * see everything a snapshot needs (damaged snapshot, index file or tree,
 * missing blob): deleting "unused" data there could delete the only copy.
 */
import { IntegrityError } from '../errors.js';
import { StorageNotFoundError } from '../storage/errors.js';
import type { BlobType, SnapshotEntry } from './api.js';
import { loadIndexView, loadTreeFromView, walkTrees, type IndexView } from './check.js';
import { packKey, snapshotKey } from './layout.js';
import {
  createPackCopier,
  deleteIndexFile,
  deletePack,
  listPackObjects,
  listSnapshotIds,
  openBlobRecord,
  readBlobRecord,
  readSnapshotById,
  writeIndex,
  type IndexedPack,
  type LocatedBlob,
  type StoredPack,
} from './maintenance.js';
import type { Repository } from './repository.js';
import { planAroundLocks, reportedLocks, type LockedObject } from './retention-lock.js';
import { mapLimit } from './storageIo.js';
import { referencedBlobs } from './tree.js';

/** Packs without index entry younger than this may belong to a backup running elsewhere. */
export const DEFAULT_LEFTOVER_MIN_AGE_MS = 60 * 60 * 1000;
/** Repack a pack when more than this share of its bytes is unused. */
export const DEFAULT_MAX_UNUSED = 0.1;
/** Blobs per index file written by prune (about 5 MiB of compressed JSON). */
const BLOBS_PER_INDEX_FILE = 50_000;

export interface PruneOptions {
  /** The current time by the caller's clock (leftover ages). */
  now: number;
  /** Share (0–1) of unused bytes above which a pack is repacked; 1 never repacks. */
  maxUnused?: number;
  /** Unindexed packs younger than this are kept (default 1 h). */
  leftoverMinAgeMs?: number;
  /** Target size of packs written by repacking (default: the repository's). */
  packSize?: number;
  onProgress?: (p: PruneProgress) => void;
  signal?: AbortSignal;
  /** Called before every destructive step; throws when the exclusive lock was lost. */
  assertLocked?: () => void;
}

export interface PruneProgress {
  phase: 'marking' | 'repacking' | 'writing index' | 'deleting';
  done: number;
  total?: number;
  bytes: number;
  totalBytes?: number;
}

/** A pack prune deletes or repacks, and why. */
export interface PrunePackInfo {
  id: string;
  type: BlobType;
  size: number;
  blobs: number;
  usedBlobs: number;
  usedBytes: number;
}

/** An unindexed pack (leftover of an interrupted backup, or of one running now). */
export interface LeftoverPack {
  id: string;
  size: number;
  /** By the storage's modification time; absent when the backend does not say. */
  ageMs?: number;
}

/** What prune will do (dry run) or did. */
export interface PruneSummary {
  snapshots: number;
  trees: number;
  usedBlobs: number;
  packs: { total: number; keep: number; delete: number; repack: number };
  /** Packs no snapshot needs. */
  deletePacks: PrunePackInfo[];
  /** Packs whose used blobs are copied to new packs before they are deleted. */
  repackPacks: PrunePackInfo[];
  /** Indexed packs absent from the storage that hold nothing needed: dropped from the index. */
  droppedMissingPacks: string[];
  leftovers: { delete: LeftoverPack[]; keep: LeftoverPack[] };
  indexFiles: { current: number; rewrite: boolean };
  bytes: {
    /** All pack objects before prune. */
    total: number;
    /** Unused packs and old leftovers deleted outright. */
    deleted: number;
    /** Size of the packs being repacked. */
    repacked: number;
    /** Of those, the used bytes copied into new packs. */
    copied: number;
    /** Estimate of what the repository shrinks by. */
    freed: number;
  };
  maxUnused: number;
  leftoverMinAgeMs: number;
  /** Objects kept because an Object Lock retention forbids deleting them yet ("locked until …"). */
  locked?: LockedObject[];
}

/** What an executed prune did. */
export interface PruneOutcome extends PruneSummary {
  packsWritten: number;
  bytesWritten: number;
  packsDeleted: number;
  indexFilesWritten: number;
  indexFilesDeleted: number;
  /** Actual bytes freed: deleted packs minus packs written. */
  bytesFreed: number;
}

/** A prune ready to run: its summary for display, and execute() to carry it out. */
export interface PrunePlan {
  readonly summary: PruneSummary;
  execute(): Promise<PruneOutcome>;
}

function refuse(what: string, cause?: unknown): IntegrityError {
  return new IntegrityError(`prune refused: ${what}`, {
    hint:
      'Prune only deletes data when it can see everything every snapshot needs. Run `lifeboat check` to see ' +
      'the damage; a damaged snapshot can be removed with `lifeboat forget --snapshot ID`.',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Mark, classify and plan; deletes nothing. */
export async function planPrune(repo: Repository, opts: PruneOptions): Promise<PrunePlan> {
  const maxUnused = opts.maxUnused ?? DEFAULT_MAX_UNUSED;
  const leftoverMinAgeMs = opts.leftoverMinAgeMs ?? DEFAULT_LEFTOVER_MIN_AGE_MS;
  if (!(maxUnused >= 0 && maxUnused <= 1))
    throw new RangeError(`maxUnused must be within 0…1, got ${maxUnused}`);
  const progress = (p: PruneProgress) => opts.onProgress?.(p);

  // Snapshots before index files: the same listing order as check (see check.ts).
  const snapshotIds = await listSnapshotIds(repo);
  const snapshots: SnapshotEntry[] = [];
  await mapLimit(snapshotIds, 8, async (id) => {
    try {
      snapshots.push(await readSnapshotById(repo, id));
    } catch (err) {
      if (err instanceof StorageNotFoundError) return;
      if (err instanceof IntegrityError) throw refuse(`snapshot ${snapshotKey(id)} is damaged`, err);
      throw err;
    }
  });
  const view = await loadIndexView(repo);
  if (view.damaged.length > 0) {
    throw refuse(
      `${view.damaged.length} index file(s) cannot be read (${view.damaged[0]!.message}); ` +
        'packs only they list would look unused',
    );
  }

  // ── 1. mark ─────────────────────────────────────────────────────────
  const used = new Set<string>();
  const need = (id: string, type: BlobType, where: string) => {
    used.add(id);
    const loc = view.blobs.get(id);
    if (!loc) throw refuse(`${type} blob ${id} (${where}) is not in any index file`);
    if (loc.type !== type) throw refuse(`blob ${id} (${where}) is indexed as ${loc.type}, expected ${type}`);
  };
  for (const s of snapshots) need(s.tree, 'tree', `root of snapshot ${s.id.slice(0, 12)}`);
  let treesDone = 0;
  const trees = await walkTrees(
    snapshots.map((s) => s.tree),
    async (id) => {
      try {
        return await loadTreeFromView(repo, view, id);
      } catch (err) {
        if (err instanceof IntegrityError) throw refuse(`tree ${id} cannot be read: ${err.message}`, err);
        throw err;
      }
    },
    (treeId, tree) => {
      for (const node of tree.nodes) {
        const refs = referencedBlobs(node);
        for (const d of refs.data) need(d, 'data', `in tree ${treeId.slice(0, 12)}`);
        if (refs.subtree !== undefined) need(refs.subtree, 'tree', `in tree ${treeId.slice(0, 12)}`);
      }
    },
    {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onTree: () => progress({ phase: 'marking', done: ++treesDone, bytes: 0 }),
    },
  );

  // ── 2. classify packs ───────────────────────────────────────────────
  const storedList = await listPackObjects(repo);
  const stored = new Map(storedList.map((p) => [p.id, p]));
  const intact = (packId: string) => stored.get(packId)?.size === view.blobs.pack(packId)?.size;
  /** Each used blob is kept in exactly one intact pack: its owner. */
  const owned = new Map<string, LocatedBlob[]>();
  for (const id of used) {
    const first = view.blobs.get(id)!;
    const candidates = [first.packId, ...(view.copies.get(id) ?? [])];
    const owner = candidates.find(intact);
    if (!owner) {
      throw refuse(
        `blob ${id} is needed but its pack ${packKey(candidates[0]!)} is missing or has the wrong size`,
      );
    }
    const located: LocatedBlob =
      owner === first.packId
        ? { id, ...first }
        : { ...view.blobs.blobIn(owner, id)!, id, packId: owner, type: view.blobs.pack(owner)!.type };
    const list = owned.get(owner) ?? [];
    list.push(located);
    owned.set(owner, list);
  }
  const deletePacks: PrunePackInfo[] = [];
  const repackPacks: PrunePackInfo[] = [];
  const droppedMissingPacks: string[] = [];
  const keepPacks: IndexedPack[] = [];
  for (const id of [...view.packs.keys()].sort()) {
    const pack = view.packs.get(id)!;
    const mine = owned.get(id) ?? [];
    const usedBytes = mine.reduce((n, b) => n + b.length, 0);
    const info: PrunePackInfo = {
      id,
      type: pack.type,
      size: pack.size,
      blobs: pack.blobs.length,
      usedBlobs: mine.length,
      usedBytes,
    };
    if (!stored.has(id)) droppedMissingPacks.push(id);
    else if (mine.length === 0) deletePacks.push(info);
    else if (unusedShare(pack, usedBytes) > maxUnused) repackPacks.push(info);
    else keepPacks.push(pack);
  }
  const leftoverDelete: LeftoverPack[] = [];
  const leftoverKeep: LeftoverPack[] = [];
  for (const p of storedList) {
    if (view.packs.has(p.id)) continue;
    const ageMs = p.mtimeMs === undefined ? undefined : opts.now - p.mtimeMs;
    const entry: LeftoverPack = { id: p.id, size: p.size, ...(ageMs === undefined ? {} : { ageMs }) };
    (ageMs !== undefined && ageMs >= leftoverMinAgeMs ? leftoverDelete : leftoverKeep).push(entry);
  }
  // Objects under an Object Lock retention are never deleted: keep them (retention-lock.ts).
  const locks = await planAroundLocks(
    repo,
    view,
    { deletePacks, repackPacks, keepPacks, leftoverDelete, leftoverKeep },
    opts.now,
  );
  const changed = deletePacks.length + repackPacks.length + droppedMissingPacks.length > 0;
  // Also compact: many small index files (one per backup) slow every open.
  const rewrite = changed || view.fileIds.length - locks.indexFiles.size > chunkPacks(keepPacks).length;
  const locked = reportedLocks(locks, rewrite);

  const sum = (xs: { size: number }[]) => xs.reduce((n, x) => n + x.size, 0);
  const copied = repackPacks.reduce((n, p) => n + p.usedBytes, 0);
  const summary: PruneSummary = {
    snapshots: snapshots.length,
    trees,
    usedBlobs: used.size,
    packs: {
      total: view.packs.size,
      keep: keepPacks.length,
      delete: deletePacks.length,
      repack: repackPacks.length,
    },
    deletePacks,
    repackPacks,
    droppedMissingPacks,
    leftovers: { delete: leftoverDelete, keep: leftoverKeep },
    indexFiles: { current: view.fileIds.length, rewrite },
    bytes: {
      total: sum(storedList),
      deleted: sum(deletePacks) + sum(leftoverDelete),
      repacked: sum(repackPacks),
      copied,
      freed: sum(deletePacks) + sum(leftoverDelete) + sum(repackPacks) - copied,
    },
    maxUnused,
    leftoverMinAgeMs,
    ...(locked.length ? { locked } : {}),
  };
  return {
    summary,
    execute: () =>
      executePrune(
        repo,
        view,
        summary,
        { owned, keepPacks, stored, lockedIndexFiles: locks.indexFiles },
        opts,
      ),
  };
}

/** Share of a pack's blob bytes that is unused (the header is overhead of every pack, not waste). */
function unusedShare(pack: IndexedPack, usedBytes: number): number {
  const blobBytes = pack.blobs.reduce((n, b) => n + b.length, 0);
  return blobBytes > 0 ? (blobBytes - usedBytes) / blobBytes : 1;
}

/** Split packs into index files of at most BLOBS_PER_INDEX_FILE blobs (a big pack gets a file of its own). */
function chunkPacks(packs: readonly IndexedPack[]): IndexedPack[][] {
  const out: IndexedPack[][] = [];
  let current: IndexedPack[] = [];
  let blobs = 0;
  for (const p of packs) {
    if (current.length > 0 && blobs + p.blobs.length > BLOBS_PER_INDEX_FILE) {
      out.push(current);
      current = [];
      blobs = 0;
    }
    current.push(p);
    blobs += p.blobs.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

async function executePrune(
  repo: Repository,
  view: IndexView,
  summary: PruneSummary,
  state: {
    owned: Map<string, LocatedBlob[]>;
    keepPacks: IndexedPack[];
    stored: Map<string, StoredPack>;
    lockedIndexFiles: ReadonlySet<string>;
  },
  opts: PruneOptions,
): Promise<PruneOutcome> {
  const assertLocked = () => {
    opts.assertLocked?.();
    opts.signal?.throwIfAborted();
  };
  const progress = (p: PruneProgress) => opts.onProgress?.(p);
  assertLocked();

  // ── 2. repack ───────────────────────────────────────────────────────
  let newPacks: IndexedPack[] = [];
  if (summary.repackPacks.length > 0) {
    const copier = createPackCopier(repo, opts.packSize === undefined ? {} : { packSize: opts.packSize });
    let bytes = 0;
    let done = 0;
    for (const pack of summary.repackPacks) {
      for (const blob of state.owned.get(pack.id) ?? []) {
        opts.signal?.throwIfAborted();
        const { record, from } = await verifiedRecord(repo, view, blob, state.stored);
        await copier.add(from, record);
        bytes += record.length;
        progress({
          phase: 'repacking',
          done,
          total: summary.repackPacks.length,
          bytes,
          totalBytes: summary.bytes.copied,
        });
      }
      progress({
        phase: 'repacking',
        done: ++done,
        total: summary.repackPacks.length,
        bytes,
        totalBytes: summary.bytes.copied,
      });
    }
    newPacks = await copier.finish();
  }

  // ── 3. new index files ──────────────────────────────────────────────
  const written: string[] = [];
  if (summary.indexFiles.rewrite) {
    assertLocked();
    const chunks = chunkPacks([...state.keepPacks, ...newPacks]);
    for (const [i, chunk] of chunks.entries()) {
      written.push(await writeIndex(repo, chunk));
      progress({ phase: 'writing index', done: i + 1, total: chunks.length, bytes: 0 });
    }
  }

  // ── 4. old index files (their replacement is stored) ────────────────
  let indexFilesDeleted = 0;
  if (summary.indexFiles.rewrite) {
    assertLocked();
    const fresh = new Set(written);
    for (const id of view.fileIds) {
      if (fresh.has(id) || state.lockedIndexFiles.has(id)) continue;
      await deleteIndexFile(repo, id);
      indexFilesDeleted++;
    }
  }

  // ── 5. packs no index lists any more ────────────────────────────────
  assertLocked();
  const doomed = [
    ...summary.deletePacks.map((p) => ({ id: p.id, size: state.stored.get(p.id)?.size ?? p.size })),
    ...summary.repackPacks.map((p) => ({ id: p.id, size: state.stored.get(p.id)?.size ?? p.size })),
    ...summary.leftovers.delete,
  ];
  let packsDeleted = 0;
  let deletedBytes = 0;
  await mapLimit(doomed, 4, async (p) => {
    await deletePack(repo, p.id);
    packsDeleted++;
    deletedBytes += p.size;
    progress({ phase: 'deleting', done: packsDeleted, total: doomed.length, bytes: deletedBytes });
  });

  const bytesWritten = newPacks.reduce((n, p) => n + p.size, 0);
  return {
    ...summary,
    packsWritten: newPacks.length,
    bytesWritten,
    packsDeleted,
    indexFilesWritten: written.length,
    indexFilesDeleted,
    bytesFreed: deletedBytes - bytesWritten,
  };
}

/**
 * The sealed record of a blob to copy, verified first (a damaged blob must
 * not be copied as if it were good). Falls back to other intact copies.
 */
async function verifiedRecord(
  repo: Repository,
  view: IndexView,
  blob: LocatedBlob,
  stored: Map<string, StoredPack>,
): Promise<{ record: Buffer; from: LocatedBlob }> {
  const candidates: LocatedBlob[] = [blob];
  for (const packId of view.copies.get(blob.id) ?? []) {
    const pack = view.blobs.pack(packId);
    const b = view.blobs.blobIn(packId, blob.id);
    if (pack && b && packId !== blob.packId && stored.get(packId)?.size === pack.size)
      candidates.push({ ...b, id: blob.id, packId, type: pack.type });
  }
  let firstError: unknown;
  for (const c of candidates) {
    try {
      const record = await readBlobRecord(repo, c);
      await openBlobRecord(repo, record, c);
      return { record, from: c };
    } catch (err) {
      if (!(err instanceof IntegrityError) && !(err instanceof StorageNotFoundError)) throw err;
      firstError ??= err;
    }
  }
  throw refuse(
    `blob ${blob.id} in pack ${packKey(blob.packId)} is damaged and no intact copy exists; nothing was deleted`,
    firstError,
  );
}
