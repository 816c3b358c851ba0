/**
 * The positive Object Lock path — against an EMULATION (objectLockStorage.ts),
 * because no storage available to the test suite has Object Lock (local disk
 * has none; the Swift s3api server has none). The emulator refuses to delete
 * a locked object, so a test fails if lifeboat ever tries.
 *
 * Covered: a backup locks every object its restore points need (snapshot,
 * packs, index files, config, keys) until now + immutableFor; later backups
 * extend what retention keeps and nothing else; check verifies the retention
 * and reports an object locked too briefly; status reports it; forget and
 * prune plan around locked objects and finish once the retention ends; a
 * copy into a locking repository locks the copies.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backupJobs } from '../../../src/app/backup.js';
import { checkRepositories } from '../../../src/app/check.js';
import { copyRestorePoints } from '../../../src/app/copy.js';
import { forgetSnapshots } from '../../../src/app/forget.js';
import { pruneRepository } from '../../../src/app/prune.js';
import { openConfiguredRepository } from '../../../src/app/repositories.js';
import { collectStatus } from '../../../src/app/status.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import type { PruneOutcome } from '../../../src/repository/prune.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { registerStorageScheme } from '../../../src/storage/registry.js';
import { initRepo, makeSandbox, type Sandbox } from '../copy/copyFixture.js';
import { ObjectLockStorage } from './objectLockStorage.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** memory:// repositories of this file live behind the Object Lock emulator, timed by the sandbox clock. */
const lockStores = new Map<string, ObjectLockStorage>();
let clockNow: () => number = () => 0;
registerStorageScheme('memory', async (url) => {
  let store = lockStores.get(url);
  if (!store) {
    store = new ObjectLockStorage(new MemoryStorage(url), () => clockNow());
    lockStores.set(url, store);
  }
  return store;
});

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
  lockStores.clear();
});

async function setup(policies: string, repositories?: (dir: string) => string, jobRepositories = '[a]') {
  const name = `memory://locked-${randomBytes(4).toString('hex')}`;
  sb = await makeSandbox({
    repositories:
      repositories ??
      (() => ['  a:', `    url: ${name}`, '    password: env:LB_PW_A', '    packSize: 1MiB'].join('\n')),
    policies,
    policy: 'immutable',
    jobRepositories,
  });
  const s = sb;
  clockNow = () => s.clock.now();
  const config = await s.load();
  return { sb: s, config, name };
}

async function backup(config: LifeboatConfig, s: Sandbox) {
  const [r] = await backupJobs(config, { jobs: ['site'] }, s.deps);
  expect(r?.outcome).toBe('success');
  return r!;
}

async function journalDetails(config: LifeboatConfig, s: Sandbox, kind: string) {
  const repo = await openConfiguredRepository(config, 'a', s.deps);
  try {
    return (await repo.listJournal()).records.filter((r) => r.kind === kind).map((r) => r.details ?? {});
  } finally {
    await repo.close();
  }
}

async function storedKeys(store: ObjectLockStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) out.push(o.key);
  return out.sort();
}

