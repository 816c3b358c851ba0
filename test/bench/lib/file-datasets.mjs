// The three datasets of files-vs-restic.mjs, built from files already on the
// machine, and the ~1 % change applied to each before the third backup.
//   a  a copy of /usr/share (many small files)
//   b  one file cut from a tar of /usr/lib (one big, partly compressible file)
//   c  a sparse ext4 image file holding a few hundred MiB of files from /usr/lib
// --scale shrinks each: a copies that fraction of the entries (spread over the
// whole tree), b and c are that fraction of their size.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { mkdir, open, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Size of image c and how much of /usr/lib goes into it, at scale 1. */
const IMAGE_BYTES = GiB;
const IMAGE_DATA_BYTES = 300 * MiB;
/** Size of the cut of the /usr/lib tar, at scale 1. */
const TAR_BYTES = GiB;

const sh = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 30, ...opts }).toString();

/** Entries (files and symlinks) under `root`, sorted, with sizes; `find` is much faster than readdir+lstat here. */
function listEntries(root, types) {
  const out = sh('find', [root, '-mindepth', '1', '(', ...types, ')', '-printf', '%s %P\\0']);
  return out
    .split('\0')
    .filter(Boolean)
    .map((line) => {
      const space = line.indexOf(' ');
      return { size: Number(line.slice(0, space)), rel: line.slice(space + 1) };
    })
    .sort((x, y) => (x.rel < y.rel ? -1 : x.rel > y.rel ? 1 : 0));
}

/** Every k-th element so that about `fraction` of them are kept, spread evenly. */
function spread(items, fraction) {
  if (fraction >= 1) return items;
  return items.filter((_, i) => Math.floor((i + 1) * fraction) > Math.floor(i * fraction));
}

/** Copy the `rel` paths of `fromRoot` into `toDir` with tar (keeps modes, owners, times, symlinks). */
async function copyList(fromRoot, rels, toDir, listFile) {
  await writeFile(listFile, rels.map((r) => `${r}\0`).join(''));
  await mkdir(toDir, { recursive: true });
  sh('bash', [
    '-c',
    'set -o pipefail; tar --null --no-recursion -C "$1" -T "$2" -cf - | tar -C "$3" -xpf -',
    'copy',
    fromRoot,
    listFile,
    toDir,
  ]);
  await rm(listFile, { force: true });
}

/** The regular files under `root`, sorted (what the 1 % change picks from). */
export async function regularFiles(root) {
  const found = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) found.push(join(e.parentPath, e.name));
  }
  return found.sort();
}

/**
 * Change about 1 % of the files under `root`: every 100th (shifted by `round`
 * so a new round picks new files) gets 64 new bytes in its middle and a line
 * appended, as an edit would. Returns how many files and bytes were changed.
 */
export async function changeOnePercentOfFiles(root, round) {
  const files = await regularFiles(root);
  let count = 0;
  let bytes = 0;
  for (let i = round % 100; i < files.length; i += 100) {
    const fh = await open(files[i], 'r+');
    try {
      const { size } = await fh.stat();
      if (size > 64) await fh.write(randomBytes(64), 0, 64, Math.floor(size / 2) - 32);
      const line = Buffer.from(`lifeboat bench change, round ${round}\n`);
      await fh.write(line, 0, line.length, Math.max(size, 0));
      bytes += line.length + (size > 64 ? 64 : 0);
      count++;
    } finally {
      await fh.close();
    }
  }
  return { files: count, bytes };
}

/** Overwrite 1 % of `file` in 10 places with random bytes (size unchanged); `round` shifts the places. */
export async function changeOnePercentOfBytes(file, round) {
  const fh = await open(file, 'r+');
  try {
    const { size } = await fh.stat();
    const places = 10;
    const each = Math.floor(size / 100 / places);
    const stride = Math.floor(size / places);
    const shift = Math.floor((stride / 7) * (round % 7));
    for (let p = 0; p < places; p++) {
      const at = Math.min(p * stride + shift, size - each);
      await fh.write(randomBytes(each), 0, each, at);
    }
    return { places, bytes: places * each };
  } finally {
    await fh.close();
  }
}

