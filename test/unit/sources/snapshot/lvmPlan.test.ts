/**
 * LVM provider — COMMAND PLAN TESTS WITH FAKE TOOLS. There is no
 * device-mapper/LVM on the test machines, so lvcreate, lvs, lvremove,
 * lvrename, blkid, mount, umount and fsfreeze are the `sh` stand-ins in
 * test/helpers/fakebin (first on PATH). These tests prove which commands run,
 * in which order, with which arguments — including every cleanup path on
 * failure — not that real LVM behaves as assumed (see
 * docs/snapshots-and-images.md).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InterruptedError } from '../../../../src/errors.js';
import { pendingCleanups, runCleanups } from '../../../../src/platform/cleanup.js';
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
const N = 'lifeboat-db-20250301T120000.000Z';
let w: FakeWorld;
let clock: FakeClock;

const spec = (extra: Partial<SnapshotJobSpec> = {}): SnapshotJobSpec => ({
  job: 'db',
  provider: 'lvm',
  source: '/srv/db',
  lvm: { volumeGroup: 'vg0', logicalVolume: 'data', snapshotSize: '2G' },
  ...extra,
});

const treeResult: BackupTreeResult = {
  tree: 'a'.repeat(64),
  stats: { files: 3 },
  warnings: [],
  partial: false,
  fingerprint: { files: 3, bytes: 10 },
};

interface Seen {
  dir: string;
  displayPath: string;
}

function run(
  extraEnv: Record<string, string> = {},
  s = spec(),
  backupTree?: (dir: string) => Promise<BackupTreeResult>,
) {
  const seen: Seen[] = [];
  const promise = backupSnapshot(new FakeRepo(), s, {
    logger: silentLogger,
    clock,
    env: w.env(extraEnv),
    mountRoot: w.mountRoot,
    backupTree: async (dir, displayPath) => {
      seen.push({ dir, displayPath });
      return backupTree ? backupTree(dir) : treeResult;
    },
  });
  return { promise, seen };
}

const lvExists = async (name: string) => (await readdir(join(w.state, 'lvm', 'vg0'))).includes(name);

const created = (name = N, mnt = () => w.mountRoot, mountOpts = 'ro') => [
  `lvcreate --snapshot --size 2G --name ${name} vg0/data`,
  `blkid -o value -s TYPE /dev/vg0/${name}`,
  `mount -o ${mountOpts} /dev/vg0/${name} ${join(mnt(), name)}`,
];
const removed = (name = N) => [
  `umount ${join(w.mountRoot, name)}`,
  `lvs --noheadings -o lv_name vg0/${name}`,
  `lvremove -f vg0/${name}`,
];
const start = [
  'lvs --noheadings -o lv_name vg0/data',
  'lvs --noheadings --separator | -o lv_name,origin vg0',
];
const intact = (name = N) => `lvs --noheadings --separator | -o lv_attr,snap_percent vg0/${name}`;
const listKept = 'lvs --noheadings --separator | -o lv_name,origin vg0';

beforeEach(async () => {
  w = await fakeWorld();
  clock = new FakeClock(T0);
  await w.addLv('vg0', 'data');
  await w.addLv('vg0', 'other');
});
afterEach(async () => {
  await runCleanups();
  await w.dispose();
});

describe('LVM snapshot job (fake tools)', () => {
  it('creates, mounts read-only, backs up through the mount, verifies, unmounts and removes', async () => {
    const { promise, seen } = run({}, spec(), async (dir) => {
      expect(await lvExists(N)).toBe(true);
      expect((await stat(dir)).isDirectory()).toBe(true);
      return treeResult;
    });
    const result = await promise;
    expect(seen).toEqual([{ dir: join(w.mountRoot, N), displayPath: '/srv/db' }]);
    expect(await w.calls()).toEqual([...start, ...created(), intact(), ...removed(), listKept]);
    expect(result.snapshot).toEqual({
      provider: 'lvm',
      name: N,
      id: `vg0/${N}`,
      createdAt: '2025-03-01T12:00:00.000Z',
      keptLocally: false,
    });
    expect(result.fingerprint).toEqual({
      files: 3,
      bytes: 10,
      snapshot: { provider: 'lvm', name: N, createdAt: '2025-03-01T12:00:00.000Z' },
    });
    expect(result.tree).toBe(treeResult.tree);
    expect(await lvExists(N)).toBe(false);
    expect(await readdir(w.mountRoot)).toEqual([]);
    expect(pendingCleanups()).toBe(0);
  });

  it('mounts XFS snapshots with nouuid and takes sizes in bytes', async () => {
    const s = spec({ lvm: { volumeGroup: 'vg0', logicalVolume: 'data', snapshotSize: 1073741824 } });
    await run({ FAKE_BLKID_TYPE: 'xfs' }, s).promise;
    const calls = await w.calls();
    expect(calls).toContain(`lvcreate --snapshot --size 1073741824b --name ${N} vg0/data`);
    expect(calls).toContain(`mount -o ro,nouuid /dev/vg0/${N} ${join(w.mountRoot, N)}`);
  });

  it('fails when the snapshot volume filled up while it was read, and still removes it', async () => {
    const { promise, seen } = run({ FAKE_SNAPSHOT_FULL: '1' });
    await expect(promise).rejects.toMatchObject({
      code: 'E_SNAPSHOT_OVERFLOW',
      message: expect.stringMatching(/vg0\/lifeboat-db-.* filled up \(100\.00% of 2G\).*not consistent/),
      hint: expect.stringContaining('raise lvm.snapshotSize'),
    });
    expect(seen).toHaveLength(1);
    expect(await w.calls()).toEqual([...start, ...created(), intact(), ...removed()]);
    expect(await lvExists(N)).toBe(false);
  });

  it('reports the overflow rather than the read error it caused', async () => {
    const { promise } = run({ FAKE_SNAPSHOT_FULL: '1' }, spec(), async () => {
      throw new Error('EIO: i/o error, read');
    });
    await expect(promise).rejects.toMatchObject({ code: 'E_SNAPSHOT_OVERFLOW' });
    expect((await w.calls()).slice(-3)).toEqual(removed());
  });

  it('reports lvcreate failing (e.g. no free extents) with its message and leaves nothing behind', async () => {
    const { promise, seen } = run({
      FAKE_FAIL: 'lvcreate',
      FAKE_FAIL_MESSAGE: 'Volume group "vg0" has insufficient free space (10 extents): 512 required.',
    });
    await expect(promise).rejects.toThrow(
      /lvcreate .* failed \(exit 5\): Volume group "vg0" has insufficient free space/,
    );
    expect(seen).toEqual([]);
    expect(await w.calls()).toEqual([...start, created()[0], `lvs --noheadings -o lv_name vg0/${N}`]);
    expect(pendingCleanups()).toBe(0);
  });

  it('removes the snapshot when mounting it fails', async () => {
    const { promise, seen } = run({
      FAKE_FAIL: 'mount',
      FAKE_FAIL_MESSAGE: 'mount: wrong fs type, bad option, bad superblock',
    });
    await expect(promise).rejects.toThrow(/bad superblock/);
    expect(seen).toEqual([]);
    expect(await w.calls()).toEqual([
      ...start,
      ...created(),
      `lvs --noheadings -o lv_name vg0/${N}`,
      `lvremove -f vg0/${N}`,
    ]);
    expect(await lvExists(N)).toBe(false);
  });

  it('removes the snapshot when the backup itself fails, and rethrows', async () => {
    const { promise } = run({}, spec(), async () => {
      throw new Error('repository went away');
    });
    await expect(promise).rejects.toThrow('repository went away');
    // The overflow check runs first: it would explain read errors better.
    expect(await w.calls()).toEqual([...start, ...created(), intact(), ...removed()]);
  });

  it('keeps a snapshot it cannot unmount after a good backup, reports it, and the next run removes it', async () => {
    const first = await run({ FAKE_FAIL: 'umount' }).promise;
    expect(first.cleanupWarnings.join()).toMatch(
      /removing snapshot vg0\/.* failed: cannot unmount .* target is busy/,
    );
    expect(await lvExists(N)).toBe(true);
    await w.calls(true);

    clock.advance(3600_000);
    const second = await run().promise;
    expect(second.leftoversRemoved).toEqual([N]);
    const next = 'lifeboat-db-20250301T130000.000Z';
    expect(await w.calls()).toEqual([
      ...start,
      ...removed(N),
      ...created(next),
      intact(next),
      ...removed(next),
      listKept,
    ]);
  });

  it('removes only this job’s leftovers, never other volumes, and prunes kept ones beyond keepLocal', async () => {
    const crashed = 'lifeboat-db-20250101T000000.000Z';
    const kept = 'lifeboat-db-20250102T000000.000Z.kept';
    await w.addLv('vg0', crashed, 'data');
    await w.addLv('vg0', kept, 'data');
    await w.addLv('vg0', 'lifeboat-web-20250101T000000.000Z', 'data');
    await w.addLv('vg0', 'lifeboat-db-20250101T000000.000Z-manual', 'data');
    await w.addLv('vg0', 'lifeboat-db-20250103T000000.000Z', 'other');
    const result = await run().promise;
    expect(result.leftoversRemoved).toEqual([crashed]);
    expect(result.prunedLocal).toEqual([kept]);
    expect(await w.calls()).toEqual([
      ...start,
      `lvs --noheadings -o lv_name vg0/${crashed}`,
      `lvremove -f vg0/${crashed}`,
      ...created(),
      intact(),
      ...removed(),
      listKept,
      `lvs --noheadings -o lv_name vg0/${kept}`,
      `lvremove -f vg0/${kept}`,
    ]);
    expect((await readdir(join(w.state, 'lvm', 'vg0'))).sort()).toEqual(
      [
        'data',
        'lifeboat-db-20250101T000000.000Z-manual',
        'lifeboat-db-20250103T000000.000Z',
        'lifeboat-web-20250101T000000.000Z',
        'other',
      ].sort(),
    );
  });

  it('freezes the source only around lvcreate, and unfreezes when lvcreate fails', async () => {
    const s = spec({ quiesce: { fsfreeze: true } });
    await run({}, s).promise;
    const calls = await w.calls(true);
    const i = calls.indexOf(created()[0]!);
    expect(calls.slice(i - 1, i + 2)).toEqual([
      'fsfreeze --freeze /srv/db',
      created()[0],
      'fsfreeze --unfreeze /srv/db',
    ]);

    await expect(run({ FAKE_FAIL: 'lvcreate' }, s).promise).rejects.toThrow(/lvcreate/);
    expect(await w.calls()).toEqual([
      ...start,
      'fsfreeze --freeze /srv/db',
      created()[0],
      'fsfreeze --unfreeze /srv/db',
      `lvs --noheadings -o lv_name vg0/${N}`,
    ]);
  });

  it('retries a failing unfreeze, then fails loudly and removes the snapshot', async () => {
    const { promise } = run({ FAKE_FAIL: 'fsfreeze-unfreeze' }, spec({ quiesce: { fsfreeze: true } }));
    await expect(promise).rejects.toMatchObject({
      code: 'E_UNFREEZE_FAILED',
      hint: expect.stringContaining('fsfreeze --unfreeze /srv/db'),
    });
    const calls = await w.calls();
    expect(calls.filter((c) => c === 'fsfreeze --unfreeze /srv/db')).toHaveLength(3);
    expect(calls.slice(-2)).toEqual([`lvs --noheadings -o lv_name vg0/${N}`, `lvremove -f vg0/${N}`]);
  });

  it('runs before-commands, the database quiesce, lvcreate, release and after-commands in that order', async () => {
    const note = (text: string) => appendFileSync(w.log, `${text}\n`);
    const s = spec({
      quiesce: {
        before: [['sh', '-c', `echo "hook before" >> "$FAKE_LOG"`]],
        after: [['sh', '-c', `echo "hook after" >> "$FAKE_LOG"`]],
        database: async (atSnapshotMoment) => {
          note('db lock');
          try {
            return await atSnapshotMoment();
          } finally {
            note('db unlock');
          }
        },
      },
    });
    await run({}, s).promise;
    const calls = await w.calls();
    expect(calls.slice(2, 7)).toEqual(['hook before', 'db lock', created()[0], 'db unlock', 'hook after']);
  });

  it('does not snapshot when a before-command fails, but still runs the after-commands', async () => {
    const s = spec({
      quiesce: {
        before: [['sh', '-c', 'echo "service would not pause" >&2; exit 3']],
        after: [['sh', '-c', `echo "hook after" >> "$FAKE_LOG"`]],
      },
    });
    const { promise, seen } = run({}, s);
    await expect(promise).rejects.toMatchObject({
      code: 'E_QUIESCE_HOOK',
      message: expect.stringContaining('service would not pause'),
    });
    expect(seen).toEqual([]);
    expect(await w.calls()).toEqual([...start, 'hook after', `lvs --noheadings -o lv_name vg0/${N}`]);
  });

  it('fails the run when an after-command fails (a service may be left paused) and removes the snapshot', async () => {
    const s = spec({ quiesce: { after: [['sh', '-c', 'echo "could not restart app" >&2; exit 1']] } });
    const { promise, seen } = run({}, s);
    await expect(promise).rejects.toMatchObject({
      code: 'E_QUIESCE_HOOK',
      message: expect.stringContaining('could not restart app'),
    });
    expect(seen).toEqual([]);
    expect(await w.calls()).toEqual([
      ...start,
      created()[0],
      `lvs --noheadings -o lv_name vg0/${N}`,
      `lvremove -f vg0/${N}`,
    ]);
    expect(await lvExists(N)).toBe(false);
  });

  it('rejects a database callback that never takes the snapshot', async () => {
    const s = spec({ quiesce: { database: (async () => undefined) as never } });
    await expect(run({}, s).promise).rejects.toMatchObject({ code: 'E_QUIESCE_DATABASE' });
    expect(await w.calls()).not.toContain(created()[0]);
  });

  it('removes the snapshot on SIGINT/SIGTERM through the registered cleanup', async () => {
    const { promise } = run({}, spec(), async () => {
      // What cli/main.ts does on a signal, while the backup is reading the snapshot.
      await runCleanups();
      expect(await lvExists(N)).toBe(false);
      throw new InterruptedError('SIGINT');
    });
    await expect(promise).rejects.toBeInstanceOf(InterruptedError);
    expect(await w.calls()).toEqual([
      ...start,
      ...created(),
      ...removed(),
      `lvs --noheadings -o lv_name vg0/${N}`,
    ]);
    expect(pendingCleanups()).toBe(0);
  });

  it('keeps the newest snapshots as local restore points (unmounted, renamed .kept) and opens one', async () => {
    const s = spec({ keepLocal: 2 });
    for (let i = 0; i < 3; i++) {
      const r = await run({}, s).promise;
      expect(r.snapshot.keptLocally).toBe(true);
      clock.advance(3600_000);
    }
    const calls = await w.calls();
    expect(calls).toContain(`lvrename vg0 ${N} ${N}.kept`);
    expect(calls).toContain(`lvremove -f vg0/${N}.kept`);
    const ctx = { logger: silentLogger, env: w.env(), mountRoot: w.mountRoot };
    const local = await listLocalSnapshots(s, ctx);
    expect(local.map((l) => l.name)).toEqual([
      'lifeboat-db-20250301T140000.000Z.kept',
      'lifeboat-db-20250301T130000.000Z.kept',
    ]);
    expect(local[0]).toMatchObject({
      location: 'local',
      provider: 'lvm',
      createdAt: '2025-03-01T14:00:00.000Z',
    });

    await w.calls(true);
    const opened = await openLocalSnapshot(s, 'latest', ctx);
    const name = 'lifeboat-db-20250301T140000.000Z.kept';
    expect(opened.path).toBe(join(w.mountRoot, name));
    expect(opened.displayPath).toBe('/srv/db');
    await opened.close();
    expect(await w.calls()).toEqual([
      listKept,
      `blkid -o value -s TYPE /dev/vg0/${name}`,
      `mount -o ro /dev/vg0/${name} ${join(w.mountRoot, name)}`,
      `umount ${join(w.mountRoot, name)}`,
    ]);
    await expect(openLocalSnapshot(s, 'nope', ctx)).rejects.toMatchObject({
      code: 'E_LOCAL_SNAPSHOT_NOT_FOUND',
    });
  });

  it('fails clearly when the origin volume does not exist', async () => {
    const s = spec({ lvm: { volumeGroup: 'vg0', logicalVolume: 'missing', snapshotSize: '1G' } });
    await expect(run({}, s).promise).rejects.toMatchObject({
      code: 'E_SNAPSHOT_SOURCE_MISSING',
      message: expect.stringContaining('vg0/missing'),
    });
    expect(await w.calls()).toEqual(['lvs --noheadings -o lv_name vg0/missing']);
  });

  it('rejects unusable sizes before running anything', async () => {
    const s = spec({ lvm: { volumeGroup: 'vg0', logicalVolume: 'data', snapshotSize: 'lots' } });
    await expect(run({}, s).promise).rejects.toThrow(/not an LVM size/);
    expect(await w.calls()).toEqual([]);
  });
});
