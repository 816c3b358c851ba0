/**
 * Restore must never write outside its target, whatever the repository
 * holds. Each hostile tree is saved as a raw tree blob by hand (saveTree would refuse it); every bad
 * entry must become a clear error entry and the sandbox around the target
 * must be left exactly as it was.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import type { Repo } from '../../../src/repository/api.js';
import type { TreeNode } from '../../../src/repository/tree.js';
import { restoreTree, type OverwriteMode } from '../../../src/sources/files/index.js';
import { openTestRepo, saveRawTree, type TestRepo } from './testRepo.js';

const MTIME = '1700000000000000000';

async function fileNode(
  repo: Repo,
  name: string,
  text: string,
  extra: Partial<TreeNode> = {},
): Promise<TreeNode> {
  const data = Buffer.from(text);
  const { id } = await repo.saveBlob('data', data);
  const { createHash } = await import('node:crypto');
  return {
    name,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtimeNs: MTIME,
    size: data.length,
    content: [id],
    sha256: createHash('sha256').update(data).digest('hex'),
    ...extra,
  };
}

async function dirNode(repo: Repo, name: string, nodes: TreeNode[]): Promise<TreeNode> {
  return {
    name,
    type: 'dir',
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtimeNs: MTIME,
    subtree: await saveRawTree(repo, nodes),
  };
}

function symlinkNode(name: string, target: string): TreeNode {
  return { name, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: MTIME, linkTarget: target };
}

/** Every path below `root` (not following symlinks), for before/after comparison. */
async function listAll(root: string): Promise<string[]> {
  const out: string[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const name of await readdir(d)) {
      const p = join(d, name);
      out.push(p);
      if ((await lstat(p)).isDirectory()) stack.push(p);
    }
  }
  return out.sort();
}

