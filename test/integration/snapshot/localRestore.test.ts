/**
 * Local restore points of a btrfs snapshot job through the CLI (in-process):
 * a real btrfs filesystem on a loop device, a real repository on local
 * storage, `lifeboat backup` with keepLocal, then `lifeboat snapshots` and
 * `lifeboat restore` choosing the local snapshot when it is intact and the
 * repository when it was deleted or changed. Needs root, loop devices and
 * btrfs-progs; skips without them, fails under LIFEBOAT_TEST_REQUIRE=all.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import {
  chown,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../../../src/platform/exec.js';
import { cli } from '../../helpers/cli.js';
import { LoopFixtures, describeWith, probeBtrfs } from '../../helpers/loop.js';

const facility = await probeBtrfs();
const fx = new LoopFixtures();
const env = { LIFEBOAT_TEST_PW: 'local restore test password' };
let dir: string;
let mnt: string;
let subvol: string;
let snapDir: string;
let config: string;
/** Repository snapshot IDs of the two backups, oldest first. */
const ids: string[] = [];

const lb = (...args: string[]) => cli(['--config', config, ...args], env);
async function lbJson<T = Record<string, unknown>>(...args: string[]): Promise<{ code: number; doc: T }> {
  const r = await lb('--json', ...args);
  try {
    return { code: r.code, doc: JSON.parse(r.stdout) as T };
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Microseconds: restore sets times through utimes (a double of seconds). */
  mtimeUs: number;
  content: string;
  /** Index of the first path with the same inode (hardlinks), else -1. */
  linkOf: number;
  /** Allocated 512-byte blocks, to see holes. */
  blocks: number;
}

/** Everything restore promises to reproduce, for every entry under `root`. */
async function describeTree(root: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const inodes = new Map<bigint, number>();
  const walk = async (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    const st: BigIntStats = await lstat(abs, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    let content = '';
    if (type === 'file')
      content = createHash('sha256')
        .update(await readFile(abs))
        .digest('hex');
    if (type === 'symlink') content = await readlink(abs);
    const index = out.size;
    const first = type === 'file' && st.nlink > 1n ? inodes.get(st.ino) : undefined;
    if (type === 'file' && st.nlink > 1n && first === undefined) inodes.set(st.ino, index);
    out.set(rel || '.', {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'dir' ? 0 : Number(st.size),
      mtimeUs: Number((st.mtimeNs + 500n) / 1000n),
      content,
      linkOf: first ?? -1,
      blocks: Number(st.blocks),
    });
    if (type === 'dir')
      for (const name of (await readdir(abs)).sort()) await walk(rel ? `${rel}/${name}` : name);
  };
  await walk('');
  return out;
}

/** The restored tree equals the source tree in everything but allocation, which must keep the holes. */
function expectSameTree(restored: Map<string, Entry>, source: Map<string, Entry>): void {
  expect([...restored.keys()]).toEqual([...source.keys()]);
  for (const [rel, want] of source) {
    const got = restored.get(rel)!;
    const { blocks, mtimeUs: gotUs, ...gotRest } = got;
    const { blocks: _ignored, mtimeUs: wantUs, ...wantRest } = want;
    expect(gotRest, rel).toEqual(wantRest);
    expect(Math.abs(gotUs - wantUs), `${rel} mtime`).toBeLessThanOrEqual(1);
    // Zero chunks stay holes (chunks holding some data are written whole, zeros included).
    if (rel === 'sparse.bin') expect(blocks * 512, 'holes kept').toBeLessThan(want.size / 4);
  }
}

const restoredRoot = (target: string) => join(target, subvol);

/** The parts of `lifeboat --json restore` of a snapshot job these tests read. */
interface RestoreDoc {
  ok: boolean;
  kind: string;
  dryRun: boolean;
  snapshotId: string;
  source: 'local' | 'repository';
  localNotUsed?: string;
  localSnapshot: {
    name: string;
    path: string;
    check: { entries: number; durationMs: number; problem?: string };
    chunks: { local: number; repository: number };
  };
}

describeWith(
  facility,
  'local restore points of a btrfs snapshot job (real btrfs, real repository, CLI)',
  () => {
    beforeAll(async () => {
      dir = await fx.tempDir('lifeboat-local-restore-');
      const image = await fx.sparseFile(join(dir, 'btrfs.img'), 512 * 1024 * 1024);
      await fx.mkfs(image, 'btrfs');
      const dev = await fx.attach(image);
      mnt = join(dir, 'mnt');
      await mkdir(mnt);
      await fx.mount(dev, mnt);
      subvol = join(mnt, 'data');
      snapDir = join(mnt, '.lifeboat-snapshots');
      await runChecked(['btrfs', 'subvolume', 'create', subvol]);

      // A tree with everything restore must reproduce.
      await mkdir(join(subvol, 'docs', 'deep', 'deeper'), { recursive: true });
      await writeFile(join(subvol, 'docs', 'readme.txt'), 'hello\n');
      await writeFile(join(subvol, 'docs', 'deep', 'deeper', 'note.md'), '# note\n'.repeat(100));
      await writeFile(join(subvol, 'empty'), '');
      const random = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < random.length; i += 4) random.writeUInt32LE((i * 2654435761) >>> 0, i);
      await writeFile(join(subvol, 'big.bin'), random); // several chunks
      const sparse = await open(join(subvol, 'sparse.bin'), 'w');
      await sparse.write(Buffer.from('start'), 0, 5, 0);
      await sparse.write(Buffer.from('middle'), 0, 6, 32 * 1024 * 1024);
      await sparse.truncate(64 * 1024 * 1024);
      await sparse.close();
      await writeFile(join(subvol, 'owned.txt'), 'owned by someone else\n', { mode: 0o640 });
      await chown(join(subvol, 'owned.txt'), 1234, 5678);
      await link(join(subvol, 'docs', 'readme.txt'), join(subvol, 'readme-hardlink.txt'));
      await symlink('docs/readme.txt', join(subvol, 'readme-link'));
      await symlink('/nonexistent/target', join(subvol, 'dangling'));
      await utimes(join(subvol, 'docs', 'readme.txt'), 1_600_000_000.123456, 1_600_000_000.123456);

      config = join(dir, 'lifeboat.yaml');
      await writeFile(
        config,
        [
          'defaults:',
          `  stateDir: ${join(dir, 'state')}`,
          'repositories:',
          '  main:',
          `    url: file://${join(dir, 'repo')}`,
          '    password: env:LIFEBOAT_TEST_PW',
          'policies:',
          '  standard: { rpo: 1d, rto: 1h }',
          'jobs:',
          '  vol:',
          '    kind: snapshot',
          '    provider: btrfs',
          `    source: ${subvol}`,
          '    keepLocal: 2',
          '    policy: standard',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      expect((await lb('repo', 'init')).code).toBe(0);
      for (let i = 0; i < 2; i++) {
        await writeFile(join(subvol, 'version.txt'), `v${i}\n`);
        const { code, doc } = await lbJson<{ results: { snapshotId: string }[] }>('backup', 'vol');
        expect(code).toBe(0);
        ids.push(doc.results[0]!.snapshotId);
      }
    }, 120_000);

    afterAll(async () => {
      expect(await fx.disposeAll()).toEqual([]);
    });

    it('lists the kept snapshots with location local beside the repository snapshots', async () => {
      const { code, doc } = await lbJson<{
        repositories: { repository: string; snapshots: { id: string }[] }[];
        local: { job: string; snapshots: Record<string, unknown>[] }[];
      }>('snapshots', '--job', 'vol');
      expect(code).toBe(0);
      expect(doc.repositories[0]!.snapshots.map((s) => s.id)).toEqual(ids);
      expect(doc.local.map((l) => l.job)).toEqual(['vol']);
      const local = doc.local[0]!.snapshots;
      expect(local).toHaveLength(2);
      const names = (await readdir(snapDir)).sort().reverse(); // newest first
      expect(local.map((l) => l.name)).toEqual(names);
      for (const [i, l] of local.entries()) {
        expect(l).toMatchObject({
          location: 'local',
          provider: 'btrfs',
          path: join(snapDir, names[i]!),
          repositorySnapshots: [{ repository: 'main', id: ids[1 - i] }],
          checked: 'quick',
          intact: true,
        });
        expect(Date.parse(l.createdAt as string)).toBeGreaterThan(0);
      }

      const verified = await lbJson<typeof doc>('snapshots', '--job', 'vol', '--verify-local');
      expect(verified.doc.local[0]!.snapshots.map((l) => [l.checked, l.intact])).toEqual([
        ['full', true],
        ['full', true],
      ]);

      const text = await lb('snapshots', '--job', 'vol');
      expect(text.stdout).toContain('local (snapshots kept on this machine)');
      expect(text.stdout).toContain(join(snapDir, names[0]!));
      expect(text.stdout).toContain(`main:${ids[1]!.slice(0, 12)}`);
      expect(text.stdout).toContain('intact (quick check)');
    });

    it('restores from the intact local snapshot, equal to the source and to a repository restore', async () => {
      const source = await describeTree(subvol);
      const localTarget = join(dir, 'restore-local');
      const local = await lbJson<RestoreDoc>('restore', 'vol', '--target', localTarget);
      expect(local.code).toBe(0);
      expect(local.doc).toMatchObject({
        ok: true,
        kind: 'snapshot',
        source: 'local',
        snapshotId: ids[1],
        localSnapshot: { provider: 'btrfs', path: expect.stringContaining(snapDir) },
      });
      expect(local.doc.localNotUsed).toBeUndefined();
      expect(local.doc.localSnapshot.check.entries).toBe(source.size);
      expect(local.doc.localSnapshot.chunks.local).toBeGreaterThan(5);
      expect(local.doc.localSnapshot.chunks.repository).toBe(0);
      expectSameTree(await describeTree(restoredRoot(localTarget)), source);

      const repoTarget = join(dir, 'restore-repo');
      const fromRepo = await lbJson<RestoreDoc>(
        'restore',
        'vol',
        '--target',
        repoTarget,
        '--from-repository',
      );
      expect(fromRepo.code).toBe(0);
      expect(fromRepo.doc).toMatchObject({
        source: 'repository',
        localNotUsed: '--from-repository was given',
      });
      expectSameTree(await describeTree(restoredRoot(repoTarget)), source);

      const text = await lb('restore', 'vol', '--target', join(dir, 'restore-text'));
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(
        /data came from local snapshot .*lifeboat-vol-.*\.kept \(intact: \d+ entries checked/,
      );
    });

    it('restores an older restore point from its own local snapshot, and says what a dry run would use', async () => {
      const older = await lbJson<RestoreDoc>(
        'restore',
        'vol',
        '--snapshot',
        ids[0]!.slice(0, 12),
        '--target',
        join(dir, 'restore-older'),
      );
      expect(older.doc).toMatchObject({ source: 'local', snapshotId: ids[0] });
      expect(await readFile(join(restoredRoot(join(dir, 'restore-older')), 'version.txt'), 'utf8')).toBe(
        'v0\n',
      );

      const at = await lbJson<RestoreDoc>(
        'restore',
        'vol',
        '--at',
        new Date().toISOString(),
        '--dry-run',
        '--target',
        join(dir, 'restore-dry'),
      );
      expect(at.doc).toMatchObject({ dryRun: true, source: 'local', snapshotId: ids[1] });
      await expect(lstat(join(dir, 'restore-dry'))).rejects.toThrow(/ENOENT/);
      const dry = await lb('restore', 'vol', '--dry-run', '--target', join(dir, 'restore-dry'));
      expect(dry.stdout).toContain('data would come from local snapshot');

      const named = await lbJson<RestoreDoc>(
        'restore',
        'vol',
        '--repository',
        'main',
        '--dry-run',
        '--target',
        join(dir, 'restore-dry'),
      );
      expect(named.doc).toMatchObject({ source: 'repository', localNotUsed: '--repository main was given' });
    });

    it('falls back to the repository when the local snapshot was made writable and changed, and says why', async () => {
      const newest = (await readdir(snapDir)).sort().at(-1)!;
      const path = join(snapDir, newest);
      await runChecked(['btrfs', 'property', 'set', '-ts', path, 'ro', 'false']);
      // Same size, mtime put back: only the ctime tells.
      const note = join(path, 'docs', 'deep', 'deeper', 'note.md');
      const before = await lstat(note);
      await writeFile(note, '# NOTE\n'.repeat(100));
      await utimes(note, before.atime, before.mtime);

      const writable = await lbJson<RestoreDoc>('restore', 'vol', '--target', join(dir, 'restore-writable'));
      expect(writable.code).toBe(0);
      expect(writable.doc.source).toBe('repository');
      expect(writable.doc.localNotUsed).toMatch(/is writable/);
      expect(
        await readFile(
          join(restoredRoot(join(dir, 'restore-writable')), 'docs', 'deep', 'deeper', 'note.md'),
          'utf8',
        ),
      ).toBe('# note\n'.repeat(100));

      await runChecked(['btrfs', 'property', 'set', '-ts', path, 'ro', 'true']);
      const changed = await lbJson<RestoreDoc>('restore', 'vol', '--target', join(dir, 'restore-changed'));
      expect(changed.doc.source).toBe('repository');
      expect(changed.doc.localNotUsed).toMatch(
        /differs from the backup: docs\/deep\/deeper\/note\.md was changed after the backup/,
      );
      expect(changed.doc.localSnapshot.check.problem).toMatch(/note\.md/);
      expectSameTree(
        await describeTree(restoredRoot(join(dir, 'restore-changed'))),
        await describeTree(restoredRoot(join(dir, 'restore-repo'))),
      );

      const listed = await lbJson<{ local: { snapshots: Record<string, unknown>[] }[] }>(
        'snapshots',
        '--job',
        'vol',
        '--verify-local',
      );
      expect(listed.doc.local[0]!.snapshots[0]).toMatchObject({
        name: newest,
        intact: false,
        checked: 'full',
      });
      expect(listed.doc.local[0]!.snapshots[1]).toMatchObject({ intact: true });

      const text = await lb('restore', 'vol', '--target', join(dir, 'restore-changed-text'));
      expect(text.stdout).toMatch(
        /from repository main; local snapshot not used: local snapshot .* differs from the backup/,
      );
    });

    it('falls back to the repository when the local snapshot was deleted', async () => {
      const oldest = (await readdir(snapDir)).sort()[0]!;
      await runChecked(['btrfs', 'subvolume', 'delete', join(snapDir, oldest)]);
      const r = await lbJson<RestoreDoc>(
        'restore',
        'vol',
        '--snapshot',
        ids[0]!,
        '--target',
        join(dir, 'restore-deleted'),
      );
      expect(r.code).toBe(0);
      expect(r.doc).toMatchObject({ source: 'repository', snapshotId: ids[0] });
      expect(r.doc.localNotUsed).toBe(`local snapshot ${oldest} is not on this machine (pruned or deleted)`);
      expect(await readFile(join(restoredRoot(join(dir, 'restore-deleted')), 'version.txt'), 'utf8')).toBe(
        'v0\n',
      );

      const listed = await lbJson<{ local: { snapshots: unknown[] }[] }>('snapshots', '--job', 'vol');
      expect(listed.doc.local[0]!.snapshots).toHaveLength(1);
    });
  },
);
