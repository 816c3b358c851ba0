/**
 * Back up a block device or disk image file as fixed-size blocks. All-zero
 * blocks are recorded as `{ zero: n }` and not stored; every other block is a
 * data blob, so a second backup of a barely changed disk stores only the
 * changed blocks. A worker thread reads the image, computes the SHA-256 of the
 * whole image and finds the zero blocks (imageWorker.ts), skipping the holes
 * of a sparse image file (extentMap.ts); this thread only hands data blocks
 * to the repository. Memory stays bounded: `concurrency`
 * blocks being saved plus two read ahead, in shared-memory slots.
 */
import { stat } from 'node:fs/promises';
import { InterruptedError, OperationError, UsageError, isErrnoException } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import type { Repo, SnapshotRecord } from '../../repository/api.js';
import type { BlobId, ContentRef, TreeNode } from '../../repository/tree.js';
import { BoundedTasks } from './boundedTasks.js';
import { blockDeviceSize, mountsOfImage } from './blockDevices.js';
import { dataRanges } from '../../platform/extentMap.js';
import { ImageRefusedError } from './imageErrors.js';
import { imageNodeName, type ImageFingerprint } from './imageNode.js';
import { ImageReader } from './imageWorker.js';
import { isWritableMount } from './mountInfo.js';

export const DEFAULT_IMAGE_BLOCK_SIZE = 4 * 1024 * 1024;
const MAX_BLOCK_SIZE = 256 * 1024 * 1024;

export interface ImageBackupSpec {
  /** Block device (e.g. /dev/vdb) or disk image file. */
  device: string;
  /** Bytes per block; a multiple of 4096 (default 4 MiB). */
  blockSize?: number;
  /** Image even when the filesystem on it is mounted read-write (the image may be inconsistent). */
  force?: boolean;
}

/** Progress in the shape of the CLI's progress line (one file: the image). */
export interface ImageProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
  currentPath: string;
}

export interface ImageBackupOptions {
  logger: Logger;
  onProgress?: (p: ImageProgress) => void;
  signal?: AbortSignal;
  /** Blocks saved at once (default 4): keeps both cores busy while bounding memory to about (n+2) blocks. */
  concurrency?: number;
  /** Environment for external tools (blockdev, filefrag). */
  env?: NodeJS.ProcessEnv;
}

export interface ImageBackupResult {
  /** Root tree of the snapshot: one file node holding the image. */
  tree: BlobId;
  node: TreeNode;
  fingerprint: ImageFingerprint;
  /** `storedBytes` counts the plaintext of newly stored blocks (sizes after compression stay inside the repository). */
  stats: SnapshotRecord['stats'];
  /** Reasons the image may be inconsistent (forced while mounted, file changed while read). */
  warnings: string[];
}

/** Validate a block size from the job configuration. */
export function checkBlockSize(blockSize: number): number {
  if (
    !Number.isSafeInteger(blockSize) ||
    blockSize < 4096 ||
    blockSize > MAX_BLOCK_SIZE ||
    blockSize % 4096 !== 0
  ) {
    throw new UsageError(`image blockSize ${blockSize} is not usable`, {
      hint: 'Use a multiple of 4 KiB between 4 KiB and 256 MiB; 4MiB (the default) suits most disks.',
    });
  }
  return blockSize;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  throw signal.reason instanceof Error ? signal.reason : new InterruptedError('abort');
}

/**
 * Refuse to image a source whose filesystem is mounted read-write (directly,
 * through a loop device backed by the image file, a partition or a
 * device-mapper holder) unless forced; returns warnings when forced.
 */
export async function checkNotMountedWritable(
  device: string,
  force: boolean,
  logger: Logger,
): Promise<string[]> {
  const writable = (await mountsOfImage(device)).filter((m) => isWritableMount(m.mount));
  if (writable.length === 0) return [];
  const where = writable.map((m) => `${m.mount.mountPoint} (${m.device})`).join(', ');
  if (!force) {
    throw new ImageRefusedError(
      'E_IMAGE_SOURCE_MOUNTED',
      `refusing to image ${device}: its filesystem is mounted read-write at ${where}; an image read while the filesystem changes would be inconsistent`,
      {
        hint:
          'Unmount it or remount it read-only (mount -o remount,ro …), image an LVM snapshot of it instead, ' +
          'or pass --force to take a possibly inconsistent image.',
        details: { device, mounts: writable.map((m) => m.mount.mountPoint) },
      },
    );
  }
  const warning = `${device} was imaged while mounted read-write at ${where} (forced): the image may be inconsistent`;
  logger.warn(warning);
  return [warning];
}

