/**
 * Scratch directories: where they go, whether there is room, and creating them under a
 * name that `lifeboat drill cleanup` recognises (`lifeboat-drill-…`).
 */
import { chmod, mkdir, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperationError } from '../errors.js';
import { SCRATCH_DIR_PREFIX } from './releaseResource.js';
import { reachableBy, type ServerAccount } from './serverAccount.js';
import type { ScratchTracker } from './scratchState.js';

const MiB = 1024 * 1024;

function sizeText(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `${Math.ceil(bytes / MiB)} MiB`;
}

/** Bytes available to this user on the filesystem of `dir`. */
export async function availableBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/** Fail before restoring when `dir` cannot hold `neededBytes` (plus a small reserve). */
export async function checkFreeSpace(dir: string, neededBytes: number, what: string): Promise<number> {
  const available = await availableBytes(dir);
  const wanted = Math.ceil(neededBytes) + 16 * MiB;
  if (available < wanted) {
    throw new OperationError(
      'E_SCRATCH_SPACE',
      `not enough free space in ${dir} for ${what}: ${sizeText(available)} free, about ${sizeText(wanted)} needed`,
      {
        hint: 'Free space there, or point defaults.scratchRoot at a filesystem with room for a full restore.',
        details: { dir, availableBytes: available, neededBytes: wanted },
      },
    );
  }
  return available;
}

/**
 * The parent directory for a new scratch directory: `root` (created 0711 so a server
 * account can pass through it), or — when a server account could not reach it — the OS
 * temp directory.
 */
export async function scratchParent(root: string | undefined, account?: ServerAccount): Promise<string> {
  if (root) {
    const existed = await mkdir(root, { recursive: true, mode: 0o711 }).then((made) => made === undefined);
    if (!existed) await chmod(root, 0o711);
    if (!account || (await reachableBy(root, account))) return root;
  }
  return tmpdir();
}

/** Record, then create a private (0700) directory `lifeboat-drill-<label>-<id>` under `parent`. */
export async function makeScratchDir(
  tracker: ScratchTracker,
  parent: string,
  label: string,
): Promise<string> {
  const dir = join(parent, `${SCRATCH_DIR_PREFIX}${label}-${tracker.id}`);
  await tracker.add({ type: 'dir', path: dir });
  await mkdir(dir, { mode: 0o700 });
  return dir;
}