/** Loop-mount ext4 image `image` at `mnt`, run `fn`, then unmount (also on failure). */
async function withMounted(image, mnt, fn) {
  await mkdir(mnt, { recursive: true });
  sh('mount', ['-o', 'loop', image, mnt]);
  try {
    return await fn();
  } finally {
    sh('umount', [mnt]);
  }
}

/**
 * The datasets. Each has: `title`, `build(dir, scale)` returning a short
 * description and putting the data under `dir`, `change(dir, round)` applying
 * the 1 % change, and `needsRoot` (loop mounts).
 */
export const DATASETS = {
  a: {
    title: 'a: copy of /usr/share',
    needsRoot: false,
    async build(dir, scale) {
      const entries = spread(listEntries('/usr/share', ['-type', 'f', '-o', '-type', 'l']), scale);
      const target = join(dir, 'share');
      if (scale >= 1) {
        await mkdir(dir, { recursive: true });
        sh('cp', ['-a', '/usr/share', target]);
      } else {
        await copyList(
          '/usr/share',
          entries.map((e) => e.rel),
          target,
          join(dir, '..', 'a.list'),
        );
      }
      const files = await regularFiles(target);
      return `${files.length} files, ${(Number(sh('du', ['-sb', target]).split('\t')[0]) / MiB).toFixed(0)} MiB`;
    },
    change: (dir, round) => changeOnePercentOfFiles(join(dir, 'share'), round),
  },
  b: {
    title: 'b: 1 GiB cut of a tar of /usr/lib',
    needsRoot: false,
    async build(dir, scale) {
      const bytes = Math.round(TAR_BYTES * scale);
      await mkdir(dir, { recursive: true });
      const file = join(dir, 'usr-lib.tar');
      // head closes the pipe early: tar's SIGPIPE is expected, so no pipefail here.
      sh('bash', [
        '-c',
        'tar -C / -cf - usr/lib 2>/dev/null | head -c "$1" > "$2"',
        'cut',
        String(bytes),
        file,
      ]);
      const size = lstatSync(file).size;
      if (size !== bytes) throw new Error(`${file} is ${size} bytes, expected ${bytes}`);
      return `1 file, ${(size / MiB).toFixed(0)} MiB`;
    },
    change: (dir, round) => changeOnePercentOfBytes(join(dir, 'usr-lib.tar'), round),
  },
  c: {
    title: 'c: sparse 1 GiB ext4 image file',
    needsRoot: true,
    async build(dir, scale) {
      await mkdir(dir, { recursive: true });
      const image = join(dir, 'disk.img');
      await writeFile(image, '');
      await truncate(image, Math.round((IMAGE_BYTES * scale) / 4096) * 4096);
      // No lazy init: the kernel would otherwise keep writing inode tables after mount.
      sh('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
      const candidates = listEntries('/usr/lib', ['-type', 'f']).filter((e) => e.size <= 64 * MiB);
      const total = candidates.reduce((sum, e) => sum + e.size, 0);
      const picked = spread(candidates, (IMAGE_DATA_BYTES * scale) / total);
      const mnt = join(dir, '..', 'c.mnt');
      await withMounted(image, mnt, () =>
        copyList(
          '/usr/lib',
          picked.map((e) => e.rel),
          mnt,
          join(dir, '..', 'c.list'),
        ),
      );
      await rm(mnt, { recursive: true, force: true });
      const dataMiB = picked.reduce((sum, e) => sum + e.size, 0) / MiB;
      const allocatedMiB = Number(sh('du', ['-sk', image]).split('\t')[0]) / 1024;
      return `1 file, ${(lstatSync(image).size / MiB).toFixed(0)} MiB apparent, ${allocatedMiB.toFixed(0)} MiB allocated; ${picked.length} files (${dataMiB.toFixed(0)} MiB) inside`;
    },
    async change(dir, round) {
      const mnt = join(dir, '..', 'c.mnt');
      const result = await withMounted(join(dir, 'disk.img'), mnt, () => changeOnePercentOfFiles(mnt, round));
      await rm(mnt, { recursive: true, force: true });
      return result;
    },
  },
};