/** Back up a block device or image file into the repository; see the file comment. */
export async function backupImage(
  repo: Repo,
  spec: ImageBackupSpec,
  opts: ImageBackupOptions,
): Promise<ImageBackupResult> {
  const blockSize = checkBlockSize(spec.blockSize ?? DEFAULT_IMAGE_BLOCK_SIZE);
  const device = spec.device;
  let before;
  try {
    before = await stat(device, { bigint: true });
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') {
      throw new OperationError('E_IMAGE_SOURCE_MISSING', `image source ${device} does not exist`, {
        hint: 'Check the device path in the job (ls -l /dev/disk/by-id/ lists stable names).',
      });
    }
    throw err;
  }
  const sourceType = before.isBlockDevice() ? 'blockdev' : before.isFile() ? 'file' : undefined;
  if (!sourceType) {
    throw new UsageError(`image source ${device} is neither a block device nor a regular file`, {
      hint: 'Point the image job at a disk (e.g. /dev/vdb) or a disk image file.',
    });
  }
  const warnings = await checkNotMountedWritable(device, spec.force ?? false, opts.logger);
  const size = sourceType === 'blockdev' ? await blockDeviceSize(device, opts.env) : Number(before.size);

  const concurrency = opts.concurrency ?? 4;
  // Two slots beyond the saves in flight let the reader stay ahead of the repository.
  // A sparse image file's holes need not be read (an optimization only: undefined reads everything).
  const allocated = Number(before.blocks) * 512;
  const ranges =
    sourceType === 'file' && allocated + blockSize <= size
      ? await dataRanges(device, allocated, opts.env)
      : undefined;
  const reader = await ImageReader.open(device, size, blockSize, concurrency + 2, ranges);
  const content: ContentRef[] = [];
  const tasks = new BoundedTasks(concurrency);
  let zeroBlocks = 0;
  let dataBlocks = 0;
  let newBlobs = 0;
  let addedBytes = 0;
  let bytesRead = 0;
  let sha256: string;
  const progress = () =>
    opts.onProgress?.({ files: 0, totalFiles: 1, bytes: bytesRead, totalBytes: size, currentPath: device });
  try {
    for await (const block of reader.blocks()) {
      throwIfAborted(opts.signal);
      const { length } = block;
      bytesRead += length;
      if (block.zero) {
        zeroBlocks += block.count;
        const last = content.at(-1);
        if (typeof last === 'object') last.zero += length;
        else content.push({ zero: length });
      } else {
        dataBlocks++;
        const slot = content.length;
        content.push('');
        await tasks.add(async () => {
          try {
            const saved = await repo.saveBlob('data', block.bytes);
            content[slot] = saved.id;
            if (saved.stored) {
              newBlobs++;
              addedBytes += saved.length;
            }
          } finally {
            // saveBlob has taken what it needs of the bytes once it resolves.
            reader.release(block.slot);
          }
        });
      }
      progress();
    }
    await tasks.drain();
    sha256 = reader.sha256;
  } finally {
    // Let in-flight saves settle before stopping the reader, so no save outlives a failed backup unobserved.
    await tasks.drain().catch(() => {});
    await reader.close();
  }

  if (sourceType === 'file') {
    const after = await stat(device, { bigint: true });
    if (after.mtimeNs !== before.mtimeNs || after.size !== before.size) {
      const warning = `${device} changed while it was read: the image may be inconsistent`;
      opts.logger.warn(warning);
      warnings.push(warning);
    }
  }

  const node: TreeNode = {
    name: imageNodeName(device),
    type: 'file',
    mode: Number(before.mode) & 0o7777,
    uid: Number(before.uid),
    gid: Number(before.gid),
    mtimeNs: before.mtimeNs.toString(),
    size,
    content,
    sha256,
  };
  const tree = await repo.saveTree({ nodes: [node] });
  opts.onProgress?.({ files: 1, totalFiles: 1, bytes: size, totalBytes: size, currentPath: device });
  return {
    tree,
    node,
    fingerprint: { sha256, size, blockSize, zeroBlocks, storedBlocks: dataBlocks, sourceType },
    stats: { files: 1, dirs: 0, bytes: size, addedBytes, storedBytes: addedBytes, blobs: newBlobs },
    warnings,
  };
}
