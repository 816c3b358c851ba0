/**
 * Facts about block devices and image files taken from sysfs and the mount
 * table: which kernel devices expose an image (the device itself, loop
 * devices backed by a file, their partitions and device-mapper holders) and
 * where any of them is mounted.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { OperationError, isErrnoException } from '../../errors.js';
import { runChecked } from '../../platform/exec.js';
import { readMountInfo, type MountEntry } from './mountInfo.js';

const sysBlock = '/sys/class/block';

/** A mount of one of the devices that expose an image. */
export interface DeviceMount {
  /** Kernel name of the mounted device (e.g. `loop3`, `vdb1`, `dm-0`). */
  device: string;
  mount: MountEntry;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if (isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
    throw err;
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    if (isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return [];
    throw err;
  }
}

/** Kernel name (`vdb`, `dm-0`, `loop3`) of a block device node, via its device number. */
export async function kernelNameOf(devicePath: string): Promise<string> {
  const st = await stat(devicePath);
  if (!st.isBlockDevice()) throw new Error(`${devicePath} is not a block device`);
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
  const target = await realpath(`/sys/dev/block/${major}:${minor}`);
  return basename(target);
}

/** `major:minor` of a kernel block device, as mountinfo prints it. */
export async function devNumberOf(name: string): Promise<string | undefined> {
  return readTrimmed(join(sysBlock, name, 'dev'));
}

/** Size in bytes of a block device (`blockdev --getsize64`). */
export async function blockDeviceSize(devicePath: string, env?: NodeJS.ProcessEnv): Promise<number> {
  const { stdout } = await runChecked(['blockdev', '--getsize64', devicePath], { env, timeoutMs: 30_000 });
  const size = Number(stdout.trim());
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new OperationError(
      'E_IMAGE_SIZE',
      `cannot read the size of ${devicePath}: blockdev printed "${stdout.trim()}"`,
    );
  }
  return size;
}

/** Loop devices whose backing file is `file` (compared by device and inode, so any path to it matches). */
export async function loopDevicesBackedBy(file: string): Promise<string[]> {
  const target = await stat(file);
  const found: string[] = [];
  for (const name of await listDir(sysBlock)) {
    if (!name.startsWith('loop')) continue;
    const backing = await readTrimmed(join(sysBlock, name, 'loop', 'backing_file'));
    if (!backing) continue;
    try {
      const st = await stat(backing);
      if (st.dev === target.dev && st.ino === target.ino) found.push(name);
    } catch {
      // The backing file was deleted or is not visible here: it cannot be ours.
    }
  }
  return found;
}

/**
 * A device and everything stacked on it: partitions and device-mapper or md
 * holders, recursively. Writes through any of them change the image.
 */
export async function stackedDevices(name: string, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(name)) return [];
  seen.add(name);
  const result = [name];
  for (const entry of await listDir(join(sysBlock, name))) {
    if (
      entry.startsWith(name) &&
      (await readTrimmed(join(sysBlock, name, entry, 'partition'))) !== undefined
    ) {
      result.push(...(await stackedDevices(entry, seen)));
    }
  }
  for (const holder of await listDir(join(sysBlock, name, 'holders'))) {
    result.push(...(await stackedDevices(holder, seen)));
  }
  return result;
}

/** Mounts of any of the given kernel devices (matched by device number, or by source path for btrfs). */
export async function mountsOfDevices(
  names: readonly string[],
  mounts?: MountEntry[],
): Promise<DeviceMount[]> {
  const table = mounts ?? (await readMountInfo());
  const byNumber = new Map<string, string>();
  for (const name of names) {
    const num = await devNumberOf(name);
    if (num) byNumber.set(num, name);
  }
  const wanted = new Set(names);
  const found: DeviceMount[] = [];
  for (const mount of table) {
    let device = byNumber.get(mount.majorMinor);
    // btrfs reports an anonymous device number; its source names the device instead.
    if (!device && mount.source.startsWith('/dev/')) {
      const resolved = await realpath(mount.source).catch(() => mount.source);
      const base = basename(resolved);
      if (resolved === `/dev/${base}` && wanted.has(base)) device = base;
    }
    if (device) found.push({ device, mount });
  }
  return found;
}

/** Kernel devices through which an image (block device or image file) can be mounted. */
export async function devicesExposing(path: string): Promise<string[]> {
  const st = await stat(path);
  const roots = st.isBlockDevice() ? [await kernelNameOf(path)] : await loopDevicesBackedBy(path);
  const all = new Set<string>();
  for (const root of roots) for (const d of await stackedDevices(root)) all.add(d);
  return [...all];
}

/** Every mount of the filesystem(s) held by a block device or image file. */
export async function mountsOfImage(path: string): Promise<DeviceMount[]> {
  return mountsOfDevices(await devicesExposing(path));
}
