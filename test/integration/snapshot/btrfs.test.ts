/**
 * The snapshot job on real btrfs: a filesystem in an image file on a loop
 * device, a subvolume written to by a concurrent process, the real files
 * machinery and the real repository on local storage. Needs root, loop
 * devices and btrfs-progs; skips without them, fails under
 * LIFEBOAT_TEST_REQUIRE=all.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InterruptedError } from '../../../src/errors.js';
import { runCleanups, pendingCleanups } from '../../../src/platform/cleanup.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { run, runChecked } from '../../../src/platform/exec.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { initRepository, type Repository } from '../../../src/repository/repository.js';
import { backupFiles, restoreTree } from '../../../src/sources/files/index.js';
import {
  backupSnapshot,
  listLocalSnapshots,
  openLocalSnapshot,
  type BackupTreeHints,
  type SnapshotJobSpec,
} from '../../../src/sources/snapshot/index.js';
import { mountsOfImage } from '../../../src/sources/image/index.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { LoopFixtures, describeWith, probeBtrfs } from '../../helpers/loop.js';

const facility = await probeBtrfs();
const fx = new LoopFixtures();
const FILES = 10;
let dir: string;
let image: string;
let mnt: string;
let subvol: string;
let snapDir: string;
let repo: Repository;
let writer: ChildProcess | undefined;
const clock = new FakeClock(Date.parse('2025-03-01T12:00:00.000Z'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const spec = (extra: Partial<SnapshotJobSpec> = {}): SnapshotJobSpec => ({
  job: 'vol',
  provider: 'btrfs',
  source: subvol,
  ...extra,
});

/**
 * The writer updates f0 … f9 in order, each with the iteration counter,
 * every file written to a temp name, fsynced and renamed. At every instant
 * f0 >= f1 >= … >= f9 >= f0 - 1 holds; a copy read file by file while the
 * writer runs breaks it, a snapshot (one moment) cannot.
 */
const WRITER = `
import { openSync, writeSync, fsyncSync, closeSync, renameSync, existsSync } from 'node:fs';
const [dir, stopFile] = process.argv.slice(2);
const pad = 'x'.repeat(16 * 1024);
for (let i = 1; !existsSync(stopFile); i++) {
  for (let k = 0; k < ${FILES}; k++) {
    // Written the way a careful application does (fsync before rename): a snapshot is
    // crash-consistent, so data that was never flushed may legitimately be missing from it.
    const fd = openSync(dir + '/f' + k + '.tmp', 'w');
    writeSync(fd, i + '\\n' + pad);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(dir + '/f' + k + '.tmp', dir + '/f' + k);
  }
}
`;

/** Read f0 … f9 one by one with a pause in between, as a slow backup would. */
async function slowRead(pairDir: string, pauseMs = 25): Promise<number[]> {
  const values: number[] = [];
  for (let k = 0; k < FILES; k++) {
    values.push(Number.parseInt((await readFile(join(pairDir, `f${k}`), 'utf8')).split('\n')[0]!, 10));
    await sleep(pauseMs);
  }
  return values;
}

/** The invariant of one moment: non-increasing, first and last at most one apart. */
function consistent(values: number[]): boolean {
  for (let k = 1; k < values.length; k++) if (values[k]! > values[k - 1]!) return false;
  return values[0]! - values.at(-1)! <= 1;
}

async function subvolumes(): Promise<string[]> {
  const { stdout } = await runChecked(['btrfs', 'subvolume', 'list', mnt]);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' path ')[1] ?? '');
}

/** backupTree as the app wires it: the files machinery over the snapshot directory. */
async function filesBackup(snapshotDir: string, _display: string, hints: BackupTreeHints) {
  return backupFiles(
    hints.repo,
    { paths: [snapshotDir], include: [], exclude: [], oneFileSystem: false, xattrs: false },
    { logger: silentLogger },
  );
}

