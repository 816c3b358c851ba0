/**
 * A restored file whose content does not match the SHA-256 recorded at
 * backup is removed and reported, whichever path wrote it: a small file of
 * one chunk (written whole by a worker) or a larger one (written here). The
 * repository's trees are authenticated, so the mismatch is made by serving
 * trees with a wrong hash through a wrapper.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import type { Repo } from '../../../src/repository/api.js';
import type { Tree } from '../../../src/repository/tree.js';
import { backupFiles, restoreTree } from '../../../src/sources/files/index.js';
import { pseudoRandom } from '../../unit/repository/helpers.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

/** `repo`, but every file named in `wrong` is recorded with another SHA-256. */
function withWrongHashes(repo: Repo, wrong: Set<string>): Repo {
  return new Proxy(repo, {
    get(target, key) {
      if (key !== 'loadTree') return Reflect.get(target, key, target) as unknown;
      return async (id: string): Promise<Tree> => {
        const tree = await target.loadTree(id);
        return {
          ...tree,
          nodes: tree.nodes.map((n) => (wrong.has(n.name) ? { ...n, sha256: '0'.repeat(64) } : n)),
        };
      };
    },
  });
}

describe('restore checks every file against its recorded SHA-256', () => {
  let dir: string;
  let t: TestRepo;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-verify-'));
    t = await openTestRepo(join(dir, 'repo'));
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('removes and reports a small and a large file that do not match, and restores the rest', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'small'), 'small content\n');
    await writeFile(join(src, 'large'), pseudoRandom(3 * 1024 * 1024, 'large'));
    await writeFile(join(src, 'fine'), 'fine\n');
    const spec = { paths: [src], include: [], exclude: [], oneFileSystem: false, xattrs: false };
    const { tree } = await backupFiles(t.repo, spec, { logger: silentLogger });
    const target = join(dir, 'target');
    const result = await restoreTree(withWrongHashes(t.repo, new Set(['small', 'large'])), tree, target, {
      dryRun: false,
      logger: silentLogger,
      overwrite: 'never',
    });
    const failed = result.errors.map((e) => e.path).sort();
    expect(failed).toEqual([join(src, 'large').slice(1), join(src, 'small').slice(1)]);
    for (const e of result.errors) expect(e.message).toMatch(/does not match the SHA-256 recorded at backup/);
    expect(await readdir(join(target, src))).toEqual(['fine']);
  });
});
