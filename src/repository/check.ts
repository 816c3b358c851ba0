/**
 * `check`: is every snapshot restorable? Verifies the repository's structure
 * and references — snapshots decrypt, every tree and data blob they refer to
 * is indexed with the right type, every indexed pack exists with the size the
 * index says and a header that agrees with the index, every index file
 * decrypts — and, with read-data, decrypts and hashes every blob of every
 * (or of a sample of) pack. Every problem names the object and the snapshots
 * it affects, so a person knows which restore points are at risk.
 *
 * Order matters for a check that runs beside backups (shared lock):
 * snapshots are listed first, index files after, packs last. A snapshot is
 * written after its index files, and an index file after its packs
 * (docs/repository-format.md §13), so everything a listed snapshot needs is
 * seen by the later listings.
 */
import { randomInt } from 'node:crypto';
import { IntegrityError, UsageError } from '../errors.js';
import { StorageNotFoundError } from '../storage/errors.js';
import type { BlobType, SnapshotEntry } from './api.js';
import { BlobIndex, type IndexedPacks } from './blobIndex.js';
import { indexKey, packKey, snapshotKey } from './layout.js';
import {
  listPackObjects,
  listSnapshotIds,
  openBlobRecord,
  readAllIndexFiles,
  readAndVerifyPack,
  readPackHeader,
  readSnapshotById,
  type IndexedPack,
  type LocatedBlob,
  type PackEntry,
} from './maintenance.js';
import type { Repository } from './repository.js';
import { PackWindows } from './packWindows.js';
import { mapLimit, readObject } from './storageIo.js';
import type { BlobId, Tree } from './tree.js';
import { referencedBlobs } from './tree.js';
import { decodeTree } from './trees.js';

/** Which packs `check` reads in full. */
export type ReadDataSelection =
  | { kind: 'none' }
  | { kind: 'all' }
  /** A random sample of this share of the packs, different each run. */
  | { kind: 'fraction'; fraction: number }
  /** Part `part` (1-based) of `of` fixed, disjoint groups: run 1/5 … 5/5 to read everything over five runs. */
  | { kind: 'part'; part: number; of: number };

/** Parse `--read-data-subset`: `10%` (random sample) or `N/M` (fixed group N of M). */
export function parseReadDataSubset(text: string): ReadDataSelection {
  const s = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(s);
  if (pct) {
    const value = Number(pct[1]);
    if (value > 0 && value <= 100)
      return value === 100 ? { kind: 'all' } : { kind: 'fraction', fraction: value / 100 };
  }
  const part = /^(\d+)\s*\/\s*(\d+)$/.exec(s);
  if (part) {
    const n = Number(part[1]);
    const m = Number(part[2]);
    if (m >= 1 && n >= 1 && n <= m) return m === 1 ? { kind: 'all' } : { kind: 'part', part: n, of: m };
  }
  throw new UsageError(`invalid read-data subset "${text}"`, {
    hint: 'Give a percentage such as 10% (a random sample, different each run) or N/M such as 2/5 (the second of five fixed groups of packs).',
  });
}

/** Human text for a selection: "all packs", "a random 10% of packs", "group 2/5 of packs". */
export function describeReadData(sel: ReadDataSelection): string {
  switch (sel.kind) {
    case 'none':
      return 'no pack data';
    case 'all':
      return 'all packs';
    case 'fraction':
      return `a random ${+(sel.fraction * 100).toFixed(2)}% of packs`;
    case 'part':
      return `group ${sel.part}/${sel.of} of packs`;
  }
}

export type CheckProblemKind =
  | 'snapshot-damaged'
  | 'index-damaged'
  | 'tree-damaged'
  | 'blob-missing'
  | 'blob-type'
  | 'pack-missing'
  | 'pack-size'
  | 'pack-header'
  | 'pack-hash'
  | 'blob-damaged'
  /** An object a restore point needs is locked (S3 Object Lock) for less than its policy's immutableFor. */
  | 'immutability';

