import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import {
  backupFiles,
  restoreTree,
  RestoreTargetError,
  verifyRestoredTree,
  type FilesSpec,
} from '../../../src/sources/files/index.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const spec = (paths: string[], more: Partial<FilesSpec> = {}): FilesSpec => ({
  paths,
  include: [],
  exclude: [],
  oneFileSystem: false,
  xattrs: false,
  ...more,
});
const opts = { dryRun: false, logger: silentLogger };

describe('restore modes', () => {
  let dir: string;
  let src: string;
  let tree: string;
  let t: TestRepo;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-'));
    t = await openTestRepo(join(dir, 'repo'));
    src = join(dir, 'src');
    await mkdir(join(src, 'docs'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'alpha');
    await writeFile(join(src, 'b.txt'), 'bravo');
    await writeFile(join(src, 'docs', 'readme.md'), '# readme');
    await writeFile(join(src, 'docs', 'notes.log'), 'log');
    tree = (await backupFiles(t.repo, spec([src]), { logger: silentLogger })).tree;
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a non-empty target with overwrite never, before writing anything', async () => {
    const target = join(dir, 'target');
    await mkdir(target);
    await writeFile(join(target, 'existing'), 'mine');
    const err = await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'never' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RestoreTargetError);
    expect((err as Error).message).toBe(`restore target ${target} is not empty`);
    expect((err as RestoreTargetError).hint).toMatch(/--overwrite/);
    expect(await readdir(target)).toEqual(['existing']);
  });

  it('refuses a target that is a file', async () => {
    await writeFile(join(dir, 'file'), 'x');
    await expect(
      restoreTree(t.repo, tree, join(dir, 'file'), { ...opts, overwrite: 'always' }),
    ).rejects.toThrow(/is not a directory/);
  });

  it('if-changed replaces only what differs, always replaces everything', async () => {
    const target = join(dir, 'target');
    const first = await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'never' });
    expect(first.files).toBe(4);
    const out = join(target, src);
    // Change one file; give another the same size but different content and mtime.
    await writeFile(join(out, 'a.txt'), 'changed content');
    await writeFile(join(out, 'b.txt'), 'BRAVO');
    await utimes(join(out, 'b.txt'), 1, 1);
    // An outside hardlink to a restored file must not be modified by replacing it.
    await link(join(out, 'docs', 'readme.md'), join(dir, 'hardlink-to-readme'));
    await writeFile(join(out, 'docs', 'readme.md'), '# edited');

    const second = await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'if-changed' });
    expect(second.errors).toEqual([]);
    expect(second.files).toBe(3);
    expect(second.skipped).toBe(1); // notes.log
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('alpha');
    expect(await readFile(join(out, 'b.txt'), 'utf8')).toBe('bravo');
    expect(await readFile(join(out, 'docs', 'readme.md'), 'utf8')).toBe('# readme');
    expect(await readFile(join(dir, 'hardlink-to-readme'), 'utf8')).toBe('# edited');
    expect(await verifyRestoredTree(t.repo, tree, target)).toEqual([]);

    const third = await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'if-changed' });
    expect(third.files).toBe(0);
    expect(third.skipped).toBe(4);

    const inode = (await stat(join(out, 'a.txt'))).ino;
    const fourth = await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'always' });
    expect(fourth.files).toBe(4);
    expect((await stat(join(out, 'a.txt'))).ino).not.toBe(inode);
  });

  it('never refuses a second restore into the same target', async () => {
    const target = join(dir, 'target');
    await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'never' });
    await expect(restoreTree(t.repo, tree, target, { ...opts, overwrite: 'never' })).rejects.toBeInstanceOf(
      RestoreTargetError,
    );
  });

  it('dry run lists what would be restored and writes nothing', async () => {
    const target = join(dir, 'target');
    const result = await restoreTree(t.repo, tree, target, { ...opts, dryRun: true, overwrite: 'never' });
    const rel = src.slice(1);
    expect(result.planned).toEqual(
      expect.arrayContaining([`${rel}/a.txt`, `${rel}/b.txt`, `${rel}/docs`, `${rel}/docs/readme.md`]),
    );
    expect(result.files).toBe(4);
    expect(result.bytes).toBe('alpha'.length + 'bravo'.length + '# readme'.length + 'log'.length);
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
  });

  it('dry run with if-changed leaves out unchanged files', async () => {
    const target = join(dir, 'target');
    await restoreTree(t.repo, tree, target, { ...opts, overwrite: 'never' });
    await writeFile(join(target, src, 'a.txt'), 'different length');
    const result = await restoreTree(t.repo, tree, target, {
      ...opts,
      dryRun: true,
      overwrite: 'if-changed',
    });
    expect(
      result.planned?.filter((p) => p.endsWith('.txt') || p.endsWith('.md') || p.endsWith('.log')),
    ).toEqual([`${src.slice(1)}/a.txt`]);
    expect(await readFile(join(target, src, 'a.txt'), 'utf8')).toBe('different length');
  });

  it('restores only included paths, with their parent directories', async () => {
    const target = join(dir, 'target');
    const result = await restoreTree(t.repo, tree, target, {
      ...opts,
      overwrite: 'never',
      include: ['*.md'],
    });
    expect(result.errors).toEqual([]);
    expect(result.files).toBe(1);
    expect(await readdir(join(target, src))).toEqual(['docs']);
    expect(await readdir(join(target, src, 'docs'))).toEqual(['readme.md']);
    const whole = await restoreTree(t.repo, tree, join(dir, 't2'), {
      ...opts,
      overwrite: 'never',
      include: [`${src.slice(1)}/docs`],
    });
    expect(whole.files).toBe(2);
  });
});
