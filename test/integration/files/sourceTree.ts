/**
 * Builds a source directory holding every kind of entry a files backup must
 * handle, for round-trip tests: regular, empty, large, sparse and hardlinked
 * files, symlinks (relative, absolute, dangling), a fifo, an empty directory,
 * a name that is not valid UTF-8, odd modes, foreign ownership (as root), a
 * device node (as root) and a user xattr (when the filesystem allows it).
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, link, mkdir, open, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../src/platform/exec.js';

export const INVALID_NAME = Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]); // "bad-\xff\xfe.txt"
export const ESCAPED_INVALID_NAME = 'bad-\\xff\\xfe.txt';
export const SPARSE_SIZE = 40 * 1024 * 1024;

export interface SourceTree {
  root: string;
  isRoot: boolean;
  hasXattr: boolean;
  hasDevice: boolean;
}

/** Create a file with data at the start and end and a large hole in between. */
export async function makeSparseFile(path: string, size = SPARSE_SIZE): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.write(randomBytes(512 * 1024), 0, 512 * 1024, 0);
    await fh.write(randomBytes(512 * 1024), 0, 512 * 1024, size - 512 * 1024);
  } finally {
    await fh.close();
  }
}

/** Build the tree under `root` (which must exist). */
export async function buildSourceTree(root: string): Promise<SourceTree> {
  const isRoot = process.getuid?.() === 0;
  const data = join(root, 'data');
  await mkdir(join(data, 'sub', 'deeper'), { recursive: true });
  await mkdir(join(data, 'empty-dir'));
  await writeFile(join(data, 'small.txt'), 'hello, lifeboat\n');
  await writeFile(join(data, 'empty'), '');
  await writeFile(join(data, 'big.bin'), randomBytes(3 * 1024 * 1024 + 123));
  await writeFile(join(data, 'sub', 'deeper', 'note.md'), '# note\n');
  await makeSparseFile(join(data, 'sparse.img'));
  await writeFile(join(data, 'linked-a'), randomBytes(200 * 1024));
  await link(join(data, 'linked-a'), join(data, 'linked-b'));
  await link(join(data, 'linked-a'), join(data, 'sub', 'linked-c'));
  await symlink('small.txt', join(data, 'rel-link'));
  await symlink('/etc/hostname', join(data, 'abs-link'));
  await symlink('does/not/exist', join(data, 'dangling-link'));
  await run(['mkfifo', join(data, 'fifo')]);
  await writeFile(
    Buffer.concat([Buffer.from(join(data, 'sub') + '/'), INVALID_NAME]),
    'invalid name content',
  );
  // A valid name equal to the escaped display form of INVALID_NAME: both must survive side by side.
  await writeFile(join(data, 'sub', ESCAPED_INVALID_NAME), 'look-alike');
  await writeFile(join(data, 'private.key'), 'secret-ish');
  await chmod(join(data, 'private.key'), 0o600);
  await writeFile(join(data, 'tool.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(data, 'tool.sh'), 0o4755);
  await chmod(join(data, 'sub'), 0o750);
  await utimes(join(data, 'small.txt'), 1_000_000_000.123456, 1_000_000_000.123456);
  let hasDevice = false;
  if (isRoot) {
    await chown(join(data, 'small.txt'), 1234, 2345);
    hasDevice = (await run(['mknod', join(data, 'null-dev'), 'c', '1', '3'])).code === 0;
  }
  const hasXattr =
    (
      await run(['setfattr', '-n', 'user.lifeboat', '-v', 'kept', join(data, 'small.txt')]).catch(() => ({
        code: 1,
      }))
    ).code === 0;
  // Last: directory mtimes are set after their contents exist.
  await utimes(join(data, 'sub'), 1_500_000_000, 1_500_000_000);
  return { root, isRoot, hasXattr, hasDevice };
}
