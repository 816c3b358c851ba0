import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { backupFiles, listTree, type FilesSpec } from '../../../src/sources/files/index.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const spec = (paths: string[], more: Partial<FilesSpec> = {}): FilesSpec => ({
  paths,
  include: [],
  exclude: [],
  oneFileSystem: false,
  xattrs: false,
  ...more,
});

describe('include, exclude and one-file-system', () => {
  let dir: string;
  let src: string;
  let t: TestRepo;

  async function paths(tree: string, under = ''): Promise<string[]> {
    const out: string[] = [];
    for await (const e of listTree(t.repo, tree, under, { recursive: true })) out.push(e.path);
    return out;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-filters-'));
    t = await openTestRepo(join(dir, 'repo'));
    src = join(dir, 'src');
    await mkdir(join(src, 'app', 'node_modules', 'lib'), { recursive: true });
    await mkdir(join(src, 'app', 'cache'), { recursive: true });
    await mkdir(join(src, 'conf'), { recursive: true });
    await writeFile(join(src, 'app', 'main.js'), 'main');
    await writeFile(join(src, 'app', 'debug.log'), 'log');
    await writeFile(join(src, 'app', 'node_modules', 'lib', 'index.js'), 'lib');
    await writeFile(join(src, 'app', 'cache', 'blob'), 'cached');
    await writeFile(join(src, 'conf', 'app.conf'), 'conf');
    await writeFile(join(src, 'conf', 'keep.log'), 'keep');
  });
  afterEach(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves out excluded entries (gitignore semantics, anchored and unanchored)', async () => {
    const result = await backupFiles(
      t.repo,
      spec([src], { exclude: ['*.log', '!keep.log', 'node_modules/', `${src}/app/cache`] }),
      { logger: silentLogger },
    );
    const rel = src.slice(1);
    expect(await paths(result.tree, rel)).toEqual([
      `${rel}/app`,
      `${rel}/app/main.js`,
      `${rel}/conf`,
      `${rel}/conf/app.conf`,
      `${rel}/conf/keep.log`,
    ]);
    expect(result.stats.excluded).toBe(3);
    expect(result.fingerprint.files).toBe(3);
  });

  it('takes only included entries and the directories leading to them', async () => {
    const result = await backupFiles(t.repo, spec([src], { include: ['*.conf', 'node_modules/'] }), {
      logger: silentLogger,
    });
    const rel = src.slice(1);
    expect(await paths(result.tree, rel)).toEqual([
      `${rel}/app`,
      `${rel}/app/node_modules`,
      `${rel}/app/node_modules/lib`,
      `${rel}/app/node_modules/lib/index.js`,
      `${rel}/conf`,
      `${rel}/conf/app.conf`,
    ]);
  });

  it('does not descend into other filesystems with oneFileSystem', async () => {
    // /dev/pts is its own filesystem inside /dev on Linux.
    const devDev = (await stat('/dev')).dev;
    const ptsDev = (await stat('/dev/pts')).dev;
    expect(ptsDev).not.toBe(devDev);
    const onlyPts = { include: ['/dev/pts'] };
    const crossing = await backupFiles(t.repo, spec(['/dev'], onlyPts), { logger: silentLogger });
    expect((await paths(crossing.tree, 'dev/pts')).length).toBeGreaterThan(0);
    const staying = await backupFiles(t.repo, spec(['/dev'], { ...onlyPts, oneFileSystem: true }), {
      logger: silentLogger,
    });
    expect(await paths(staying.tree, 'dev')).toEqual(['dev/pts']);
    expect(await paths(staying.tree, 'dev/pts')).toEqual([]);
  });
});
