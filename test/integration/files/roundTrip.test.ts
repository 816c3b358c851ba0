import { mkdtemp, readdir, readFile, readlink, rm, lstat, stat, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { backupFiles, listTree, restoreTree, verifyRestoredTree } from '../../../src/sources/files/index.js';
import type { FilesSpec } from '../../../src/sources/files/index.js';
import { ESCAPED_INVALID_NAME, INVALID_NAME, SPARSE_SIZE, buildSourceTree } from './sourceTree.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const spec = (paths: string[], more: Partial<FilesSpec> = {}): FilesSpec => ({
  paths,
  include: [],
  exclude: [],
  oneFileSystem: false,
  xattrs: false,
  ...more,
});

describe('files backup and restore round trip', () => {
  let dir: string;
  let t: TestRepo;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-files-rt-'));
    t = await openTestRepo(join(dir, 'repo'));
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('restores every kind of entry with its metadata', async () => {
    await mkdir(join(dir, 'src'));
    const src = await buildSourceTree(join(dir, 'src'));
    const data = join(dir, 'src', 'data');
    const result = await backupFiles(t.repo, spec([data], { xattrs: src.hasXattr }), {
      logger: silentLogger,
    });
    expect(result.warnings).toEqual([]);
    expect(result.partial).toBe(false);
    expect(result.fingerprint.files).toBe(12);
    expect(result.fingerprint.symlinks).toBe(3);
    expect(result.fingerprint.bytes).toBe(result.stats.bytes);

    const target = join(dir, 'restored');
    const restored = await restoreTree(t.repo, result.tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    expect(restored.errors).toEqual([]);
    expect(restored.files).toBe(12);
    // The source path is nested under its own components.
    const out = join(target, data);
    expect(await verifyRestoredTree(t.repo, result.tree, target)).toEqual([]);

    expect(await readFile(join(out, 'small.txt'), 'utf8')).toBe('hello, lifeboat\n');
    expect((await stat(join(out, 'empty'))).size).toBe(0);
    expect((await readdir(join(out, 'empty-dir'))).length).toBe(0);
    expect(await readlink(join(out, 'rel-link'))).toBe('small.txt');
    expect(await readlink(join(out, 'abs-link'))).toBe('/etc/hostname');
    expect(await readlink(join(out, 'dangling-link'))).toBe('does/not/exist');
    expect((await lstat(join(out, 'fifo'))).isFIFO()).toBe(true);

    const a = await stat(join(out, 'linked-a'));
    expect(a.nlink).toBe(3);
    expect((await stat(join(out, 'linked-b'))).ino).toBe(a.ino);
    expect((await stat(join(out, 'sub', 'linked-c'))).ino).toBe(a.ino);

    const sparse = await stat(join(out, 'sparse.img'));
    expect(sparse.size).toBe(SPARSE_SIZE);
    expect(sparse.blocks * 512).toBeLessThan(SPARSE_SIZE / 4);

    const names = await readdir(join(out, 'sub'), { encoding: 'buffer' });
    expect(names.some((n) => n.equals(INVALID_NAME))).toBe(true);
    expect(await readFile(Buffer.concat([Buffer.from(join(out, 'sub') + '/'), INVALID_NAME]), 'utf8')).toBe(
      'invalid name content',
    );
    expect(await readFile(join(out, 'sub', ESCAPED_INVALID_NAME), 'utf8')).toBe('look-alike');

    expect((await stat(join(out, 'private.key'))).mode & 0o7777).toBe(0o600);
    expect((await stat(join(out, 'tool.sh'))).mode & 0o7777).toBe(0o4755);
    expect((await stat(join(out, 'sub'))).mode & 0o7777).toBe(0o750);
    // Directory mtimes are applied after their contents were written.
    expect((await stat(join(out, 'sub'))).mtimeMs).toBe(1_500_000_000_000);
    const small = await stat(join(out, 'small.txt'), { bigint: true });
    const smallSrc = await stat(join(data, 'small.txt'), { bigint: true });
    expect(Number(small.mtimeNs - smallSrc.mtimeNs)).toBeLessThan(1000);
    expect(Number(smallSrc.mtimeNs - small.mtimeNs)).toBeLessThan(1000);
    if (src.isRoot) {
      expect(small.uid).toBe(1234n);
      expect(small.gid).toBe(2345n);
      if (src.hasDevice) expect((await lstat(join(out, 'null-dev'))).isCharacterDevice()).toBe(true);
    }
    if (src.hasXattr) {
      const { run } = await import('../../../src/platform/exec.js');
      const got = await run(['getfattr', '--only-values', '-n', 'user.lifeboat', join(out, 'small.txt')]);
      expect(got.stdout).toBe('kept');
    }
  });

  it('nests several paths under their components and lists them', async () => {
    await mkdir(join(dir, 'srv', 'www'), { recursive: true });
    await mkdir(join(dir, 'etc'));
    await writeFile(join(dir, 'srv', 'www', 'index.html'), '<h1>hi</h1>');
    await writeFile(join(dir, 'etc', 'app.conf'), 'x=1');
    const result = await backupFiles(
      t.repo,
      spec([join(dir, 'srv', 'www'), join(dir, 'etc', 'app.conf'), join(dir, 'srv', 'www', 'index.html')]),
      { logger: silentLogger },
    );
    const rel = dir.slice(1);
    const all: string[] = [];
    for await (const e of listTree(t.repo, result.tree, '', { recursive: true }))
      all.push(`${e.type}:${e.path}`);
    expect(all).toContain(`file:${rel}/srv/www/index.html`);
    expect(all).toContain(`file:${rel}/etc/app.conf`);
    // The nested path inside /srv/www was not stored twice.
    expect(all.filter((p) => p.endsWith('index.html'))).toHaveLength(1);
    const top: string[] = [];
    for await (const e of listTree(t.repo, result.tree, `${rel}/srv`, { recursive: false })) top.push(e.path);
    expect(top).toEqual([`${rel}/srv/www`]);
    const one: string[] = [];
    for await (const e of listTree(t.repo, result.tree, `/${rel}/etc/app.conf`, { recursive: false })) {
      one.push(`${e.path}:${e.size}`);
    }
    expect(one).toEqual([`${rel}/etc/app.conf:3`]);
    await expect(async () => {
      for await (const _ of listTree(t.repo, result.tree, `${rel}/nope`, { recursive: false })) void _;
    }).rejects.toThrow(/does not exist in the snapshot/);
  });

  it('handles a 300-level deep tree without overflowing the stack', async () => {
    let p = join(dir, 'deep');
    const root = p;
    for (let i = 0; i < 300; i++) p = join(p, 'd');
    await mkdir(p, { recursive: true });
    await writeFile(join(p, 'bottom.txt'), 'at the bottom');
    const result = await backupFiles(t.repo, spec([root]), { logger: silentLogger });
    expect(result.fingerprint.dirs).toBeGreaterThanOrEqual(301);
    const target = join(dir, 'out');
    const restored = await restoreTree(t.repo, result.tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    expect(restored.errors).toEqual([]);
    expect(await readFile(join(target, p, 'bottom.txt'), 'utf8')).toBe('at the bottom');
    expect(await verifyRestoredTree(t.repo, result.tree, target)).toEqual([]);
  });
});