/** One thing wrong with the repository. */
export interface CheckProblem {
  kind: CheckProblemKind;
  /** Storage key of the damaged or missing object (`data/ab/ab…`, `index/…`, `snapshots/…`). */
  object: string;
  pack?: string;
  blob?: string;
  message: string;
  /** IDs of the snapshots whose restore needs what is damaged, oldest first. */
  snapshots: string[];
}

export interface CheckStats {
  snapshots: number;
  indexFiles: number;
  packs: number;
  /** Bytes of all indexed packs. */
  packBytes: number;
  blobs: number;
  trees: number;
  /** Distinct blobs the snapshots refer to. */
  referencedBlobs: number;
  /** Indexed blobs no snapshot refers to (prune removes them). */
  unusedBlobs: number;
  unusedBytes: number;
  /** Blobs stored in more than one pack. */
  duplicateBlobs: number;
  /** Pack objects no index file lists: leftovers of interrupted (or running) backups. */
  unindexedPacks: number;
  unindexedBytes: number;
  packsRead: number;
  bytesRead: number;
}

/** A snapshot touched by at least one problem. */
export interface AffectedSnapshot {
  id: string;
  job?: string;
  host?: string;
  startedAt?: string;
  problems: number;
}

export interface CheckReport {
  ok: boolean;
  readData: ReadDataSelection;
  stats: CheckStats;
  problems: CheckProblem[];
  /** Things worth knowing that are not damage (unused blobs, leftovers, duplicates). */
  notes: string[];
  affectedSnapshots: AffectedSnapshot[];
}

export type CheckPhase = 'snapshots' | 'index' | 'trees' | 'packs' | 'read-data';

export interface CheckProgress {
  phase: CheckPhase;
  done: number;
  total?: number;
  bytes: number;
  totalBytes?: number;
}

export interface CheckOptions {
  readData?: ReadDataSelection;
  onProgress?: (p: CheckProgress) => void;
  signal?: AbortSignal;
  /** Uniform integer in [0, n) for sampling; default crypto.randomInt. */
  random?: (n: number) => number;
}

/** Integrity problems become findings; anything else (storage down, bugs) ends the check. */
function findingOrThrow(err: unknown): string {
  if (err instanceof IntegrityError) return err.message;
  throw err;
}

/**
 * The merged view of every readable index file: first location of each
 * blob, every pack with its blob list, and where duplicates live.
 */
export interface IndexView {
  blobs: BlobIndex;
  /** Each get() builds the pack's blob list anew: take it once per pack. */
  packs: IndexedPacks;
  /** Index files listing each pack. */
  packFiles: Map<string, string[]>;
  /** Blob → every pack holding it, only for blobs stored more than once. */
  copies: Map<string, string[]>;
  fileIds: string[];
  damaged: { id: string; message: string }[];
  /** Reads of tree records, through windows of their packs (one read serves the trees stored near each other). */
  treeReads: PackWindows;
}

/**
 * Windows for the tree walks of check, prune and retention: a backup stores a
 * directory's tree next to its subdirectories', so a walk's trees mostly come
 * from a few MiB of a pack. One read per tree cost a /usr/share copy's check
 * 2,858 reads (open, stat, read and close each: ~0.45 s of the calling thread).
 */
const TREE_WINDOW = 1024 * 1024;
const TREE_WINDOWS = 8;

