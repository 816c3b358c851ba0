/**
 * Files with zero runs record `dataSha256` (contentDigest.ts): the SHA-256 of
 * their data chunks alone, so that holes are hashed neither at backup nor at
 * restore. Checked end to end on real files and the real engine: what is
 * recorded, that a restore checks it (a wrong one removes the file), and that
 * overwrite if-changed and the drills' tree verification still notice data
 * written where the snapshot has zeros.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import type { Repo } from '../../../src/repository/api.js';
import type { Tree, TreeNode } from '../../../src/repository/tree.js';
import { backupFiles, restoreTree, verifyRestoredTree } from '../../../src/sources/files/index.js';
import { pseudoRandom, textLike } from '../../unit/repository/helpers.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const MiB = 1024 * 1024;

/** The node at absolute `path` in the snapshot tree `root`. */
async function nodeAt(repo: Repo, root: string, path: string): Promise<TreeNode> {
  let tree: Tree = await repo.loadTree(root);
  const names = path.split('/').filter(Boolean);
  for (const [i, name] of names.entries()) {
    const node = tree.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`${name} not in the snapshot`);
    if (i === names.length - 1) return node;
    tree = await repo.loadTree(node.subtree!);
  }
  throw new Error('empty path');
}

/** `repo`, but the file named `name` records `node` fields changed by `change`. */
function withChangedNode(repo: Repo, name: string, change: Partial<TreeNode>): Repo {
  return new Proxy(repo, {
    get(target, key) {
      if (key !== 'loadTree') return Reflect.get(target, key, target) as unknown;
      return async (id: string): Promise<Tree> => {
        const tree = await target.loadTree(id);
        return { ...tree, nodes: tree.nodes.map((n) => (n.name === name ? { ...n, ...change } : n)) };
      };
    },
  });
}

describe('files with zero runs record and check the SHA-256 of their data chunks', () => {
  let dir: string;
  let src: string;
  let t: TestRepo;
  const spec = () => ({ paths: [src], include: [], exclude: [], oneFileSystem: false, xattrs: false });
  const restore = (repo: Repo, tree: string, target: string, overwrite: 'never' | 'if-changed' = 'never') =>
    restoreTree(repo, tree, target, { dryRun: false, logger: silentLogger, overwrite });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-sparse-digest-'));
    src = join(dir, 'src');
    await mkdir(src);
    t = await openTestRepo(join(dir, 'repo'));
    // 40 MiB: data, a 20 MiB hole, data, a hole to the end (mapped or read as zeros, both become zero runs).
    const sparse = join(src, 'disk.img');
    await writeFile(sparse, '');
    await truncate(sparse, 40 * MiB);
    const fh = await open(sparse, 'r+');
    await fh.write(textLike(3 * MiB + 123, 'boot'), 0, 3 * MiB + 123, 0);
    await fh.write(pseudoRandom(2 * MiB, 'middle'), 0, 2 * MiB, 24 * MiB);
    await fh.close();
    await writeFile(join(src, 'dense'), pseudoRandom(3 * MiB, 'dense'));
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('records dataSha256 for content with zero runs, sha256 otherwise, and restores both', async () => {
    const { tree } = await backupFiles(t.repo, spec(), { logger: silentLogger });
    const sparse = await nodeAt(t.repo, tree, join(src, 'disk.img'));
    expect(sparse.sha256).toBeUndefined();
    expect(sparse.content!.some((ref) => typeof ref !== 'string')).toBe(true);
    // Independently: the SHA-256 of the stored data chunks, in order.
    const data = createHash('sha256');
    for (const ref of sparse.content!) if (typeof ref === 'string') data.update(await t.repo.loadBlob(ref));
    expect(sparse.dataSha256).toBe(data.digest('hex'));
    const dense = await nodeAt(t.repo, tree, join(src, 'dense'));
    expect(dense.dataSha256).toBeUndefined();
    expect(dense.sha256).toBe(
      createHash('sha256')
        .update(await readFile(join(src, 'dense')))
        .digest('hex'),
    );

    const target = join(dir, 'target');
    const result = await restore(t.repo, tree, target);
    expect(result.errors).toEqual([]);
    const restored = join(target, src, 'disk.img');
    expect((await readFile(restored)).equals(await readFile(join(src, 'disk.img')))).toBe(true);
    expect((await stat(restored)).blocks * 512).toBeLessThan(10 * MiB); // the holes stayed holes
    expect(await verifyRestoredTree(t.repo, tree, target)).toEqual([]);

    // The second backup takes the digest from the file cache: the same node.
    const again = await backupFiles(t.repo, spec(), { logger: silentLogger });
    expect(await nodeAt(t.repo, again.tree, join(src, 'disk.img'))).toEqual(sparse);
  });

  it('removes and reports a file whose data chunks do not match its dataSha256', async () => {
    const { tree } = await backupFiles(t.repo, spec(), { logger: silentLogger });
    const wrong = withChangedNode(t.repo, 'disk.img', { dataSha256: '0'.repeat(64) });
    const target = join(dir, 'target');
    const result = await restore(wrong, tree, target);
    expect(result.errors.map((e) => e.path)).toEqual([join(src, 'disk.img').slice(1)]);
    expect(result.errors[0]!.message).toMatch(/does not match the SHA-256 recorded at backup/);
    await expect(stat(join(target, src, 'disk.img'))).rejects.toThrow(/ENOENT/);
  });

  it('sees data written where the snapshot has zeros: if-changed rewrites it, verification reports it', async () => {
    const { tree } = await backupFiles(t.repo, spec(), { logger: silentLogger });
    const target = join(dir, 'target');
    expect((await restore(t.repo, tree, target)).errors).toEqual([]);
    const restored = join(target, src, 'disk.img');
    const original = await readFile(restored);
    const later = new Date('2030-01-01T00:00:00Z'); // another mtime, so if-changed compares the content

    // Same content, other mtime: unchanged, left alone.
    await utimes(restored, later, later);
    const same = await restore(t.repo, tree, target, 'if-changed');
    expect(same.errors).toEqual([]);
    expect((await stat(restored)).mtime).toEqual(later);

    // A byte in the 20 MiB hole: the data chunks are the same, the file is not.
    const fh = await open(restored, 'r+');
    await fh.write(Buffer.from([7]), 0, 1, 10 * MiB);
    await fh.close();
    await utimes(restored, later, later);
    const mismatches = await verifyRestoredTree(t.repo, tree, target);
    expect(mismatches).toHaveLength(1);
    expect(mismatches[0]).toMatchObject({ path: join(src, 'disk.img').slice(1), kind: 'content' });
    expect(mismatches[0]!.actual).toMatch(/data where the snapshot has a run of zeros/);
    const rewritten = await restore(t.repo, tree, target, 'if-changed');
    expect(rewritten.errors).toEqual([]);
    expect((await readFile(restored)).equals(original)).toBe(true);
    expect(await verifyRestoredTree(t.repo, tree, target)).toEqual([]);
  });
});
