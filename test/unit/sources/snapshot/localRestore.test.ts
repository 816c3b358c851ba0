/**
 * Local restore points of ZFS and LVM snapshot jobs — WITH FAKE `zfs` / LVM
 * TOOLS (test/helpers/fakebin; there is no ZFS or LVM on the test machines),
 * but a real repository on local storage, the real files backup and restore,
 * and real files in the directories where the fakes "mount" the snapshots.
 * They prove the listing, the choice of the local snapshot, the intactness
 * check and the local-first restore on those providers' paths; not that real
 * ZFS or LVM behave as the fakes do. Also: the per-chunk fallback to the
 * repository when data in the snapshot differs (restoring without the check,
 * as if a change had slipped past it).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCleanups } from '../../../../src/platform/cleanup.js';
import { FakeClock } from '../../../../src/platform/clock.js';
import { silentLogger } from '../../../../src/platform/logger.js';
import type { SnapshotEntry } from '../../../../src/repository/api.js';
import { initRepository, type Repository } from '../../../../src/repository/repository.js';
import { backupFiles, restoreTree } from '../../../../src/sources/files/index.js';
import {
  backupSnapshot,
  checkLocalAgainstTree,
  chooseLocalSnapshot,
  listLocalSnapshots,
  LocalFirstRepo,
  type SnapshotJobSpec,
} from '../../../../src/sources/snapshot/index.js';
import { LocalStorage } from '../../../../src/storage/local.js';
import { fakeWorld, type FakeWorld } from './fakeTools.js';

const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const N = 'lifeboat-tank-20250301T120000.000Z';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let w: FakeWorld;
let repo: Repository;
/** The live path the snapshots stand for (its parents are recorded from the live system). */
let SOURCE: string;

const zfsSpec = (extra: Partial<SnapshotJobSpec> = {}): SnapshotJobSpec => ({
  job: 'tank',
  provider: 'zfs',
  source: SOURCE,
  zfs: { dataset: 'tank/data' },
  keepLocal: 1,
  ...extra,
});
const lvmSpec = (): SnapshotJobSpec => ({
  job: 'tank',
  provider: 'lvm',
  source: SOURCE,
  lvm: { volumeGroup: 'vg0', logicalVolume: 'data', snapshotSize: '1G' },
  keepLocal: 1,
});

/** What the snapshot holds: several chunks, a symlink, nested directories. */
async function populate(dir: string): Promise<void> {
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'alpha\n');
  await writeFile(join(dir, 'sub', 'deeper', 'b.txt'), 'bravo\n'.repeat(1000));
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2246822519) >>> 0, i);
  await writeFile(join(dir, 'big.bin'), big);
  await symlink('sub/deeper/b.txt', join(dir, 'link'));
}

/** Back up a job whose snapshot the fakes "take" empty: fill it, then back it up as the app does. */
async function backUp(spec: SnapshotJobSpec, env: NodeJS.ProcessEnv) {
  const result = await backupSnapshot(repo, spec, {
    logger: silentLogger,
    clock: new FakeClock(T0),
    env,
    mountRoot: w.mountRoot,
    backupTree: async (dir, displayPath, hints) => {
      await populate(dir);
      return backupFiles(
        hints.repo,
        {
          paths: [displayPath],
          include: [],
          exclude: [],
          oneFileSystem: false,
          xattrs: false,
          readFrom: { physical: dir, logical: displayPath },
        },
        { logger: silentLogger },
      );
    },
  });
  await sleep(5); // the backup ends after the snapshot's files were written
  const entry: Pick<SnapshotEntry, 'tree' | 'endedAt' | 'host' | 'fingerprint'> = {
    tree: result.tree,
    endedAt: new Date().toISOString(),
    host: 'here',
    fingerprint: { ...result.fingerprint },
  };
  return { result, entry };
}

async function sha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

beforeEach(async () => {
  w = await fakeWorld();
  SOURCE = join(w.dir, 'live', 'data');
  await mkdir(SOURCE, { recursive: true });
  const storage = await LocalStorage.create(pathToFileURL(join(w.dir, 'repo')).href);
  repo = await initRepository(storage, 'local restore unit test', {
    clock: new FakeClock(T0),
    host: 'here',
    kdf: { N: 1024, r: 8, p: 1 },
    compressionWorkers: 1,
  });
});
afterEach(async () => {
  await runCleanups();
  await repo.close();
  await w.dispose();
});

