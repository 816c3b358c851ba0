/**
 * Repository locks (docs/repository-format.md §12): sealed `locks/<id>`
 * objects. Shared locks (backup, copy, drill) coexist; an exclusive lock
 * (prune) excludes everything. Holders refresh their lock; a lock not
 * refreshed for 30 minutes is stale — still respected, but reported as such
 * so a person can remove it with `lifeboat repo unlock`.
 */
import { RepositoryLockedError } from '../errors.js';
import type { Clock } from '../platform/clock.js';
import type { Storage } from '../storage/types.js';
import { associatedData, randomHex } from './crypto.js';
import { lockKey, LOCKS_PREFIX, parseLockKey } from './layout.js';
import { decodeMetadataObject, encodeMetadataObject } from './metadataObject.js';
import { listKeys, mapLimit, readObject } from './storageIo.js';

export const LOCK_STALE_AFTER_MS = 30 * 60 * 1000;
export const LOCK_REFRESH_EVERY_MS = 5 * 60 * 1000;

/** The body of a lock object. */
export interface LockRecord {
  v: 1;
  host: string;
  pid: number;
  user?: string;
  exclusive: boolean;
  /** What the holder does, e.g. "backup web" (shown in conflicts). */
  purpose?: string;
  createdAt: string;
  refreshedAt: string;
}

/** A lock as listed. `record` is absent when the object could not be read. */
export interface LockInfo {
  id: string;
  record?: LockRecord;
  /** Why the lock object could not be read. */
  unreadable?: string;
  /** Time since the last refresh (or since the object was written, for unreadable ones), if known. */
  ageMs: number | undefined;
  stale: boolean;
  /** Unreadable locks count as exclusive: nobody can tell what they protect. */
  exclusive: boolean;
}

export interface LockContext {
  storage: Storage;
  encryptionKey: Uint8Array;
  clock: Clock;
  host: string;
  pid: number;
  user?: string;
  staleAfterMs?: number;
  refreshEveryMs?: number;
}

export interface AcquireLockOptions {
  exclusive: boolean;
  purpose?: string;
}

const iso = (clock: Clock) => new Date(clock.now()).toISOString();

/** "4 min", "2 h 5 min", "3 d 4 h". */
export function formatAge(ms: number): string {
  const min = Math.floor(ms / 60_000);
  if (min < 60) return `${Math.max(0, min)} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function validateLockRecord(value: unknown): LockRecord | string {
  const r = value as Partial<LockRecord> | null;
  if (typeof r !== 'object' || r === null || r.v !== 1) return 'it is not a version 1 lock record';
  if (typeof r.host !== 'string' || typeof r.pid !== 'number' || typeof r.exclusive !== 'boolean') {
    return 'host, pid or exclusive is missing';
  }
  if (typeof r.createdAt !== 'string' || typeof r.refreshedAt !== 'string') return 'its times are missing';
  return r as LockRecord;
}

async function writeLockObject(ctx: LockContext, id: string, record: LockRecord): Promise<void> {
  const bytes = encodeMetadataObject(ctx.encryptionKey, associatedData.lock(id), record, false);
  await ctx.storage.put(lockKey(id), bytes, { ifNoneMatch: true, size: bytes.length });
}

/** Every lock in the repository, readable or not, with its age and staleness. */
export async function listLocks(ctx: LockContext): Promise<LockInfo[]> {
  const staleAfter = ctx.staleAfterMs ?? LOCK_STALE_AFTER_MS;
  const now = ctx.clock.now();
  const objects = (await listKeys(ctx.storage, LOCKS_PREFIX)).filter((o) => parseLockKey(o.key));
  const infos = await mapLimit(objects, 8, async (o): Promise<LockInfo | undefined> => {
    const id = parseLockKey(o.key)!;
    const unreadable = (reason: string): LockInfo => {
      const ageMs = o.mtimeMs === undefined ? undefined : now - o.mtimeMs;
      return {
        id,
        unreadable: reason,
        ageMs,
        stale: ageMs !== undefined && ageMs > staleAfter,
        exclusive: true,
      };
    };
    let bytes: Buffer;
    try {
      bytes = await readObject(ctx.storage, o.key);
    } catch (err) {
      // Released between list and read: not a lock any more.
      if ((await ctx.storage.stat(o.key)) === undefined) return undefined;
      return unreadable(`it could not be read (${(err as Error).message})`);
    }
    const decoded = decodeMetadataObject(ctx.encryptionKey, associatedData.lock(id), bytes);
    if (!decoded.ok) return unreadable(decoded.reason);
    const record = validateLockRecord(decoded.value);
    if (typeof record === 'string') return unreadable(record);
    const refreshed = Date.parse(record.refreshedAt);
    const ageMs = Number.isFinite(refreshed) ? now - refreshed : undefined;
    return {
      id,
      record,
      ageMs,
      stale: ageMs === undefined || ageMs > staleAfter,
      exclusive: record.exclusive,
    };
  });
  return infos.filter((i): i is LockInfo => i !== undefined);
}

/** Does a lock of kind `exclusive` conflict with `other`? */
const conflicts = (exclusive: boolean, other: LockInfo) => exclusive || other.exclusive;

/** One line describing a lock for messages. */
export function describeLock(lock: LockInfo): string {
  const age = lock.ageMs === undefined ? 'of unknown age' : `${formatAge(lock.ageMs)} old`;
  if (!lock.record) return `an unreadable lock ${lock.id} (${lock.unreadable}), ${age}`;
  const r = lock.record;
  const what = `${r.exclusive ? 'exclusive' : 'shared'} lock${r.purpose ? ` for "${r.purpose}"` : ''}`;
  return `${what} held by ${r.host} (pid ${r.pid}${r.user ? `, user ${r.user}` : ''}), last refreshed ${age}${lock.stale ? ' (stale)' : ''}`;
}

function lockedError(url: string, blocking: LockInfo[]): RepositoryLockedError {
  const first = blocking[0]!;
  const more = blocking.length > 1 ? ` and ${blocking.length - 1} more` : '';
  const hint = blocking.every((l) => l.stale)
    ? `The lock was not refreshed for over ${formatAge(LOCK_STALE_AFTER_MS)}, so its process has probably died. ` +
      `If no lifeboat runs on ${first.record?.host ?? 'the host that wrote it'}, remove it with \`lifeboat repo unlock\`.`
    : 'Another lifeboat process is working on this repository; wait for it to finish and try again. ' +
      'If you are sure it is gone, `lifeboat repo unlock --force` removes every lock.';
  return new RepositoryLockedError(`repository ${url} is locked: ${describeLock(first)}${more}`, {
    hint,
    details: {
      locks: blocking.map((l) => ({
        id: l.id,
        host: l.record?.host,
        pid: l.record?.pid,
        exclusive: l.exclusive,
        ageMs: l.ageMs,
        stale: l.stale,
      })),
    },
  });
}

