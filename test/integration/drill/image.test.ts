/**
 * Drills of image jobs on real loop devices (root): the image is restored into a sparse
 * file, attached read-only, checked with e2fsck -fn, mounted read-only for a command
 * assertion, and everything is detached and removed afterwards. A filesystem with wrong
 * counters must fail the drill at fsck. Skips without root/loop devices/e2fsprogs, fails
 * under LIFEBOAT_TEST_REQUIRE=all.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMountPoint, loopDevicesOf } from '../../../src/scratch/index.js';
import { runChecked } from '../../../src/platform/exec.js';
import type { DrillResult } from '../../../src/app/drillModel.js';
import { describeWith, LoopFixtures, probeExt4 } from '../../helpers/loop.js';
import { drillFixture, entries, type DrillFixture } from './drillFixture.js';

const facility = await probeExt4();
const loops = new LoopFixtures();
let fx: DrillFixture;
let damaged: string;

/** An ext4 image file holding a few files. */
async function ext4Image(path: string): Promise<void> {
  await loops.sparseFile(path, 64 * 1024 * 1024);
  await loops.mkfs(path, 'ext4');
  const dev = await loops.attach(path);
  const mnt = `${path}.mnt`;
  await mkdir(mnt);
  await loops.mount(dev, mnt);
  await writeFile(join(mnt, 'hello.txt'), 'hello from the image\n');
  await mkdir(join(mnt, 'etc'));
  await writeFile(join(mnt, 'etc', 'app.conf'), 'x = 1\n'.repeat(1000));
  await loops.unmount(mnt);
  await loops.detach(dev);
}

function imagePath(r: DrillResult): string {
  return /sparse image (\/\S+)/.exec(r.steps.find((s) => s.name === 'provision')!.message!)![1]!;
}

describeWith(facility, 'image drills', () => {
  beforeAll(async () => {
    fx = await drillFixture({
      policies: '  std: { rpo: 1d, rto: 10m }',
      jobs: async (dir) => {
        const good = join(dir, 'disk.img');
        damaged = join(dir, 'damaged.img');
        await ext4Image(good);
        await ext4Image(damaged);
        // A directory entry pointing at a cleared inode: the image restores byte-exact, but a check must report it.
        await runChecked(['debugfs', '-w', '-R', 'clri /hello.txt', damaged]);
        return [
          `  disk:`,
          `    kind: image`,
          `    device: ${good}`,
          `    blockSize: 1MiB`,
          `    policy: std`,
          `    drill: { assertions: [{ command: ["sh", "-c", "grep -q hello hello.txt && test -f \\"$LIFEBOAT_DRILL_MOUNT/etc/app.conf\\""] }] }`,
          `  damaged:`,
          `    kind: image`,
          `    device: ${damaged}`,
          `    blockSize: 1MiB`,
          `    policy: std`,
        ].join('\n');
      },
    });
    await fx.backup('disk');
    await fx.backup('damaged');
  });

  afterAll(async () => {
    await loops.disposeAll();
    await fx?.dispose();
  });

  it('restores into a sparse file, checks and mounts it read-only, then detaches everything', async () => {
    const r = (await fx.drill({ jobs: ['disk'] })).drills[0]!;
    console.log(
      `loop image: provision ${r.phases.provisionMs} ms, restore ${r.phases.restoreMs} ms, verify ${r.phases.verifyMs} ms, teardown ${r.phases.teardownMs} ms`,
    );
    expect(r.steps.filter((s) => s.status === 'fail')).toEqual([]);
    expect(r).toMatchObject({ verdict: 'pass', scratch: 'loop-image' });
    expect(r.steps.map((s) => s.name)).toEqual([
      'select snapshot',
      'provision',
      'restore',
      'content',
      'fsck',
      'mount',
      expect.stringMatching(/^assertion 1: command/),
      'teardown',
      'rto',
    ]);
    expect(r.steps.find((s) => s.name === 'fsck')!.message).toContain('e2fsck found');
    const image = imagePath(r);
    expect(await loopDevicesOf(image)).toEqual([]);
    expect(await isMountPoint(join(image, '..', 'mnt'))).toBe(false);
    expect(await entries(fx.scratchRoot)).toEqual([]);
    expect(await fx.stateFiles()).toEqual([]);
  });

  it('fails when the restored filesystem does not check clean', async () => {
    const r = (await fx.drill({ jobs: ['damaged'] })).drills[0]!;
    expect(r.verdict).toBe('fail');
    const fsck = r.steps.find((s) => s.name === 'fsck')!;
    expect(fsck.status).toBe('fail');
    expect(fsck.message).toMatch(/e2fsck -f -n \S+ exited 4/);
    expect(await loopDevicesOf(imagePath(r))).toEqual([]);
    expect(await entries(fx.scratchRoot)).toEqual([]);
  });
});