describe('local restore points with fake ZFS', () => {
  it('lists, checks and restores from the kept snapshot; falls back per chunk when data differs', async () => {
    const mp = join(w.dir, 'tank-data');
    await mkdir(mp);
    const env = w.env({ FAKE_ZFS_MOUNTPOINT: mp });
    const { result, entry } = await backUp(zfsSpec(), env);
    expect(result.snapshot.keptLocally).toBe(true);
    const keptPath = join(mp, '.zfs', 'snapshot', `${N}.kept`);

    const ctx = { logger: silentLogger, env };
    expect(await listLocalSnapshots(zfsSpec(), ctx, { check: true })).toEqual([
      {
        job: 'tank',
        provider: 'zfs',
        name: `${N}.kept`,
        id: `tank/data@${N}.kept`,
        createdAt: new Date(T0).toISOString(),
        path: keptPath,
        backupName: N,
        location: 'local',
      },
    ]);

    const choice = await chooseLocalSnapshot({
      spec: zfsSpec(),
      paths: [],
      repo,
      snapshot: entry,
      host: 'here',
      ctx,
    });
    expect(choice).toMatchObject({
      use: true,
      local: { name: `${N}.kept`, path: keptPath },
      check: { ok: true, entries: 7 },
    });
    if (!choice.use) throw new Error('unreachable');
    const view = new LocalFirstRepo(repo, entry.tree, choice.opened.path, SOURCE, silentLogger);
    const target = join(w.dir, 'restored');
    const restored = await restoreTree(view, entry.tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    await choice.opened.close();
    expect(restored.errors).toEqual([]);
    expect(view.stats).toMatchObject({ repositoryChunks: 0, differing: [] });
    expect(view.stats.localChunks).toBeGreaterThanOrEqual(4);
    for (const f of ['a.txt', 'big.bin', 'sub/deeper/b.txt'])
      expect(await sha(join(target, SOURCE, f)), f).toBe(await sha(join(keptPath, f)));

    // Data changed in the snapshot (same size; a fake snapshot is writable), restored without the
    // check: that chunk comes from the repository and the restored file is still the backed-up one.
    const original = await readFile(join(keptPath, 'big.bin'));
    const tampered = Buffer.from(original);
    tampered[2 * 1024 * 1024] = tampered[2 * 1024 * 1024]! ^ 0xff;
    await writeFile(join(keptPath, 'big.bin'), tampered);
    const view2 = new LocalFirstRepo(repo, entry.tree, keptPath, SOURCE, silentLogger);
    const target2 = join(w.dir, 'restored-2');
    const again = await restoreTree(view2, entry.tree, target2, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    expect(again.errors).toEqual([]);
    expect(view2.stats.repositoryChunks).toBe(1);
    expect(view2.stats.differing).toEqual([join(keptPath, 'big.bin')]);
    // (Buffer.equals: a deep toEqual of megabytes takes half a minute.)
    expect((await readFile(join(target2, SOURCE, 'big.bin'))).equals(original)).toBe(true);

    // The intactness check sees the change (ctime after the backup) and restore would not use it.
    const after = await chooseLocalSnapshot({
      spec: zfsSpec(),
      paths: [],
      repo,
      snapshot: entry,
      host: 'here',
      ctx,
    });
    expect(after).toMatchObject({
      use: false,
      reason: expect.stringMatching(/differs from the backup: big\.bin was changed after the backup/),
    });
  });

  it('says why no local snapshot is used: none kept, another host, pruned, no recorded name', async () => {
    const mp = join(w.dir, 'tank-data');
    await mkdir(mp);
    const env = w.env({ FAKE_ZFS_MOUNTPOINT: mp });
    const ctx = { logger: silentLogger, env };
    const { entry } = await backUp(zfsSpec({ keepLocal: 0 }), env);
    const choose = (snapshot = entry, spec = zfsSpec({ keepLocal: 0 })) =>
      chooseLocalSnapshot({ spec, paths: [], repo, snapshot, host: 'here', ctx });
    expect(await choose()).toEqual({ use: false, reason: 'the job keeps no local snapshots (keepLocal: 0)' });
    expect(await choose({ ...entry, host: 'elsewhere' })).toMatchObject({
      reason: expect.stringContaining('taken on host elsewhere'),
    });
    expect(await choose(entry, zfsSpec())).toMatchObject({
      reason: `local snapshot ${N}.kept is not on this machine (pruned or deleted)`,
    });
    expect(await choose({ ...entry, fingerprint: {} })).toMatchObject({
      reason: expect.stringContaining('does not record'),
    });
  });
});

describe('local restore points with fake LVM', () => {
  it('mounts the kept snapshot to check and restore it, and unmounts it again', async () => {
    await w.addLv('vg0', 'data');
    const env = w.env();
    const { entry } = await backUp(lvmSpec(), env);
    // The fake mount only records the call: make the files appear where the renamed volume is mounted.
    await rename(join(w.mountRoot, N), join(w.mountRoot, `${N}.kept`));
    const ctx = { logger: silentLogger, env, mountRoot: w.mountRoot };
    const listed = await listLocalSnapshots(lvmSpec(), ctx, { check: true });
    expect(listed.map((l) => [l.id, l.path, l.problem])).toEqual([
      [`vg0/${N}.kept`, join(w.mountRoot, `${N}.kept`), undefined],
    ]);

    await w.calls(true);
    const choice = await chooseLocalSnapshot({
      spec: lvmSpec(),
      paths: [],
      repo,
      snapshot: entry,
      host: 'here',
      ctx,
    });
    expect(choice).toMatchObject({ use: true, check: { ok: true } });
    if (!choice.use) throw new Error('unreachable');
    const view = new LocalFirstRepo(repo, entry.tree, choice.opened.path, SOURCE, silentLogger);
    const target = join(w.dir, 'restored');
    expect(
      (
        await restoreTree(view, entry.tree, target, {
          overwrite: 'never',
          dryRun: false,
          logger: silentLogger,
        })
      ).errors,
    ).toEqual([]);
    await choice.opened.close();
    expect(view.stats.repositoryChunks).toBe(0);
    expect(await readFile(join(target, SOURCE, 'a.txt'), 'utf8')).toBe('alpha\n');
    const calls = await w.calls();
    expect(calls).toContain(`mount -o ro ${`/dev/vg0/${N}.kept`} ${join(w.mountRoot, `${N}.kept`)}`);
    expect(calls.at(-1)).toBe(`umount ${join(w.mountRoot, `${N}.kept`)}`);

    // An overflowed (invalid) snapshot is not used.
    const full = await chooseLocalSnapshot({
      spec: lvmSpec(),
      paths: [],
      repo,
      snapshot: entry,
      host: 'here',
      ctx: { ...ctx, env: w.env({ FAKE_SNAPSHOT_FULL: '1' }) },
    });
    expect(full).toMatchObject({ use: false, reason: expect.stringContaining('filled up') });
  });
});

describe('checkLocalAgainstTree', () => {
  /** A fresh copy and the tree backed up from it. */
  async function fresh(name: string) {
    const root = join(w.dir, name);
    await mkdir(root);
    await populate(root);
    await chmod(join(root, 'a.txt'), 0o644);
    const { tree } = await backupFiles(
      repo,
      {
        paths: [SOURCE],
        include: [],
        exclude: [],
        oneFileSystem: false,
        xattrs: false,
        readFrom: { physical: root, logical: SOURCE },
      },
      { logger: silentLogger },
    );
    await sleep(5);
    const check = (notChangedAfterMs = Date.now() + 60_000) =>
      checkLocalAgainstTree(repo, tree, { root, source: SOURCE, paths: [], notChangedAfterMs });
    return { root, check };
  }

  it('names the first difference: mode, size, a changed directory, a change after the backup', async () => {
    const a = await fresh('a');
    expect(await a.check()).toMatchObject({ ok: true, entries: 7 });
    await chmod(join(a.root, 'a.txt'), 0o600);
    expect((await a.check()).problem).toBe('a.txt has mode 600, the backup has 644');

    const b = await fresh('b');
    await writeFile(join(b.root, 'sub', 'deeper', 'b.txt'), 'short');
    expect((await b.check()).problem).toBe('sub/deeper/b.txt has 5 bytes, the backup has 6000');
    // Changed (ctime) after the end of the backup, whatever else matches.
    expect((await b.check(Date.now() - 60_000)).problem).toMatch(/^a\.txt was changed after the backup/);

    const c = await fresh('c');
    await rm(join(c.root, 'big.bin'));
    expect((await c.check()).problem).toBe('. has another modification time than in the backup');
    expect(await readdir(c.root)).not.toContain('big.bin');
  });
});