describe('immutable restore points (emulated Object Lock)', () => {
  it('a backup locks everything its restore point needs; check and status verify it', async () => {
    const { sb: s, config, name } = await setup('  immutable: { rpo: 1d, immutableFor: 30d }');
    await initRepo(config, 'a', s.clock);
    const store = lockStores.get(name)!;
    const b = await backup(config, s);
    const [details] = await journalDetails(config, s, 'backup');
    const until = s.clock.now() + 30 * DAY;
    expect(details!.immutability).toMatchObject({
      state: 'locked',
      lockedUntil: new Date(until).toISOString(),
    });

    // Every object of the repository belongs to this one restore point: all are locked, locks and journal aside.
    const keys = (await storedKeys(store)).filter(
      (k) => !k.startsWith('journal/') && !k.startsWith('locks/'),
    );
    expect(keys).toContain(`snapshots/${b.snapshotId}`);
    expect(keys.filter((k) => k.startsWith('data/')).length).toBeGreaterThanOrEqual(3);
    for (const key of keys) {
      const r = store.retention.get(key);
      expect(r, key).toBeDefined();
      expect(r!.mode).toBe('COMPLIANCE');
      expect(r!.retainUntil.getTime()).toBeGreaterThanOrEqual(until);
      expect(r!.retainUntil.getTime()).toBeLessThanOrEqual(until + DAY); // the slack of one day
    }

    // A locked object cannot be deleted, not even by mistake.
    await expect(store.delete(`snapshots/${b.snapshotId}`)).rejects.toThrow(/locked until/);

    s.clock.advance(HOUR);
    let [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'none' } }, s.deps);
    expect(check!.report?.ok).toBe(true);
    expect(check!.report?.notes.join('\n')).toMatch(/retention verified: \d+ objects of 1 restore points/);
    let status = await collectStatus(config, {}, s.deps);
    expect(status.jobs[0]!.repositories[0]!.immutability).toMatchObject({ state: 'ok', targetState: 'ok' });
    expect(status.ok).toBe(true);

    // Someone removed the retention of a pack and of the snapshot: check and status say so.
    const pack = keys.find((k) => k.startsWith('data/'))!;
    store.dropRetention(pack);
    store.dropRetention(`snapshots/${b.snapshotId}`);
    [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'none' } }, s.deps);
    expect(check!.report?.ok).toBe(false);
    const problems = check!.report!.problems.filter((p) => p.kind === 'immutability');
    expect(problems.map((p) => p.object).sort()).toEqual([pack, `snapshots/${b.snapshotId}`].sort());
    expect(problems[0]!.message).toMatch(/has no retention/);
    expect(check!.report!.affectedSnapshots.map((a) => a.id)).toEqual([b.snapshotId]);
    status = await collectStatus(config, {}, s.deps);
    expect(status.ok).toBe(false);
    expect(status.breached).toEqual(['site']);
    expect(status.jobs[0]!.repositories[0]!.immutability).toMatchObject({ state: 'not-locked' });

    // The next backup locks again what the kept restore points need.
    s.clock.advance(HOUR);
    await backup(config, s);
    [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'none' } }, s.deps);
    expect(check!.report?.problems).toEqual([]);
  });

  it('extends the restore points retention keeps, and only those', async () => {
    const {
      sb: s,
      config,
      name,
    } = await setup('  immutable: { rpo: 1d, immutableFor: 10d, retention: { last: 1 } }');
    await initRepo(config, 'a', s.clock);
    const store = lockStores.get(name)!;
    const first = await backup(config, s);
    const firstUntil = store.retention.get(`snapshots/${first.snapshotId}`)!.retainUntil.getTime();
    s.clock.advance(2 * DAY);
    await writeFile(join(s.source, 'pages', 'index.html'), '<h1>changed</h1>\n');
    const second = await backup(config, s);
    // last: 1 keeps only the second: the first keeps its old retention.
    expect(store.retention.get(`snapshots/${first.snapshotId}`)!.retainUntil.getTime()).toBe(firstUntil);
    expect(
      store.retention.get(`snapshots/${second.snapshotId}`)!.retainUntil.getTime(),
    ).toBeGreaterThanOrEqual(s.clock.now() + 10 * DAY);
  });

  it('forget and prune plan around locked objects and finish once the retention ends', async () => {
    const {
      sb: s,
      config,
      name,
    } = await setup('  immutable: { rpo: 30d, immutableFor: 10d, retention: { last: 1 } }');
    await initRepo(config, 'a', s.clock);
    const store = lockStores.get(name)!;
    const t0 = s.clock.now();
    const old = await backup(config, s);
    // Locked until t0 + 10d (+ 1d slack). Five days later the big file is replaced: its packs are
    // needed only by the old restore point.
    s.clock.set(t0 + 5 * DAY);
    await rm(join(s.source, 'random.bin'));
    await writeFile(join(s.source, 'other.bin'), randomBytes(1024 * 1024));
    await backup(config, s);

    // Retention forgets the old snapshot, but it is locked: forget leaves it and says until when.
    const [forget] = await forgetSnapshots(config, { jobs: ['site'], dryRun: false }, s.deps);
    expect(forget!.forgotten).toBe(0);
    expect(forget!.locked).toEqual([{ id: old.snapshotId, lockedUntil: expect.any(String) }]);
    expect(Date.parse(forget!.locked![0]!.lockedUntil)).toBe(t0 + 11 * DAY);
    let prune = await pruneRepository(config, 'a', { dryRun: false, leftoverMinAgeMs: 0 }, s.deps);
    expect((prune.summary as PruneOutcome).packsDeleted).toBe(0);

    // After t0 + 11d the old snapshot's own lock has ended: forget removes it. Its packs are still listed
    // by an index file the newer restore point keeps locked (until t0 + 16d), so prune keeps them and says why.
    s.clock.set(t0 + 12 * DAY);
    const [forget2] = await forgetSnapshots(config, { jobs: ['site'], dryRun: false }, s.deps);
    expect(forget2!.forgotten).toBe(1);
    expect(forget2!.locked).toBeUndefined();
    prune = await pruneRepository(config, 'a', { dryRun: false, leftoverMinAgeMs: 0 }, s.deps);
    const locked = prune.summary.locked ?? [];
    expect(locked.length).toBeGreaterThan(0);
    expect(locked.some((l) => l.key.startsWith('index/') && l.reason === 'locked')).toBe(true);
    expect(
      locked.some((l) => l.key.startsWith('data/') && l.reason.startsWith('listed by locked index file')),
    ).toBe(true);
    for (const l of locked) expect(Date.parse(l.lockedUntil)).toBeGreaterThan(s.clock.now());
    let [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'all' } }, s.deps);
    expect(check!.report?.problems).toEqual([]);
    expect(check!.report?.stats.unusedBlobs).toBeGreaterThan(0); // kept because locked

    // Once every retention has ended, prune removes what no snapshot needs.
    s.clock.set(t0 + 17 * DAY);
    prune = await pruneRepository(config, 'a', { dryRun: false, leftoverMinAgeMs: 0 }, s.deps);
    expect(prune.summary.locked).toBeUndefined();
    expect((prune.summary as PruneOutcome).packsDeleted).toBeGreaterThan(0);
    [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'all' } }, s.deps);
    expect(check!.report?.ok).toBe(true);
    expect(check!.report?.stats.unusedBlobs).toBe(0);

    // Lifeboat never even tried to delete a locked object.
    expect(store.refused).toEqual([]);
  });

  it('a copy into a repository with Object Lock locks the copied restore points', async () => {
    const lockedUrl = `memory://locked-${randomBytes(4).toString('hex')}`;
    const { sb: s, config } = await setup(
      '  immutable: { rpo: 1d, immutableFor: 7d }',
      (dir) =>
        [
          '  b:',
          `    url: file://${join(dir, 'repo-b')}`,
          '    password: env:LB_PW_B',
          '  a:',
          `    url: ${lockedUrl}`,
          '    password: env:LB_PW_A',
        ].join('\n'),
      '[b, a]',
    );
    await initRepo(config, 'a', s.clock);
    await initRepo(config, 'b', s.clock);
    const [b] = await backupJobs(config, { jobs: ['site'] }, s.deps);
    expect(b?.repository).toBe('b');
    // b is local disk: the backup says immutability is unavailable there.
    expect(
      s.logs.some((l) => l.level === 'warn' && /immutability unavailable for repository b/.test(l.message)),
    ).toBe(true);
    const copy = await copyRestorePoints(
      config,
      { from: 'b', to: 'a', jobs: ['site'], dryRun: false },
      s.deps,
    );
    expect(copy.jobs[0]!.immutability).toMatchObject({ state: 'locked', restorePoints: 1 });
    const store = lockStores.get(lockedUrl)!;
    const copied = copy.jobs[0]!.copied[0]!.targetId!;
    expect(store.retention.get(`snapshots/${copied}`)!.retainUntil.getTime()).toBeGreaterThanOrEqual(
      s.clock.now() + 7 * DAY,
    );
    const [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'none' } }, s.deps);
    expect(check!.report?.ok).toBe(true);
  });
});
