/**
 * A restore into a target that runs out of space stops with one clear error
 * (exit code 2) instead of one error per remaining file; what it restored
 * before is complete. Real ext4 on a loop device (root).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ExitCode } from '../../../src/errors.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { backupFiles, restoreTree, RestoreTargetError } from '../../../src/sources/files/index.js';
import { describeWith, LoopFixtures, probeExt4 } from '../../helpers/loop.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const facility = await probeExt4();
const loops = new LoopFixtures();

describeWith(facility, 'restore into a target that fills up', () => {
  let dir: string;
  let t: TestRepo;
  let tree: string;
  let mnt: string;

  beforeAll(async () => {
    dir = await loops.tempDir('lifeboat-targetfull-');
    t = await openTestRepo(join(dir, 'repo'));
    const src = join(dir, 'src');
    await mkdir(src);
    // 40 MiB in 400 files of 100 KiB (incompressible) for an 8 MiB file system.
    for (let i = 0; i < 400; i++)
      await writeFile(join(src, `f${String(i).padStart(3, '0')}`), randomBytes(100 * 1024));
    const spec = { paths: [src], include: [], exclude: [], oneFileSystem: false, xattrs: false };
    tree = (await backupFiles(t.repo, spec, { logger: silentLogger })).tree;
    const image = await loops.sparseFile(join(dir, 'small.img'), 8 * 1024 * 1024);
    await loops.mkfs(image, 'ext4');
    const dev = await loops.attach(image);
    mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await loops.mount(dev, mnt);
  });
  afterAll(async () => {
    await t?.close();
    await loops.disposeAll();
  });

  it('stops with one error naming the target and what to do', async () => {
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (text: string) => void errors.push(text) };
    const err = await restoreTree(t.repo, tree, join(mnt, 'restore'), {
      dryRun: false,
      logger,
      overwrite: 'never',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreTargetError);
    const failure = err as RestoreTargetError;
    expect(failure.exitCode).toBe(ExitCode.usage);
    expect(failure.message).toContain(join(mnt, 'restore'));
    expect(failure.message).toMatch(/ENOSPC/);
    expect(failure.hint).toMatch(/Free space/);
    // Not one line per file that did not fit.
    expect(errors.length).toBeLessThan(10);
  });
});