/** A lock this process holds; refreshes itself until released. */
export class RepositoryLock {
  private currentId: string;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lostError: RepositoryLockedError | undefined;
  private released = false;
  /** The last refresh failure, if the latest attempt failed. */
  lastRefreshError: unknown;

  constructor(
    private readonly ctx: LockContext,
    id: string,
    private readonly record: LockRecord,
  ) {
    this.currentId = id;
  }

  get id(): string {
    return this.currentId;
  }

  get exclusive(): boolean {
    return this.record.exclusive;
  }

  /** Start refreshing in the background (does not keep the process alive). */
  startRefreshing(): void {
    const every = this.ctx.refreshEveryMs ?? LOCK_REFRESH_EVERY_MS;
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => {
        this.lastRefreshError = err;
      });
    }, every);
    this.timer.unref();
  }

  /** Replace the lock object by one with a new refresh time (objects are never overwritten). */
  async refresh(): Promise<void> {
    if (this.released || this.lostError) return;
    const oldId = this.currentId;
    if ((await this.ctx.storage.stat(lockKey(oldId))) === undefined) {
      this.lostError = new RepositoryLockedError(
        `the lock ${oldId} on ${this.ctx.storage.url} was removed by someone else while this process held it`,
        { hint: 'Another process ran `lifeboat repo unlock --force`; run the command again.' },
      );
      this.stopTimer();
      return;
    }
    const newId = randomHex(16);
    this.record.refreshedAt = iso(this.ctx.clock);
    await writeLockObject(this.ctx, newId, this.record);
    this.currentId = newId;
    this.lastRefreshError = undefined;
    await this.ctx.storage.delete(lockKey(oldId));
  }

  /** Throw if the lock was removed behind this process's back (check before destructive steps). */
  assertHeld(): void {
    if (this.lostError) throw this.lostError;
    if (this.released) throw new Error('lock already released');
  }

  /** Stop refreshing and delete the lock object. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimer();
    await this.ctx.storage.delete(lockKey(this.currentId));
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Take a lock. Checks for conflicts, writes the lock, then checks again so
 * that two processes racing for conflicting locks both back off.
 */
export async function acquireLock(ctx: LockContext, opts: AcquireLockOptions): Promise<RepositoryLock> {
  const blockingBefore = (await listLocks(ctx)).filter((l) => conflicts(opts.exclusive, l));
  if (blockingBefore.length > 0) throw lockedError(ctx.storage.url, blockingBefore);
  const now = iso(ctx.clock);
  const record: LockRecord = {
    v: 1,
    host: ctx.host,
    pid: ctx.pid,
    ...(ctx.user === undefined ? {} : { user: ctx.user }),
    exclusive: opts.exclusive,
    ...(opts.purpose === undefined ? {} : { purpose: opts.purpose }),
    createdAt: now,
    refreshedAt: now,
  };
  const id = randomHex(16);
  await writeLockObject(ctx, id, record);
  const blockingAfter = (await listLocks(ctx)).filter((l) => l.id !== id && conflicts(opts.exclusive, l));
  if (blockingAfter.length > 0) {
    await ctx.storage.delete(lockKey(id));
    throw lockedError(ctx.storage.url, blockingAfter);
  }
  const lock = new RepositoryLock(ctx, id, record);
  lock.startRefreshing();
  return lock;
}

/** Remove stale (and stale unreadable) locks; with `force`, every lock. Returns what was removed. */
export async function removeLocks(ctx: LockContext, opts: { force?: boolean } = {}): Promise<LockInfo[]> {
  const removed: LockInfo[] = [];
  for (const lock of await listLocks(ctx)) {
    if (opts.force || lock.stale) {
      await ctx.storage.delete(lockKey(lock.id));
      removed.push(lock);
    }
  }
  return removed;
}
