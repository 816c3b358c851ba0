/**
 * ZFS provider — COMMAND PLAN TESTS WITH A FAKE `zfs`. There is no ZFS on
 * the test machines, so `zfs` is the `sh` stand-in in test/helpers/fakebin
 * (first on PATH). These tests prove which commands run, in which order and
 * with which arguments — including cleanup on failure — not that real ZFS
 * behaves as assumed (see docs/snapshots-and-images.md).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCleanups } from '../../../../src/platform/cleanup.js';
import { FakeClock } from '../../../../src/platform/clock.js';
import { silentLogger } from '../../../../src/platform/logger.js';
import {
  backupSnapshot,
  listLocalSnapshots,
  openLocalSnapshot,
  type BackupTreeResult,
  type SnapshotJobSpec,
} from '../../../../src/sources/snapshot/index.js';
import { FakeRepo } from '../../../helpers/fakeRepo.js';
import { fakeWorld, type FakeWorld } from './fakeTools.js';

const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const N = 'lifeboat-tank-20250301T120000.000Z';
let w: FakeWorld;
let mp: string;
let clock: FakeClock;

const spec = (extra: Partial<SnapshotJobSpec> = {}): SnapshotJobSpec => ({
  job: 'tank',
  provider: 'zfs',
  source: '/tank/data',
  zfs: { dataset: 'tank/data' },
  ...extra,
});

const treeResult: BackupTreeResult = {
  tree: 'b'.repeat(64),
  stats: {},
  warnings: [],
  partial: false,
  fingerprint: {},
};

function run(
  extraEnv: Record<string, string> = {},
  s = spec(),
  backupTree?: (dir: string) => Promise<BackupTreeResult>,
) {
  const seen: Array<{ dir: string; displayPath: string }> = [];
  const promise = backupSnapshot(new FakeRepo(), s, {
    logger: silentLogger,
    clock,
    env: w.env({ FAKE_ZFS_MOUNTPOINT: mp, ...extraEnv }),
    backupTree: async (dir, displayPath) => {
      seen.push({ dir, displayPath });
      return backupTree ? backupTree(dir) : treeResult;
    },
  });
  return { promise, seen };
}

const snapshots = async () =>
  (await readFile(join(w.state, 'zfs', 'snapshots'), 'utf8')).split('\n').filter(Boolean);
const start = [
  'zfs list -H -o name tank/data',
  'zfs get -H -o value mountpoint tank/data',
  'zfs list -H -t snapshot -o name -d 1 tank/data',
];
const probe = (name = N) => `zfs list -H -t snapshot -o name tank/data@${name}`;

beforeEach(async () => {
  w = await fakeWorld();
  mp = join(w.dir, 'tank-data');
  await mkdir(mp);
  clock = new FakeClock(T0);
});
afterEach(async () => {
  await runCleanups();
  await w.dispose();
});

describe('ZFS snapshot job (fake zfs)', () => {
  it('snapshots, reads through .zfs/snapshot, and destroys the snapshot', async () => {
    const { promise, seen } = run({}, spec(), async (dir) => {
      expect(await snapshots()).toEqual([`tank/data@${N}`]);
      expect(await readdir(dir)).toEqual([]);
      return treeResult;
    });
    const result = await promise;
    expect(seen).toEqual([{ dir: join(mp, '.zfs', 'snapshot', N), displayPath: '/tank/data' }]);
    expect(await w.calls()).toEqual([
      ...start,
      `zfs snapshot tank/data@${N}`,
      probe(),
      `zfs destroy tank/data@${N}`,
      'zfs list -H -t snapshot -o name -d 1 tank/data',
    ]);
    expect(result.snapshot).toMatchObject({ provider: 'zfs', id: `tank/data@${N}`, keptLocally: false });
    expect(await snapshots()).toEqual([]);
  });

  it('leaves nothing to destroy when zfs snapshot fails', async () => {
    const { promise, seen } = run({
      FAKE_FAIL: 'zfs-snapshot',
      FAKE_FAIL_MESSAGE: 'cannot create snapshot: out of space',
    });
    await expect(promise).rejects.toThrow(
      /zfs snapshot tank\/data@.* failed \(exit 1\): cannot create snapshot: out of space/,
    );
    expect(seen).toEqual([]);
    expect(await w.calls()).toEqual([...start, `zfs snapshot tank/data@${N}`, probe()]);
  });

  it('destroys the snapshot when the backup fails', async () => {
    const { promise } = run({}, spec(), async () => {
      throw new Error('disk full');
    });
    await expect(promise).rejects.toThrow('disk full');
    expect((await w.calls()).slice(-2)).toEqual([probe(), `zfs destroy tank/data@${N}`]);
    expect(await snapshots()).toEqual([]);
  });

  it('removes this job’s leftovers only and keeps local restore points when asked', async () => {
    await mkdir(join(w.state, 'zfs'), { recursive: true });
    const crashed = 'lifeboat-tank-20250101T000000.000Z';
    await writeFile(
      join(w.state, 'zfs', 'snapshots'),
      [
        `tank/data@${crashed}`,
        'tank/data@manual',
        'tank/data@lifeboat-other-20250101T000000.000Z',
        `tank/other@${crashed}`,
        '',
      ].join('\n'),
    );
    const result = await run({}, spec({ keepLocal: 1 })).promise;
    expect(result.leftoversRemoved).toEqual([crashed]);
    expect(result.snapshot.keptLocally).toBe(true);
    const calls = await w.calls();
    expect(calls).toContain(`zfs destroy tank/data@${crashed}`);
    expect(calls).toContain(`zfs rename tank/data@${N} tank/data@${N}.kept`);
    expect(calls.filter((c) => c.startsWith('zfs destroy'))).toEqual([`zfs destroy tank/data@${crashed}`]);
    expect((await snapshots()).sort()).toEqual(
      [
        'tank/data@manual',
        'tank/data@lifeboat-other-20250101T000000.000Z',
        `tank/other@${crashed}`,
        `tank/data@${N}.kept`,
      ].sort(),
    );

    const ctx = { logger: silentLogger, env: w.env({ FAKE_ZFS_MOUNTPOINT: mp }) };
    expect((await listLocalSnapshots(spec(), ctx)).map((s) => s.id)).toEqual([`tank/data@${N}.kept`]);
    const opened = await openLocalSnapshot(spec(), `${N}.kept`, ctx);
    expect(opened.path).toBe(join(mp, '.zfs', 'snapshot', `${N}.kept`));
    await opened.close();

    // A second run with keepLocal 1 replaces the older restore point.
    clock.advance(60_000);
    const second = await run({}, spec({ keepLocal: 1 })).promise;
    expect(second.prunedLocal).toEqual([`${N}.kept`]);
    expect(await listLocalSnapshots(spec(), ctx)).toHaveLength(1);
  });

  it('refuses fsfreeze before running any command', async () => {
    await expect(run({}, spec({ quiesce: { fsfreeze: true } })).promise).rejects.toThrow(
      /fsfreeze cannot be used with provider zfs/,
    );
    expect(await w.calls()).toEqual([]);
  });

  it('explains a missing dataset and a dataset without mountpoint', async () => {
    await expect(run({ FAKE_ZFS_MISSING: '1' }).promise).rejects.toMatchObject({
      code: 'E_SNAPSHOT_SOURCE_MISSING',
    });
    const noMount = backupSnapshot(new FakeRepo(), spec(), {
      logger: silentLogger,
      clock,
      env: w.env({ FAKE_ZFS_MOUNTPOINT: 'none' }),
      backupTree: async () => treeResult,
    });
    await expect(noMount).rejects.toMatchObject({
      code: 'E_SNAPSHOT_NOT_MOUNTED',
      hint: expect.stringContaining('zfs mount tank/data'),
    });
  });
});
