/**
 * The extent map of sparse image files: filefrag's output parsed, and real
 * files on the test machine's filesystem (ext4 here; a filesystem without
 * FIEMAP gives undefined, which the backup treats as "read everything").
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, open, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataRanges, parseFilefrag } from '../../../src/platform/extentMap.js';

const MiB = 1024 * 1024;
const TMPFS_MAGIC = 0x01021994;

describe('parseFilefrag', () => {
  const head =
    'Filesystem type is: ef53\nFile size of /x/disk img is 1073741824 (262144 blocks of 4096 bytes)\n';
  const table = ' ext:     logical_offset:        physical_offset: length:   expected: flags:\n';

  it('turns extents into merged byte ranges, whatever their flags', () => {
    const out =
      head +
      table +
      '   0:        0..     142:    6326272..   6326414:    143:            \n' +
      '   1:      143..     145:    6326417..   6326419:      3:    6326415:\n' +
      '   2:     1220..    1220:          0..         0:      0:             unknown_loc,delalloc\n' +
      '   3:   262128..  262143:    6324752..   6324767:     16:    6375408: last,unwritten,eof\n' +
      '/x/disk img: 3 extents found\n';
    expect(parseFilefrag(out)).toEqual([
      [0, 146 * 4096],
      [1220 * 4096, 1221 * 4096],
      [262128 * 4096, 262144 * 4096],
    ]);
  });

  it('reads a file without extents as all hole', () => {
    expect(parseFilefrag(`${head}/x/disk img: 0 extents found\n`)).toEqual([]);
  });

  it('gives up on anything it does not recognize', () => {
    expect(parseFilefrag('')).toBeUndefined();
    expect(parseFilefrag(`${head}${table}`)).toBeUndefined(); // cut short: no trailer
    expect(
      parseFilefrag(`${head}${table}/x: FIBMAP/FIEMAP unsupported\n/x: 0 extents found\n`),
    ).toBeUndefined();
    expect(
      parseFilefrag(
        `${head}${table}   0:  10..  11:  5..  6:  2:\n   1:  2..  3:  7..  8:  2:\n/x: 2 extents found\n`,
      ),
    ).toBeUndefined(); // out of order
    expect(parseFilefrag(`${table}   0:  10..  11:  5..  6:  2:\n/x: 1 extent found\n`)).toBeUndefined(); // no unit
  });
});

describe('dataRanges of a real file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-extents-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('covers every written byte and leaves the untouched middle a hole', async () => {
    const path = join(dir, 'sparse.img');
    await writeFile(path, '');
    const fh = await open(path, 'r+');
    await fh.truncate(64 * MiB);
    await fh.write(Buffer.alloc(8192, 1), 0, 8192, 0);
    await fh.write(Buffer.alloc(4096, 2), 0, 4096, 40 * MiB + 100);
    await fh.close();
    const st = await stat(path);
    const ranges = await dataRanges(path, st.blocks * 512);
    if ((await statfs(dir)).type === TMPFS_MAGIC) {
      // tmpfs has no FIEMAP: no map, and the backup reads everything.
      expect(ranges).toBeUndefined();
      return;
    }
    if (!ranges) throw new Error(`no extent map for a file on ${dir}`);
    const covered = (at: number) => ranges.some(([s, e]) => s <= at && at < e);
    expect(covered(0) && covered(8191)).toBe(true);
    expect(covered(40 * MiB + 100) && covered(40 * MiB + 4195)).toBe(true);
    expect(covered(20 * MiB)).toBe(false);
    expect(covered(63 * MiB)).toBe(false);
  });

  it('is undefined when filefrag cannot run', async () => {
    const path = join(dir, 'f.img');
    await writeFile(path, Buffer.alloc(4096, 1));
    expect(await dataRanges(path, 4096, { PATH: join(dir, 'no-bin') })).toBeUndefined();
  });

  it('is undefined when the map covers less than the file occupies', async () => {
    const path = join(dir, 'f.img');
    await writeFile(path, Buffer.alloc(4096, 1));
    expect(await dataRanges(path, 64 * MiB)).toBeUndefined();
  });
});
