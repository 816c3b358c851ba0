import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode, RepositoryLockedError } from '../../../src/errors.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import { acquireLock, formatAge, listLocks, type LockContext } from '../../../src/repository/locks.js';
import { T0, testOptions } from './helpers.js';

const open: Repository[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

async function twoProcesses() {
  const storage = new MemoryStorage('memory://locks');
  const clock = new FakeClock(T0);
  const a = await initRepository(storage, 'pw', testOptions({ clock, host: 'alpha', pid: 111 }));
  const b = await openRepository(storage, 'pw', testOptions({ clock, host: 'beta', pid: 222 }));
  open.push(a, b);
  return { storage, clock, a, b };
}

const lockCount = async (storage: MemoryStorage) => {
  let n = 0;
  for await (const _ of storage.list('locks/')) n++;
  return n;
};

describe('locks', () => {
  it('lets shared locks coexist', async () => {
    const { a, b, storage } = await twoProcesses();
    const la = await a.lock({ exclusive: false, purpose: 'backup web' });
    const lb = await b.lock({ exclusive: false, purpose: 'backup db' });
    expect(await lockCount(storage)).toBe(2);
    await la.release();
    await lb.release();
    expect(await lockCount(storage)).toBe(0);
  });

  it('refuses an exclusive lock while a shared one is held, naming host, pid and age', async () => {
    const { a, b, clock } = await twoProcesses();
    await a.lock({ exclusive: false, purpose: 'backup web' });
    clock.advance(4 * 60_000);
    const err = await b.lock({ exclusive: true, purpose: 'prune' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryLockedError);
    expect((err as RepositoryLockedError).exitCode).toBe(ExitCode.repositoryLocked);
    expect((err as Error).message).toBe(
      'repository memory://locks is locked: shared lock for "backup web" held by alpha (pid 111, user tester), last refreshed 4 min old',
    );
    expect((err as RepositoryLockedError).hint).toMatch(/wait for it to finish/);
  });

  it('refuses a shared lock while an exclusive one is held', async () => {
    const { a, b, storage } = await twoProcesses();
    await a.lock({ exclusive: true, purpose: 'prune' });
    await expect(b.lock({ exclusive: false })).rejects.toThrow(/exclusive lock for "prune" held by alpha/);
    expect(await lockCount(storage)).toBe(1);
  });

  it('makes two racing exclusive lockers both back off', async () => {
    const { a, b, storage } = await twoProcesses();
    // A barrier on the first two listings: both pass the first check before either writes its lock.
    const list = storage.list.bind(storage);
    let arrived = 0;
    let open!: () => void;
    const barrier = new Promise<void>((resolve) => (open = resolve));
    storage.list = (prefix: string) => {
      if (prefix !== 'locks/' || arrived >= 2) return list(prefix);
      if (++arrived === 2) open();
      return (async function* () {
        await barrier;
        yield* list(prefix);
      })();
    };
    const results = await Promise.allSettled([a.lock({ exclusive: true }), b.lock({ exclusive: true })]);
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected.length).toBe(2);
    for (const r of rejected)
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(RepositoryLockedError);
    expect(await lockCount(storage)).toBe(0);
  });

  it('reports a lock not refreshed for 30 minutes as stale and removes it with unlock', async () => {
    const { a, b, clock, storage } = await twoProcesses();
    await a.lock({ exclusive: false, purpose: 'backup web' });
    clock.advance(31 * 60_000);
    const err = (await b.lock({ exclusive: true }).catch((e: unknown) => e)) as RepositoryLockedError;
    expect(err.message).toMatch(/last refreshed 31 min old \(stale\)/);
    expect(err.hint).toMatch(/lifeboat repo unlock/);
    const [info] = await b.listLocks();
    expect(info).toMatchObject({ stale: true, exclusive: false, record: { host: 'alpha', pid: 111 } });
    const removed = await b.unlock();
    expect(removed).toHaveLength(1);
    expect(await lockCount(storage)).toBe(0);
    const prune = await b.lock({ exclusive: true });
    await prune.release();
  });

  it('keeps a refreshed lock fresh (refresh replaces the object)', async () => {
    const { a, b, clock, storage } = await twoProcesses();
    const lock = await a.lock({ exclusive: false });
    const firstId = lock.id;
    clock.advance(25 * 60_000);
    await lock.refresh();
    expect(lock.id).not.toBe(firstId);
    expect(await lockCount(storage)).toBe(1);
    clock.advance(25 * 60_000);
    expect((await b.listLocks())[0]!.stale).toBe(false);
    expect(await b.unlock()).toEqual([]);
    expect(await lockCount(storage)).toBe(1);
    lock.assertHeld();
  });

  it('unlock --force removes live locks, and the holder notices at its next refresh', async () => {
    const { a, b, storage } = await twoProcesses();
    const lock = await a.lock({ exclusive: true });
    expect(await b.unlock({ force: true })).toHaveLength(1);
    expect(await lockCount(storage)).toBe(0);
    await lock.refresh();
    expect(() => lock.assertHeld()).toThrow(/removed by someone else/);
  });

  it('treats an unreadable lock as exclusive, stale only by its storage age', async () => {
    const { a, storage } = await twoProcesses();
    await storage.put('locks/' + 'f'.repeat(32), Buffer.from('garbage'));
    await expect(a.lock({ exclusive: false })).rejects.toThrow(/unreadable lock/);
    const [info] = await a.listLocks();
    // MemoryStorage reports mtime 0: decades old, so stale.
    expect(info).toMatchObject({ exclusive: true, stale: true });
    expect(await a.unlock()).toHaveLength(1);
  });

  it('close() releases locks still held', async () => {
    const { a, storage } = await twoProcesses();
    await a.lock({ exclusive: false });
    await a.close();
    expect(await lockCount(storage)).toBe(0);
  });

  it('detects a conflicting lock written between its first check and its own write', async () => {
    const { a, storage, clock } = await twoProcesses();
    const internals = a.internals();
    const ctx: LockContext = {
      storage,
      encryptionKey: internals.master.encryption,
      clock,
      host: 'gamma',
      pid: 3,
    };
    // Wrap list() so that a rival takes its lock right after our first (empty) listing.
    const list = storage.list.bind(storage);
    let calls = 0;
    storage.list = (prefix: string) => {
      if (prefix === 'locks/' && ++calls === 1) {
        return (async function* () {
          yield* list(prefix);
          await acquireLock({ ...ctx, host: 'rival' }, { exclusive: true });
        })();
      }
      return list(prefix);
    };
    await expect(acquireLock(ctx, { exclusive: true })).rejects.toBeInstanceOf(RepositoryLockedError);
    storage.list = list;
    const left = await listLocks(ctx);
    expect(left.map((l) => l.record?.host)).toEqual(['rival']);
  });

  it('formats ages', () => {
    expect(formatAge(59_000)).toBe('0 min');
    expect(formatAge(90 * 60_000)).toBe('1 h 30 min');
    expect(formatAge(50 * 3600_000)).toBe('2 d 2 h');
  });
});
