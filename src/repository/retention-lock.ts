/**
 * Immutable restore points: Object Lock retention on every object a
 * restore point needs, and what prune, forget and check must know about it.
 *
 * A restore point needs: its snapshot object, every pack holding a blob it
 * refers to (all copies, since readers may use any), for each such pack one
 * index file listing it (the newest, so old index files can expire after a
 * prune has rewritten them), the `config` object and the key files. With
 * those alone the restore point can be opened, listed and restored, even if
 * everything else was deleted.
 *
 * The storage offers retention through `getRetention`/`extendRetention`
 * (S3Storage; the test emulator of test/integration/immutability). They are
 * found through wrappers (RetryingStorage, FaultStorage) via their `inner`
 * storage, and only used when `capabilities.objectLock` says the storage
 * really locks objects. Where it does not, nothing here pretends otherwise:
 * objectLockAvailability says why, and callers report "immutability
 * unavailable".
 */
import { IntegrityError } from '../errors.js';
import { StorageUnsupportedError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import type { SnapshotEntry } from './api.js';
import { loadIndexView, loadTreeFromView, walkTrees, type IndexView } from './check.js';
import {
  CONFIG_KEY,
  INDEX_PREFIX,
  indexKey,
  KEYS_PREFIX,
  packKey,
  parseIndexKey,
  parseKeyFileKey,
  snapshotKey,
} from './layout.js';
import type { IndexedPack } from './maintenance.js';
import type { Repository } from './repository.js';
import { listKeys, mapLimit } from './storageIo.js';
import { referencedBlobs } from './tree.js';

/** Object Lock retention of one object. */
export interface ObjectRetention {
  mode: string;
  retainUntil: Date;
}

/** What a storage must offer to lock objects (S3Storage has it). */
export interface RetentionControl {
  getRetention(key: string): Promise<ObjectRetention | undefined>;
  /**
   * Keep the object locked at least until `until`; never shortens a retention.
   * `known` is its retention as just read (null: none), so it is not read again.
   */
  extendRetention(key: string, until: Date, known?: ObjectRetention | null): Promise<void>;
}

/** Whether a repository's storage can make objects undeletable, and why not. */
export interface LockAvailability {
  available: boolean;
  /** Why not, in words ("local disk storage cannot lock objects"). */
  reason?: string;
}

const hasRetention = (s: unknown): s is RetentionControl =>
  typeof (s as Partial<RetentionControl>).getRetention === 'function' &&
  typeof (s as Partial<RetentionControl>).extendRetention === 'function';

/** The retention API of a storage, looking through wrappers; undefined when it cannot lock objects. */
export function retentionControl(storage: Storage): RetentionControl | undefined {
  if (!storage.capabilities.objectLock) return undefined;
  let s: unknown = storage;
  for (let depth = 0; s && depth < 8; depth++) {
    if (hasRetention(s)) return s;
    s = (s as { inner?: unknown }).inner;
  }
  return undefined;
}

/** Can this repository's storage lock objects? (No requests: decided when the storage was opened.) */
export function objectLockAvailability(repo: Repository): LockAvailability {
  const { storage } = repo.internals();
  if (retentionControl(storage)) return { available: true };
  const url = storage.url;
  if (url.startsWith('file:') || url.startsWith('/'))
    return { available: false, reason: 'local disk storage cannot lock objects' };
  if (url.startsWith('memory:')) return { available: false, reason: 'in-memory storage cannot lock objects' };
  if (url.startsWith('s3:'))
    return {
      available: false,
      reason:
        'the bucket has no S3 Object Lock (it must be enabled when the bucket is created; ' +
        "some S3-compatible servers, such as OpenStack Swift's s3api, have none)",
    };
  return { available: false, reason: 'the storage cannot lock objects' };
}

/** A restore point and the time until which everything it needs must stay locked. */
export interface LockWant {
  snapshot: SnapshotEntry;
  /** ms since the epoch */
  until: number;
}

/** Every object some restore points need, each with the latest time it must stay locked until. */
export interface RequiredObjects {
  /** Storage key → ms since the epoch. */
  objects: Map<string, number>;
  /** Blobs a snapshot refers to that no index file lists (the snapshot is damaged; check says more). */
  missing: string[];
}

/**
 * Collect the objects the restore points need (see the module comment).
 * Snapshots are walked from the latest `until` down, sharing one set of
 * visited trees, so an object shared by several gets the latest of them.
 */
export async function requiredObjects(
  repo: Repository,
  wants: readonly LockWant[],
  opts: { signal?: AbortSignal } = {},
): Promise<RequiredObjects> {
  const objects = new Map<string, number>();
  const missing: string[] = [];
  if (wants.length === 0) return { objects, missing };
  const { storage } = repo.internals();
  const view = await loadIndexView(repo);
  const indexAge = new Map<string, number>();
  for (const o of await listKeys(storage, INDEX_PREFIX)) {
    const id = parseIndexKey(o.key);
    if (id) indexAge.set(id, o.mtimeMs ?? 0);
  }
  const need = (key: string, until: number) => {
    const had = objects.get(key);
    if (had === undefined || had < until) objects.set(key, until);
  };
  const needPacks = new Map<string, number>();
  const needBlob = (id: string, until: number) => {
    const first = view.blobs.get(id);
    if (!first) {
      missing.push(id);
      return;
    }
    for (const packId of [first.packId, ...(view.copies.get(id) ?? [])]) {
      const had = needPacks.get(packId);
      if (had === undefined || had < until) needPacks.set(packId, until);
    }
  };

  const seen = new Set<string>();
  const sorted = [...wants].sort((a, b) => b.until - a.until);
  for (const { snapshot, until } of sorted) {
    need(snapshotKey(snapshot.id), until);
    await walkTrees(
      [snapshot.tree],
      async (id) => {
        if (seen.has(id)) return undefined;
        seen.add(id);
        needBlob(id, until);
        if (!view.blobs.get(id)) return undefined;
        try {
          return await loadTreeFromView(repo, view, id);
        } catch (err) {
          // A damaged tree: lock what can be reached; check reports the damage.
          if (!(err instanceof IntegrityError)) throw err;
          missing.push(id);
          return undefined;
        }
      },
      (_treeId, tree) => {
        for (const node of tree.nodes) for (const d of referencedBlobs(node).data) needBlob(d, until);
      },
      opts.signal ? { signal: opts.signal } : {},
    );
  }

  for (const [packId, until] of needPacks) {
    need(packKey(packId), until);
    const file = newestIndexFile(view, packId, indexAge);
    if (file) need(indexKey(file), until);
  }
  const latest = sorted[0]!.until;
  need(CONFIG_KEY, latest);
  for (const o of await listKeys(storage, KEYS_PREFIX)) if (parseKeyFileKey(o.key)) need(o.key, latest);
  return { objects, missing: [...new Set(missing)] };
}

/** The index file listing `packId` that was written last (ties by name). */
function newestIndexFile(view: IndexView, packId: string, age: Map<string, number>): string | undefined {
  let best: string | undefined;
  for (const file of view.packFiles.get(packId) ?? []) {
    if (
      best === undefined ||
      (age.get(file) ?? 0) > (age.get(best) ?? 0) ||
      ((age.get(file) ?? 0) === (age.get(best) ?? 0) && file > best)
    )
      best = file;
  }
  return best;
}

/** What applyRetention did. */
export interface RetentionApplied {
  /** Objects looked at. */
  objects: number;
  /** Objects whose retention was set or extended now. */
  extended: number;
  /** Objects already locked long enough. */
  alreadyLocked: number;
}

/**
 * Make sure each object is locked at least until its time: read the
 * retention, and where it is shorter (or absent) extend it to that time
 * plus `slackMs` — the slack lets frequent runs skip rewriting retention
 * that was extended a little while ago. Throws when the storage cannot lock.
 */
export async function applyRetention(
  repo: Repository,
  objects: ReadonlyMap<string, number>,
  opts: { slackMs?: number; concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<RetentionApplied> {
  const control = requireControl(repo);
  const slack = opts.slackMs ?? 0;
  let extended = 0;
  let done = 0;
  const entries = [...objects];
  await mapLimit(entries, opts.concurrency ?? concurrencyOf(repo), async ([key, until]) => {
    const current = await control.getRetention(key);
    if (!current || current.retainUntil.getTime() < until) {
      await control.extendRetention(key, new Date(until + slack), current ?? null);
      extended++;
    }
    opts.onProgress?.(++done, entries.length);
  });
  return { objects: entries.length, extended, alreadyLocked: entries.length - extended };
}

/** An object locked for less time than required. */
export interface RetentionShortfall {
  key: string;
  /** ms since the epoch */
  requiredUntil: number;
  /** Absent when the object has no retention at all. */
  retainUntil?: number;
  mode?: string;
}

/** Read the retention of each object and return those locked for less than required. */
export async function findRetentionShortfalls(
  repo: Repository,
  objects: ReadonlyMap<string, number>,
  opts: { concurrency?: number } = {},
): Promise<RetentionShortfall[]> {
  const control = requireControl(repo);
  const out: RetentionShortfall[] = [];
  await mapLimit([...objects], opts.concurrency ?? concurrencyOf(repo), async ([key, requiredUntil]) => {
    const current = await control.getRetention(key);
    if (current && current.retainUntil.getTime() >= requiredUntil) return;
    out.push({
      key,
      requiredUntil,
      ...(current ? { retainUntil: current.retainUntil.getTime(), mode: current.mode } : {}),
    });
  });
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Which of `keys` are locked beyond `now` (key → retain-until ms). Without
 * Object Lock nothing is locked and no request is made.
 */
export async function lockedKeys(
  repo: Repository,
  keys: readonly string[],
  now: number,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const control = retentionControl(repo.internals().storage);
  if (!control || keys.length === 0) return out;
  await mapLimit([...new Set(keys)], concurrencyOf(repo), async (key) => {
    const r = await control.getRetention(key);
    if (r && r.retainUntil.getTime() > now) out.set(key, r.retainUntil.getTime());
  });
  return out;
}

/** An object prune leaves alone because of a retention. */
export interface LockedObject {
  key: string;
  /** ISO-8601: when it can be deleted. */
  lockedUntil: string;
  /** Why it is kept: its own retention, or a locked index file listing it. */
  reason: string;
}

/** What prune must leave alone, decided by planAroundLocks. */
export interface PruneLocks {
  /** Index files prune must not delete. */
  indexFiles: Set<string>;
  /** Packs kept because of a retention, and the locked index files that hold some of them. */
  locked: LockedObject[];
  /** The other locked index files: worth reporting only when prune rewrites the index (see reportedLocks). */
  idleIndexFiles: LockedObject[];
}

/**
 * What a prune reports as kept because of a retention: every locked index
 * file when it rewrites the index (it would otherwise delete them), else
 * only those that hold a pack it would otherwise delete — not the whole
 * locked index on every prune.
 */
export function reportedLocks(locks: PruneLocks, rewritesIndex: boolean): LockedObject[] {
  if (!rewritesIndex || locks.idleIndexFiles.length === 0) return locks.locked;
  return [...locks.locked, ...locks.idleIndexFiles].sort(byKey);
}

function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Change a prune plan so that it never tries to delete a locked object:
 * locked packs (and packs a locked index file lists, which must not go
 * missing under it) move from delete/repack to keep, locked leftovers from
 * delete to keep, and locked index files are reported so prune keeps them.
 * Without Object Lock this changes nothing and makes no request.
 */
export async function planAroundLocks(
  repo: Repository,
  view: IndexView,
  plan: {
    deletePacks: { id: string }[];
    repackPacks: { id: string }[];
    keepPacks: IndexedPack[];
    leftoverDelete: { id: string }[];
    leftoverKeep: { id: string }[];
  },
  now: number,
): Promise<PruneLocks> {
  const result: PruneLocks = { indexFiles: new Set(), locked: [], idleIndexFiles: [] };
  if (!retentionControl(repo.internals().storage)) return result;
  const candidates = [...plan.deletePacks, ...plan.repackPacks, ...plan.leftoverDelete].map((p) =>
    packKey(p.id),
  );
  const locks = await lockedKeys(repo, [...view.fileIds.map(indexKey), ...candidates], now);
  const iso = (ms: number) => new Date(ms).toISOString();

  /** Pack → latest retention among the locked index files listing it. */
  const pinned = new Map<string, { until: number; file: string }>();
  for (const id of view.fileIds) if (locks.has(indexKey(id))) result.indexFiles.add(id);
  /** Locked index files that hold a pack prune would otherwise delete. */
  const holding = new Set<string>();
  if (result.indexFiles.size > 0) {
    for (const [packId, files] of view.packFiles) {
      for (const file of files) {
        const until = locks.get(indexKey(file));
        if (until === undefined) continue;
        const had = pinned.get(packId);
        if (!had || had.until < until) pinned.set(packId, { until, file });
      }
    }
  }
  const hold = (id: string): LockedObject | undefined => {
    const own = locks.get(packKey(id));
    if (own !== undefined) return { key: packKey(id), lockedUntil: iso(own), reason: 'locked' };
    const pin = pinned.get(id);
    if (!pin) return undefined;
    holding.add(pin.file);
    return {
      key: packKey(id),
      lockedUntil: iso(pin.until),
      reason: `listed by locked index file ${indexKey(pin.file)}`,
    };
  };
  for (const list of [plan.deletePacks, plan.repackPacks]) {
    for (let i = list.length - 1; i >= 0; i--) {
      const held = hold(list[i]!.id);
      const pack = view.packs.get(list[i]!.id);
      if (!held || !pack) continue;
      result.locked.push(held);
      plan.keepPacks.push(pack);
      list.splice(i, 1);
    }
  }
  for (let i = plan.leftoverDelete.length - 1; i >= 0; i--) {
    const until = locks.get(packKey(plan.leftoverDelete[i]!.id));
    if (until === undefined) continue;
    result.locked.push({
      key: packKey(plan.leftoverDelete[i]!.id),
      lockedUntil: iso(until),
      reason: 'locked',
    });
    plan.leftoverKeep.push(...plan.leftoverDelete.splice(i, 1));
  }
  for (const id of result.indexFiles) {
    const entry = { key: indexKey(id), lockedUntil: iso(locks.get(indexKey(id))!), reason: 'locked' };
    (holding.has(id) ? result.locked : result.idleIndexFiles).push(entry);
  }
  plan.keepPacks.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  result.locked.sort(byKey);
  return result;
}

function requireControl(repo: Repository): RetentionControl {
  const control = retentionControl(repo.internals().storage);
  if (!control) {
    const why = objectLockAvailability(repo).reason ?? 'the storage cannot lock objects';
    throw new StorageUnsupportedError(`immutability unavailable for ${repo.url}: ${why}`, {
      hint: 'Use an S3 bucket with Object Lock for immutable restore points, or remove immutableFor from the policy.',
    });
  }
  return control;
}

function concurrencyOf(repo: Repository): number {
  return Math.max(1, Math.min(16, repo.internals().storage.capabilities.maxConnections));
}