describe('restore of hostile trees', () => {
  let sandbox: string;
  let target: string;
  let outside: string;
  let t: TestRepo;

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'lifeboat-hostile-'));
    target = join(sandbox, 'target');
    outside = join(sandbox, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'victim'), 'original');
    t = await openTestRepo(join(sandbox, 'repo'));
  });
  afterEach(async () => {
    await t.close();
    await rm(sandbox, { recursive: true, force: true });
  });

  async function restore(nodes: TreeNode[], overwrite: OverwriteMode = 'never') {
    const tree = await saveRawTree(t.repo, nodes);
    // Everything but the target and the repository (which writes packs in the background).
    const watched = (p: string) =>
      ![target, join(sandbox, 'repo')].some((skip) => p === skip || p.startsWith(skip + '/'));
    const before = (await listAll(sandbox)).filter(watched);
    const result = await restoreTree(t.repo, tree, target, {
      overwrite,
      dryRun: false,
      logger: silentLogger,
    });
    const after = (await listAll(sandbox)).filter(watched);
    expect(after).toEqual(before);
    expect(await readFile(join(outside, 'victim'), 'utf8')).toBe('original');
    return result;
  }

  it.each([
    ['..', /"\.\."/],
    ['.', /"\."/],
    ['', /empty/],
    [`${'/tmp'}/lifeboat-absolute-name`, /contains "\/"/],
    ['a/b', /contains "\/"/],
    ['../outside/victim', /contains "\/"/],
    ['nul\0byte', /NUL/],
  ])('refuses the name %j', async (name, why) => {
    const result = await restore([
      await fileNode(t.repo, name, 'evil'),
      await fileNode(t.repo, 'good', 'fine'),
    ]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.message).toMatch(why);
    expect(result.errors[0]!.message).toMatch(/refusing entry/);
    expect(await readFile(join(target, 'good'), 'utf8')).toBe('fine');
    expect(await readdir(target)).toEqual(['good']);
  });

  it('refuses a directory named ".." without looking inside it', async () => {
    const result = await restore([await dirNode(t.repo, '..', [await fileNode(t.repo, 'victim', 'pwned')])]);
    expect(result.errors).toHaveLength(1);
    expect(await readdir(target)).toEqual([]);
  });

  it('refuses raw name bytes that spell ".."', async () => {
    const node = await fileNode(t.repo, 'innocent', 'pwned', {
      nameRaw: Buffer.from('..').toString('base64'),
    });
    const result = await restore([node]);
    expect(result.errors[0]!.message).toMatch(/refusing entry "innocent".*"\.\."/);
  });

  it('refuses a symlink followed by a directory of the same name (and both duplicates)', async () => {
    const result = await restore([
      symlinkNode('x', outside),
      await dirNode(t.repo, 'x', [await fileNode(t.repo, 'victim', 'pwned')]),
      await fileNode(t.repo, 'ok', 'fine'),
    ]);
    expect(result.errors.map((e) => e.path)).toEqual(['x', 'x']);
    expect(result.errors.every((e) => /same name/.test(e.message))).toBe(true);
    expect(await readdir(target)).toEqual(['ok']);
  });

  it('refuses duplicate file names', async () => {
    const result = await restore([
      await fileNode(t.repo, 'dup', 'one'),
      await fileNode(t.repo, 'dup', 'two'),
    ]);
    expect(result.errors).toHaveLength(2);
    expect(await readdir(target)).toEqual([]);
  });

  it('creates symlinks pointing outside only as leaves, never following them', async () => {
    const result = await restore([symlinkNode('escape', join(outside, 'victim'))]);
    expect(result.errors).toEqual([]);
    expect(await readlink(join(target, 'escape'))).toBe(join(outside, 'victim'));
  });

  it('does not pass through a symlink already in the target (if-changed)', async () => {
    await mkdir(target);
    await symlink(outside, join(target, 'x'));
    const result = await restore(
      [
        await dirNode(t.repo, 'x', [
          await fileNode(t.repo, 'victim', 'pwned'),
          await fileNode(t.repo, 'new', 'n'),
        ]),
      ],
      'if-changed',
    );
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.message).toMatch(/symlink exists in the target/);
    expect(await readdir(outside)).toEqual(['victim']);
  });

  it('replaces a symlink in the target by a real directory (always)', async () => {
    await mkdir(target);
    await symlink(outside, join(target, 'x'));
    const result = await restore(
      [await dirNode(t.repo, 'x', [await fileNode(t.repo, 'victim', 'restored')])],
      'always',
    );
    expect(result.errors).toEqual([]);
    expect((await lstat(join(target, 'x'))).isDirectory()).toBe(true);
    expect(await readFile(join(target, 'x', 'victim'), 'utf8')).toBe('restored');
  });

  it.each(['always', 'if-changed'] as const)(
    'replaces a symlink at a file position without writing through it (%s)',
    async (mode) => {
      await mkdir(target);
      await symlink(join(outside, 'victim'), join(target, 'f'));
      const result = await restore([await fileNode(t.repo, 'f', 'restored content')], mode);
      expect(result.errors).toEqual([]);
      expect((await lstat(join(target, 'f'))).isFile()).toBe(true);
      expect(await readFile(join(target, 'f'), 'utf8')).toBe('restored content');
    },
  );

  it('links hardlinks only to files this restore created', async () => {
    const key = '1:42';
    const result = await restore([
      await fileNode(t.repo, '..', 'refused first copy', { hardlinkKey: key }),
      await fileNode(t.repo, 'second', 'own copy', { hardlinkKey: key }),
    ]);
    expect(result.errors).toHaveLength(1);
    expect(await readFile(join(target, 'second'), 'utf8')).toBe('own copy');
    expect((await lstat(join(target, 'second'))).nlink).toBe(1);
  });

  it('reports malformed entries instead of crashing', async () => {
    const bad = [
      { ...(await fileNode(t.repo, 'bad-mode', 'x')), mode: -1 },
      { ...(await fileNode(t.repo, 'bad-content', 'x')), content: [{ zero: -5 }] } as TreeNode,
      { name: 'dir-without-tree', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: MTIME } as TreeNode,
      { ...(await fileNode(t.repo, 'lying-size', 'x')), size: 1000 },
      { ...(await fileNode(t.repo, 'lying-hash', 'x')), sha256: '0'.repeat(64) },
      // A listing the repository itself cannot decode fails for that directory only.
      await dirNode(t.repo, 'undecodable', [
        { name: 'no-type', mode: 0o644, uid: 0, gid: 0, mtimeNs: MTIME } as unknown as TreeNode,
      ]),
      await fileNode(t.repo, 'good', 'fine'),
    ];
    const result = await restore(bad);
    expect(result.errors.map((e) => e.path).sort()).toEqual(
      ['bad-content', 'bad-mode', 'dir-without-tree', 'lying-hash', 'lying-size', 'undecodable'].sort(),
    );
    expect(result.errors.find((e) => e.path === 'lying-hash')!.message).toMatch(/SHA-256/);
    expect(result.errors.find((e) => e.path === 'undecodable')!.message).toMatch(/directory listing/);
    // Content that fails verification is not left behind looking restored.
    expect(await readdir(target)).toEqual(['good']);
  });
});