/** Read every index file and merge them (damaged files are listed, not fatal). */
export async function loadIndexView(repo: Repository): Promise<IndexView> {
  const { files, problems } = await readAllIndexFiles(repo);
  files.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const blobs = new BlobIndex();
  const packFiles = new Map<string, string[]>();
  const copies = new Map<string, string[]>();
  for (const file of files) {
    for (const pack of file.body.packs) {
      const listed = packFiles.get(pack.id);
      if (listed) {
        listed.push(file.id);
        continue;
      }
      packFiles.set(pack.id, [file.id]);
      for (const b of pack.blobs) {
        const first = blobs.get(b.id);
        if (first && first.packId !== pack.id) {
          const all = copies.get(b.id) ?? [first.packId];
          all.push(pack.id);
          copies.set(b.id, all);
        }
      }
      blobs.addPack(pack);
    }
  }
  const { storage } = repo.internals();
  const treeReads = new PackWindows(
    (packId, offset, length) => readObject(storage, packKey(packId), { offset, length }),
    TREE_WINDOW,
    TREE_WINDOWS,
  );
  return {
    blobs,
    packs: blobs.indexedPacks(),
    packFiles,
    copies,
    fileIds: files.map((f) => f.id),
    damaged: problems,
    treeReads,
  };
}

/** Every location of a blob: the first one, then other copies. */
function locations(view: IndexView, id: string): LocatedBlob[] {
  const first = view.blobs.get(id);
  if (!first) return [];
  const out: LocatedBlob[] = [{ id, ...first }];
  for (const packId of view.copies.get(id) ?? []) {
    if (packId === first.packId) continue;
    const pack = view.blobs.pack(packId);
    const b = view.blobs.blobIn(packId, id);
    if (b && pack) out.push({ ...b, id, packId, type: pack.type });
  }
  return out;
}

/** Load and parse a tree blob, trying every copy; throws the first copy's error if none works. */
export async function loadTreeFromView(repo: Repository, view: IndexView, id: BlobId): Promise<Tree> {
  const locs = locations(view, id).filter((l) => l.type === 'tree');
  let firstError: unknown;
  for (const loc of locs) {
    try {
      // A view of a shared window: opened without being taken (moved to a worker).
      const record = await view.treeReads.get(loc.packId, loc.offset, loc.length);
      return decodeTree(await openBlobRecord(repo, record, loc), id);
    } catch (err) {
      if (!(err instanceof IntegrityError) && !(err instanceof StorageNotFoundError)) throw err;
      firstError ??=
        err instanceof StorageNotFoundError
          ? new IntegrityError(`tree ${id}: pack ${packKey(loc.packId)} is missing`, { cause: err })
          : err;
    }
  }
  throw firstError ?? new IntegrityError(`tree ${id} is not in any index file`);
}

/**
 * Visit every tree reachable from `roots` once, breadth first, at most
 * `concurrency` loads at a time. `load` failures go to `onError` and the
 * tree's children are not visited.
 */
export async function walkTrees(
  roots: Iterable<BlobId>,
  load: (id: BlobId) => Promise<Tree | undefined>,
  visit: (id: BlobId, tree: Tree) => void,
  opts: { concurrency?: number; signal?: AbortSignal; onTree?: () => void } = {},
): Promise<number> {
  const seen = new Set<BlobId>();
  let frontier = [...new Set(roots)];
  for (const id of frontier) seen.add(id);
  while (frontier.length > 0) {
    opts.signal?.throwIfAborted();
    const next: BlobId[] = [];
    await mapLimit(frontier, opts.concurrency ?? 8, async (id) => {
      const tree = await load(id);
      opts.onTree?.();
      if (!tree) return;
      visit(id, tree);
      for (const node of tree.nodes) {
        const sub = referencedBlobs(node).subtree;
        if (sub !== undefined && !seen.has(sub)) {
          seen.add(sub);
          next.push(sub);
        }
      }
    });
    frontier = next;
  }
  return seen.size;
}

const EMPTY: ReadonlySet<string> = new Set();