describeWith(facility, 'btrfs snapshot job (real btrfs on a loop device, real repository)', () => {
  beforeAll(async () => {
    dir = await fx.tempDir('lifeboat-btrfs-it-');
    image = await fx.sparseFile(join(dir, 'btrfs.img'), 256 * 1024 * 1024);
    await fx.mkfs(image, 'btrfs');
    const dev = await fx.attach(image);
    mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await fx.mount(dev, mnt);
    subvol = join(mnt, 'data');
    snapDir = join(mnt, '.lifeboat-snapshots');
    await runChecked(['btrfs', 'subvolume', 'create', subvol]);
    await mkdir(join(subvol, 'pair'));
    for (let k = 0; k < FILES; k++) await writeFile(join(subvol, 'pair', `f${k}`), '0\n');
    await writeFile(join(subvol, 'readme.txt'), 'seed data\n');
    const storage = await LocalStorage.create(pathToFileURL(join(dir, 'repo')).href);
    repo = await initRepository(storage, 'btrfs test password', {
      clock,
      host: 'btrfs-test',
      kdf: { N: 1024, r: 8, p: 1 },
      compressionWorkers: 1,
    });
  });

  afterAll(async () => {
    writer?.kill('SIGKILL');
    await repo?.close().catch(() => undefined);
    expect(await fx.disposeAll()).toEqual([]);
  });

  it('backs up one consistent moment while a writer keeps changing the files, then removes the snapshot', async () => {
    const script = join(dir, 'writer.mjs');
    const stop = join(dir, 'stop-writer');
    await writeFile(script, WRITER);
    writer = spawn(process.execPath, [script, join(subvol, 'pair'), stop], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let writerErr = '';
    writer.stderr?.on('data', (c: Buffer) => (writerErr += c.toString()));
    const writerExit = new Promise<number | null>((r) => writer!.once('exit', r));
    await sleep(300);

    // Control: reading the live files one by one does see torn states.
    let tornLive = false;
    for (let attempt = 0; attempt < 10 && !tornLive; attempt++)
      tornLive = !consistent(await slowRead(join(subvol, 'pair')));
    expect(tornLive).toBe(true);
    let inSnapshot: number[] = [];
    let again: number[] = [];
    let liveAfter = 0;
    clock.advance(1000);
    const result = await backupSnapshot(repo, spec(), {
      logger: silentLogger,
      clock,
      backupTree: async (snapshotDir, display, hints) => {
        expect(display).toBe(subvol);
        inSnapshot = await slowRead(join(snapshotDir, 'pair'));
        again = await slowRead(join(snapshotDir, 'pair'), 0);
        liveAfter = (await slowRead(join(subvol, 'pair'), 0))[0]!;
        await expect(writeFile(join(snapshotDir, 'pair', 'f0'), 'x')).rejects.toThrow(/EROFS|read-only/);
        return filesBackup(snapshotDir, display, hints);
      },
    });
    await writeFile(stop, '');
    expect(await writerExit, `writer failed: ${writerErr}`).toBe(0);
    writer = undefined;

    expect(inSnapshot, `snapshot values ${inSnapshot.join(',')}`).toSatisfy(consistent);
    expect(again).toEqual(inSnapshot);
    expect(liveAfter).toBeGreaterThan(inSnapshot[0]!);
    expect(result.partial).toBe(false);
    // The ten files, readme.txt and possibly one f<k>.tmp the writer had not renamed yet.
    expect(result.fingerprint.files).toBeGreaterThanOrEqual(FILES + 1);
    expect(result.fingerprint.snapshot).toMatchObject({ provider: 'btrfs', name: result.snapshot.name });
    expect(result.snapshot).toMatchObject({
      provider: 'btrfs',
      id: join(snapDir, result.snapshot.name),
      keptLocally: false,
    });

    // Gone from the machine; nothing left to clean up.
    expect(await readdir(snapDir)).toEqual([]);
    expect((await subvolumes()).filter((p) => p.includes('lifeboat-'))).toEqual([]);
    expect(pendingCleanups()).toBe(0);

    // What the repository holds restores to the same consistent moment.
    await repo.saveSnapshot({
      v: 1,
      job: 'vol',
      kind: 'snapshot',
      host: 'btrfs-test',
      startedAt: '2025-03-01T12:00:01.000Z',
      endedAt: '2025-03-01T12:00:02.000Z',
      tree: result.tree,
      paths: [subvol],
      tags: [],
      partial: false,
      fingerprint: { ...result.fingerprint },
      stats: {
        files: result.stats.files,
        dirs: result.stats.dirs,
        bytes: result.stats.bytes,
        addedBytes: result.stats.addedBytes,
        storedBytes: result.stats.addedBytes,
        blobs: result.stats.newBlobs,
      },
      toolVersion: 'test',
    });
    const target = join(dir, 'restored');
    await restoreTree(repo, result.tree, target, { overwrite: 'never', dryRun: false, logger: silentLogger });
    const restoredPair = join(target, result.snapshot.id, 'pair');
    expect(await slowRead(restoredPair, 0)).toEqual(inSnapshot);
    expect(await readFile(join(target, result.snapshot.id, 'readme.txt'), 'utf8')).toBe('seed data\n');
  });

  it('takes the snapshot inside the database quiesce and between before/after commands', async () => {
    const hookLog = join(dir, 'hooks.log');
    const events: string[] = [];
    clock.advance(1000);
    await backupSnapshot(
      repo,
      spec({
        quiesce: {
          before: [['sh', '-c', `echo before >> ${hookLog}`]],
          after: [['sh', '-c', `echo after >> ${hookLog}`]],
          database: async (atSnapshotMoment) => {
            events.push(`locked, snapshots: ${(await readdir(snapDir)).length}`);
            const value = await atSnapshotMoment();
            events.push(`releasing, snapshots: ${(await readdir(snapDir)).length}`);
            return value;
          },
        },
      }),
      { logger: silentLogger, clock, backupTree: filesBackup },
    );
    expect(events).toEqual(['locked, snapshots: 0', 'releasing, snapshots: 1']);
    expect(await readFile(hookLog, 'utf8')).toBe('before\nafter\n');
    expect(await readdir(snapDir)).toEqual([]);
  });

  it('removes a leftover of a crashed run of the same job (and only that) on the next run', async () => {
    const crashed = 'lifeboat-vol-20250101T000000.000Z';
    const otherJob = 'lifeboat-other-20250101T000000.000Z';
    await mkdir(snapDir, { recursive: true });
    // A crash: snapshot taken, never removed.
    await runChecked(['btrfs', 'subvolume', 'snapshot', '-r', subvol, join(snapDir, crashed)]);
    await runChecked(['btrfs', 'subvolume', 'snapshot', '-r', subvol, join(snapDir, otherJob)]);
    clock.advance(1000);
    const result = await backupSnapshot(repo, spec(), {
      logger: silentLogger,
      clock,
      backupTree: filesBackup,
    });
    expect(result.leftoversRemoved).toEqual([crashed]);
    expect(await readdir(snapDir)).toEqual([otherJob]);
    await runChecked(['btrfs', 'subvolume', 'delete', join(snapDir, otherJob)]);
  });

  it('removes the snapshot when the backup fails and when the process is interrupted', async () => {
    clock.advance(1000);
    await expect(
      backupSnapshot(repo, spec(), {
        logger: silentLogger,
        clock,
        backupTree: async () => {
          throw new Error('repository unreachable');
        },
      }),
    ).rejects.toThrow('repository unreachable');
    expect(await readdir(snapDir)).toEqual([]);

    clock.advance(1000);
    await expect(
      backupSnapshot(repo, spec(), {
        logger: silentLogger,
        clock,
        backupTree: async (snapshotDir) => {
          expect((await stat(snapshotDir)).isDirectory()).toBe(true);
          await runCleanups(); // what cli/main.ts does on SIGINT/SIGTERM
          expect(await readdir(snapDir)).toEqual([]);
          throw new InterruptedError('SIGTERM');
        },
      }),
    ).rejects.toBeInstanceOf(InterruptedError);
    expect(await readdir(snapDir)).toEqual([]);
    expect(pendingCleanups()).toBe(0);
  });

  it('refuses a source that is not a subvolume, not on btrfs, or fsfreeze with btrfs', async () => {
    const plain = join(subvol, 'plain-dir');
    await mkdir(plain, { recursive: true });
    const backupTree = filesBackup;
    await expect(
      backupSnapshot(repo, spec({ source: plain }), { logger: silentLogger, clock, backupTree }),
    ).rejects.toMatchObject({
      code: 'E_SNAPSHOT_NOT_SUBVOLUME',
      message: `snapshot source ${plain} is not a btrfs subvolume`,
      hint: expect.stringContaining('btrfs subvolume create'),
    });
    await expect(
      backupSnapshot(repo, spec({ source: dir }), { logger: silentLogger, clock, backupTree }),
    ).rejects.toMatchObject({
      code: 'E_SNAPSHOT_NOT_BTRFS',
    });
    await expect(
      backupSnapshot(repo, spec({ quiesce: { fsfreeze: true } }), {
        logger: silentLogger,
        clock,
        backupTree,
      }),
    ).rejects.toThrow(/fsfreeze cannot be used with provider btrfs/);
    expect((await subvolumes()).filter((p) => p.includes('lifeboat-'))).toEqual([]);
  });

  it('keeps the newest snapshots as read-only local restore points and prunes the rest', async () => {
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(60_000);
      await writeFile(join(subvol, 'version.txt'), `v${i}\n`);
      const r = await backupSnapshot(repo, spec({ keepLocal: 2 }), {
        logger: silentLogger,
        clock,
        backupTree: filesBackup,
      });
      expect(r.snapshot.keptLocally).toBe(true);
      names.push(`${r.snapshot.name}.kept`);
    }
    const ctx = { logger: silentLogger };
    const local = await listLocalSnapshots(spec(), ctx);
    expect(local.map((l) => l.name)).toEqual([names[2], names[1]]);
    expect((await readdir(snapDir)).sort()).toEqual([names[1], names[2]].sort());

    const opened = await openLocalSnapshot(spec(), 'latest', ctx);
    expect(await readFile(join(opened.path, 'version.txt'), 'utf8')).toBe('v2\n');
    await expect(writeFile(join(opened.path, 'version.txt'), 'tamper')).rejects.toThrow(/EROFS|read-only/);
    await opened.close();

    clock.advance(60_000);
    const last = await backupSnapshot(repo, spec({ keepLocal: 0 }), {
      logger: silentLogger,
      clock,
      backupTree: filesBackup,
    });
    expect(last.prunedLocal.sort()).toEqual([names[1], names[2]].sort());
    expect(await readdir(snapDir)).toEqual([]);
  });

  it('lets the image job see the btrfs mount (anonymous device number) of its image file', async () => {
    const mounts = await mountsOfImage(image);
    expect(mounts.map((m) => [m.mount.mountPoint, m.mount.fsType])).toEqual([[mnt, 'btrfs']]);
    expect(mounts[0]!.mount.majorMinor.startsWith('0:')).toBe(true);
  });

  it('excludes its snapshot directory when the source is the filesystem root', async () => {
    let seenHints: BackupTreeHints | undefined;
    let entries: string[] = [];
    clock.advance(1000);
    await backupSnapshot(repo, spec({ source: mnt }), {
      logger: silentLogger,
      clock,
      backupTree: async (snapshotDir, display, hints) => {
        seenHints = hints;
        entries = await readdir(snapshotDir);
        return filesBackup(join(snapshotDir, 'data'), display, hints);
      },
    });
    expect(seenHints?.exclude).toEqual([`${snapDir}/`]);
    expect(entries).toContain('.lifeboat-snapshots');
    expect(await readdir(snapDir)).toEqual([]);
    const r = await run(['btrfs', 'subvolume', 'list', mnt]);
    expect(r.stdout).not.toContain('lifeboat-');
  });
});
