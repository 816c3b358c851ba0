/**
 * What is mounted where, read from /proc/self/mountinfo. Image and snapshot
 * jobs use it to refuse imaging a filesystem that is being written to, to
 * refuse restoring over a mounted device, and to find the filesystem that
 * holds a path.
 */
import { readFile } from 'node:fs/promises';
import { sep } from 'node:path';

/** One line of /proc/self/mountinfo (see proc(5)). */
export interface MountEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the filesystem (anonymous for btrfs and other virtual devices). */
  majorMinor: string;
  /** Path inside the filesystem that is mounted (e.g. `/@data` for a btrfs subvolume). */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  fsType: string;
  /** Mount source as the kernel reports it (e.g. `/dev/loop3`, `tank/data`). */
  source: string;
  superOptions: string[];
}

/** Undo the octal escapes mountinfo uses for space, tab, newline and backslash. */
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse the text of /proc/self/mountinfo; malformed lines are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    // Six fixed fields, optional fields, the separator, then three more.
    if (dash < 6 || fields.length < dash + 4) continue;
    const [mountId, parentId, majorMinor, root, mountPoint, mountOptions] = fields;
    const fsType = fields[dash + 1];
    const source = fields[dash + 2];
    const superOptions = fields[dash + 3];
    if (!mountId || !parentId || !majorMinor || !root || !mountPoint || !mountOptions || !fsType) continue;
    entries.push({
      mountId: Number(mountId),
      parentId: Number(parentId),
      majorMinor,
      root: unescapeField(root),
      mountPoint: unescapeField(mountPoint),
      mountOptions: mountOptions.split(','),
      fsType,
      source: unescapeField(source ?? ''),
      superOptions: (superOptions ?? '').split(','),
    });
  }
  return entries;
}

/** Read and parse the mount table of this process. */
export async function readMountInfo(path = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountInfo(await readFile(path, 'utf8'));
}

/** True when writes can reach the filesystem through this mount (both the mount and the superblock are rw). */
export function isWritableMount(entry: MountEntry): boolean {
  return entry.mountOptions.includes('rw') && !entry.superOptions.includes('ro');
}

/**
 * The mount whose mount point is the longest prefix of `absPath` (the
 * filesystem that holds the path). When a mount point is mounted over
 * several times, the last entry wins, as in the kernel.
 */
export function mountContaining(entries: readonly MountEntry[], absPath: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of entries) {
    const mp = e.mountPoint;
    const inside = absPath === mp || mp === '/' || absPath.startsWith(mp.endsWith(sep) ? mp : mp + sep);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = e;
  }
  return best;
}