/** Check the repository; never throws for damage it finds (only for storage failures). */
export async function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckReport> {
  const readData = opts.readData ?? { kind: 'none' };
  const signal = opts.signal;
  const problems: CheckProblem[] = [];
  const notes: string[] = [];
  /** Blob → indices of problems that make it unreadable (or put it at risk). */
  const involved = new Map<string, number[]>();
  const addProblem = (
    p: Omit<CheckProblem, 'snapshots'>,
    blobs: Iterable<string> = [],
    snapshots: string[] = [],
  ) => {
    const index = problems.push({ ...p, snapshots }) - 1;
    for (const b of blobs) {
      const list = involved.get(b);
      if (list) list.push(index);
      else involved.set(b, [index]);
    }
  };
  const progress = (p: CheckProgress) => opts.onProgress?.(p);

  // ── Snapshots (listed first, see the module comment) ────────────────
  const snapshotIds = await listSnapshotIds(repo);
  const snapshots: SnapshotEntry[] = [];
  let done = 0;
  await mapLimit(snapshotIds, 8, async (id) => {
    try {
      snapshots.push(await readSnapshotById(repo, id));
    } catch (err) {
      if (err instanceof StorageNotFoundError) return; // forgotten meanwhile
      addProblem(
        { kind: 'snapshot-damaged', object: snapshotKey(id), message: findingOrThrow(err) },
        [],
        [id],
      );
    } finally {
      progress({ phase: 'snapshots', done: ++done, total: snapshotIds.length, bytes: 0 });
    }
  });
  snapshots.sort((a, b) =>
    a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : 1,
  );
  signal?.throwIfAborted();

  // ── Index files ─────────────────────────────────────────────────────
  progress({ phase: 'index', done: 0, bytes: 0 });
  const view = await loadIndexView(repo);
  for (const d of view.damaged) {
    addProblem({
      kind: 'index-damaged',
      object: indexKey(d.id),
      message: `${d.message}; the blobs it lists are unknown unless another index file lists them`,
    });
  }
  signal?.throwIfAborted();

  // ── Trees and references ────────────────────────────────────────────
  const used = new Set<string>();
  const reportedMissing = new Set<string>();
  /** Is `id` indexed as a `type` blob? Reports once per blob when not. */
  const expectBlob = (id: string, type: BlobType, where: string) => {
    used.add(id);
    if (reportedMissing.has(id)) return false;
    const loc = view.blobs.get(id);
    if (!loc) {
      reportedMissing.add(id);
      addProblem(
        {
          kind: 'blob-missing',
          object: `${type} blob ${id}`,
          blob: id,
          message: `${type} blob ${id} (${where}) is not in any index file`,
        },
        [id],
      );
      return false;
    }
    if (loc.type !== type) {
      reportedMissing.add(id);
      addProblem(
        {
          kind: 'blob-type',
          object: packKey(loc.packId),
          pack: loc.packId,
          blob: id,
          message: `blob ${id} (${where}) is indexed as a ${loc.type} blob, expected ${type}`,
        },
        [id],
      );
      return false;
    }
    return true;
  };
  const badTrees = new Set<string>();
  const loadChecked = async (id: BlobId): Promise<Tree | undefined> => {
    if (reportedMissing.has(id) || !view.blobs.get(id) || view.blobs.get(id)?.type !== 'tree')
      return undefined;
    try {
      return await loadTreeFromView(repo, view, id);
    } catch (err) {
      const loc = view.blobs.get(id)!;
      badTrees.add(id);
      addProblem(
        {
          kind: 'tree-damaged',
          object: packKey(loc.packId),
          pack: loc.packId,
          blob: id,
          message: findingOrThrow(err),
        },
        [id],
      );
      return undefined;
    }
  };
  for (const s of snapshots) expectBlob(s.tree, 'tree', `root of snapshot ${s.id.slice(0, 12)}`);
  let treesDone = 0;
  const trees = await walkTrees(
    snapshots.map((s) => s.tree),
    loadChecked,
    (treeId, tree) => {
      for (const node of tree.nodes) {
        const refs = referencedBlobs(node);
        for (const d of refs.data)
          expectBlob(d, 'data', `content of ${node.name} in tree ${treeId.slice(0, 12)}`);
        if (refs.subtree !== undefined)
          expectBlob(refs.subtree, 'tree', `directory ${node.name} in tree ${treeId.slice(0, 12)}`);
      }
    },
    { signal, onTree: () => progress({ phase: 'trees', done: ++treesDone, bytes: 0 }) },
  );

  // ── Packs ───────────────────────────────────────────────────────────
  const stored = new Map((await listPackObjects(repo)).map((p) => [p.id, p]));
  const packIds = [...view.packs.keys()].sort();
  const checkable: string[] = [];
  let packBytes = 0;
  for (const id of packIds) {
    const pack = view.packs.get(id)!;
    packBytes += pack.size;
    const object = stored.get(id);
    const blobIds = pack.blobs.map((b) => b.id);
    if (!object) {
      addProblem(
        {
          kind: 'pack-missing',
          object: packKey(id),
          pack: id,
          message: `pack ${packKey(id)} is missing (the index lists ${pack.blobs.length} ${pack.type} blobs in it)`,
        },
        blobIds,
      );
    } else if (object.size !== pack.size) {
      const cut = pack.blobs.filter((b) => b.offset + b.length > object.size).map((b) => b.id);
      addProblem(
        {
          kind: 'pack-size',
          object: packKey(id),
          pack: id,
          message:
            `pack ${packKey(id)} has ${object.size} bytes, the index says ${pack.size}` +
            (object.size < pack.size
              ? ` (truncated: ${cut.length} of ${pack.blobs.length} blobs cut off)`
              : ''),
        },
        // The header sits at the end, so any size change damages it: every blob is at risk.
        blobIds,
      );
    } else {
      checkable.push(id);
    }
  }
  const unindexed = [...stored.values()].filter((p) => !view.packs.has(p.id));
  const toRead = new Set(selectPacks(checkable, readData, opts.random ?? randomInt));
  const totalReadBytes = [...toRead].reduce((n, id) => n + view.blobs.pack(id)!.size, 0);
  let packsDone = 0;
  let bytesRead = 0;
  let packsRead = 0;
  const compareEntries = (pack: IndexedPack, header: PackEntry[]) => {
    const byId = new Map(header.map((e) => [e.id, e]));
    const disagreeing: string[] = [];
    for (const b of pack.blobs) {
      const e = byId.get(b.id);
      if (
        !e ||
        e.type !== pack.type ||
        e.offset !== b.offset ||
        e.length !== b.length ||
        e.rawLength !== b.rawLength ||
        e.compression !== b.compression
      )
        disagreeing.push(b.id);
      byId.delete(b.id);
    }
    return { disagreeing, unlisted: [...byId.keys()] };
  };
  // Headers of every pack (small range reads, many at once), then the packs to read in full (two at once).
  // A pack is read by the index's entries: a header that is not damaged lists exactly those (else it is
  // reported above), so no header is kept from the first pass to the second (for every pack, that was
  // an object per blob of the repository, all held at once).
  const indexedEntries = (id: string): PackEntry[] => {
    const pack = view.packs.get(id)!;
    return pack.blobs.map((b) => ({ ...b, type: pack.type }));
  };
  await mapLimit(checkable, 8, async (id) => {
    signal?.throwIfAborted();
    const pack = view.packs.get(id)!;
    try {
      const header = await readPackHeader(repo, id);
      const { disagreeing, unlisted } = compareEntries(pack, header);
      if (disagreeing.length > 0 || unlisted.length > 0) {
        const parts: string[] = [];
        if (disagreeing.length)
          parts.push(`${disagreeing.length} indexed blobs are missing from it or placed differently`);
        if (unlisted.length) parts.push(`${unlisted.length} blobs in it are not in the index`);
        addProblem(
          {
            kind: 'pack-header',
            object: packKey(id),
            pack: id,
            message: `the header of pack ${packKey(id)} disagrees with the index: ${parts.join('; ')}`,
          },
          disagreeing,
        );
      }
    } catch (err) {
      addProblem(
        {
          kind: 'pack-header',
          object: packKey(id),
          pack: id,
          message: `${findingOrThrow(err)} (its blobs may still be readable: the index locates them)`,
        },
        pack.blobs.map((b) => b.id),
      );
    }
    progress({ phase: 'packs', done: ++packsDone, total: checkable.length, bytes: 0 });
  });
  await mapLimit([...toRead], 2, async (id) => {
    signal?.throwIfAborted();
    const result = await readAndVerifyPack(repo, id, indexedEntries(id), (n) => {
      bytesRead += n;
      progress({
        phase: 'read-data',
        done: packsRead,
        total: toRead.size,
        bytes: bytesRead,
        totalBytes: totalReadBytes,
      });
    });
    packsRead++;
    progress({
      phase: 'read-data',
      done: packsRead,
      total: toRead.size,
      bytes: bytesRead,
      totalBytes: totalReadBytes,
    });
    for (const p of result.problems) {
      if (p.blob) {
        addProblem(
          {
            kind: 'blob-damaged',
            object: packKey(id),
            pack: id,
            blob: p.blob,
            message: p.message.includes(p.blob)
              ? p.message
              : `blob ${p.blob} in pack ${packKey(id)} ${p.message}`,
          },
          [p.blob],
        );
      } else {
        addProblem({
          kind: 'pack-hash',
          object: packKey(id),
          pack: id,
          message: `pack ${packKey(id)}: ${p.message}`,
        });
      }
    }
  });

  // ── Which snapshots each problem affects ────────────────────────────
  if (involved.size > 0)
    await attributeSnapshots(repo, view, snapshots, involved, badTrees, problems, signal);

  // ── Notes ───────────────────────────────────────────────────────────
  let unusedBlobs = 0;
  let unusedBytes = 0;
  for (const [id, loc] of view.blobs.entries()) {
    if (used.has(id)) continue;
    unusedBlobs++;
    unusedBytes += loc.length;
  }
  const unindexedBytes = unindexed.reduce((n, p) => n + p.size, 0);
  if (unusedBlobs > 0)
    notes.push(
      `${unusedBlobs} indexed blobs (${unusedBytes} bytes) are used by no snapshot; \`lifeboat prune\` removes them`,
    );
  if (unindexed.length > 0)
    notes.push(
      `${unindexed.length} packs (${unindexedBytes} bytes) are in no index file: leftovers of interrupted backups ` +
        '(or packs of a backup running now); `lifeboat prune` removes them once they are old enough',
    );
  if (view.copies.size > 0)
    notes.push(`${view.copies.size} blobs are stored in more than one pack; prune tidies this`);

  problems.sort(
    (a, b) =>
      kindOrder(a.kind) - kindOrder(b.kind) || (a.object < b.object ? -1 : a.object > b.object ? 1 : 0),
  );
  const byId = new Map(snapshots.map((s) => [s.id, s]));
  const counts = new Map<string, number>();
  for (const p of problems) for (const s of p.snapshots) counts.set(s, (counts.get(s) ?? 0) + 1);
  const affectedSnapshots: AffectedSnapshot[] = [...counts].map(([id, n]) => {
    const s = byId.get(id);
    return s ? { id, job: s.job, host: s.host, startedAt: s.startedAt, problems: n } : { id, problems: n };
  });
  affectedSnapshots.sort((a, b) => ((a.startedAt ?? '') < (b.startedAt ?? '') ? -1 : 1));

  return {
    ok: problems.length === 0,
    readData,
    stats: {
      snapshots: snapshotIds.length,
      indexFiles: view.fileIds.length + view.damaged.length,
      packs: view.packs.size,
      packBytes,
      blobs: view.blobs.blobCount,
      trees,
      referencedBlobs: used.size,
      unusedBlobs,
      unusedBytes,
      duplicateBlobs: view.copies.size,
      unindexedPacks: unindexed.length,
      unindexedBytes,
      packsRead,
      bytesRead,
    },
    problems,
    notes,
    affectedSnapshots,
  };
}

