import { describe, expect, it } from 'vitest';
import { isWritableMount, mountContaining, parseMountInfo } from '../../../../src/sources/image/mountInfo.js';

const sample = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '43 27 0:39 / /mnt/data rw,relatime shared:7 master:2 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=5,subvol=/',
  '44 27 7:1 / /mnt/with\\040space ro,relatime - ext4 /dev/loop1 ro',
  '45 27 7:2 / /mnt/remounted ro,relatime - ext4 /dev/loop2 rw',
  '46 27 7:3 / /mnt/superro rw,relatime - ext4 /dev/loop3 ro,errors=remount-ro',
  'garbage line',
  '',
].join('\n');

describe('parseMountInfo', () => {
  const entries = parseMountInfo(sample);

  it('parses every well-formed line, including optional fields', () => {
    expect(entries.map((e) => e.mountPoint)).toEqual([
      '/proc',
      '/',
      '/mnt/data',
      '/mnt/with space',
      '/mnt/remounted',
      '/mnt/superro',
    ]);
    const btrfs = entries[2]!;
    expect(btrfs).toMatchObject({
      mountId: 43,
      parentId: 27,
      majorMinor: '0:39',
      fsType: 'btrfs',
      source: '/dev/loop0',
    });
    expect(btrfs.superOptions).toContain('subvol=/');
  });

  it.each([
    ['/mnt/data', true],
    ['/mnt/with space', false],
    ['/mnt/remounted', false],
    ['/mnt/superro', false],
    ['/', true],
  ])('%s writable: %s', (mp, writable) => {
    expect(isWritableMount(entries.find((e) => e.mountPoint === mp)!)).toBe(writable);
  });

  it.each([
    ['/mnt/data/sub/file', '/mnt/data'],
    ['/mnt/data', '/mnt/data'],
    ['/mnt/database', '/'],
    ['/etc', '/'],
  ])('mountContaining(%s) is %s', (path, mp) => {
    expect(mountContaining(entries, path)?.mountPoint).toBe(mp);
  });
});