const KIND_ORDER: CheckProblemKind[] = [
  'snapshot-damaged',
  'index-damaged',
  'tree-damaged',
  'blob-missing',
  'blob-type',
  'pack-missing',
  'pack-size',
  'pack-header',
  'pack-hash',
  'blob-damaged',
  'immutability',
];
const kindOrder = (k: CheckProblemKind) => KIND_ORDER.indexOf(k);

/** The packs to read in full for a selection; samples are drawn with `random` (crypto by default). */
export function selectPacks(
  packIds: readonly string[],
  sel: ReadDataSelection,
  random: (n: number) => number,
): string[] {
  switch (sel.kind) {
    case 'none':
      return [];
    case 'all':
      return [...packIds];
    case 'part':
      // Fixed groups by pack ID, so N/M for N = 1…M covers every pack exactly once.
      return packIds.filter((id) => parseInt(id.slice(0, 8), 16) % sel.of === sel.part - 1);
    case 'fraction': {
      if (packIds.length === 0) return [];
      const n = Math.min(packIds.length, Math.max(1, Math.ceil(packIds.length * sel.fraction)));
      const pool = [...packIds];
      // Partial Fisher–Yates: the first n entries become a uniform random sample.
      for (let i = 0; i < n; i++) {
        const j = i + random(pool.length - i);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      return pool.slice(0, n);
    }
  }
}

/**
 * Second walk, only when something is wrong: which snapshots reach each
 * involved blob. Memoised per tree (a tree's set of involved blobs below it),
 * so shared subtrees are loaded once.
 */
async function attributeSnapshots(
  repo: Repository,
  view: IndexView,
  snapshots: SnapshotEntry[],
  involved: Map<string, number[]>,
  badTrees: ReadonlySet<string>,
  problems: CheckProblem[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const memo = new Map<string, Promise<ReadonlySet<string>>>();
  const below = (treeId: string): Promise<ReadonlySet<string>> => {
    let p = memo.get(treeId);
    if (!p) {
      p = (async () => {
        signal?.throwIfAborted();
        const found = new Set<string>();
        if (involved.has(treeId)) found.add(treeId);
        const loc = view.blobs.get(treeId);
        if (badTrees.has(treeId) || !loc || loc.type !== 'tree') return found.size ? found : EMPTY;
        let tree: Tree;
        try {
          tree = await loadTreeFromView(repo, view, treeId);
        } catch {
          return found.size ? found : EMPTY;
        }
        for (const node of tree.nodes) {
          const refs = referencedBlobs(node);
          for (const d of refs.data) if (involved.has(d)) found.add(d);
          if (refs.subtree !== undefined) for (const b of await below(refs.subtree)) found.add(b);
        }
        return found.size ? found : EMPTY;
      })();
      memo.set(treeId, p);
    }
    return p;
  };
  const sets = new Map<number, Set<string>>();
  for (const s of snapshots) {
    for (const blob of await below(s.tree)) {
      for (const i of involved.get(blob) ?? []) {
        let set = sets.get(i);
        if (!set) sets.set(i, (set = new Set(problems[i]!.snapshots)));
        set.add(s.id);
      }
    }
  }
  const order = new Map(snapshots.map((s, i) => [s.id, i]));
  for (const [i, set] of sets) {
    problems[i]!.snapshots = [...set].sort((a, b) => (order.get(a) ?? -1) - (order.get(b) ?? -1));
  }
}

/** One-line summary: "3 problems affecting 2 snapshots" or "no problems". */
export function summarizeCheck(report: CheckReport): string {
  if (report.ok) return 'no problems found';
  const n = report.problems.length;
  const s = report.affectedSnapshots.length;
  return `${n} problem${n === 1 ? '' : 's'} found, affecting ${s} snapshot${s === 1 ? '' : 's'}`;
}
