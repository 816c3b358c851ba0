/**
 * Restore a disk image from a snapshot to an image file or a block device,
 * and prove it: every block is authenticated by the repository as it is
 * loaded, and the whole-image SHA-256 is checked by reading the target back.
 *
 * - Image file: written to `<target>.partial` as a sparse file (ftruncate,
 *   then only the data blocks are written; zero runs stay holes), verified,
 *   then renamed into place. A failed restore leaves no file at `target`.
 * - Block device: refused when mounted, in use or smaller than the image.
 *   Zero blocks are written as zeros (the device may hold old data). The
 *   first block is wiped before and written last, and wiped again on
 *   failure, so a half-written device never looks like a valid filesystem.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { IntegrityError, InterruptedError, isErrnoException } from '../../errors.js';
import { fsyncDirectory } from '../../platform/atomicWrite.js';
import { registerCleanup } from '../../platform/cleanup.js';
import { runChecked } from '../../platform/exec.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import type { Repo } from '../../repository/api.js';
import type { BlobId, ContentRef } from '../../repository/tree.js';
import { blockDeviceSize, mountsOfImage } from './blockDevices.js';
import { readFully, DEFAULT_IMAGE_BLOCK_SIZE, type ImageProgress } from './imageBackup.js';
import { ImageRefusedError } from './imageErrors.js';
import { findImageNode } from './imageNode.js';
import { orderedPrefetch } from './orderedPrefetch.js';

export interface ImageRestoreOptions {
  /** The target is a block device (required for devices, so a typo cannot overwrite a disk). */
  toDevice?: boolean;
  /** Replace an existing target file. */
  force?: boolean;
  logger?: Logger;
  onProgress?: (p: ImageProgress) => void;
  signal?: AbortSignal;
  /** Blocks loaded (decrypted) ahead of the writer (default 4). */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
}

export interface ImageRestoreResult {
  target: string;
  kind: 'file' | 'blockdev';
  size: number;
  /** Verified by reading the target back. */
  sha256: string;
  /** Bytes of data blocks written (zero runs excluded for files, included for devices). */
  bytesWritten: number;
  zeroBytes: number;
}

const ZERO_CHUNK = 4 * 1024 * 1024;

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  throw signal.reason instanceof Error ? signal.reason : new InterruptedError('abort');
}

async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** SHA-256 of the first `size` bytes of a file or device, read back from the target. */
export async function hashPrefix(
  path: string,
  size: number,
  blockSize = DEFAULT_IMAGE_BLOCK_SIZE,
): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(blockSize);
    for (let offset = 0; offset < size; offset += blockSize) {
      const length = Math.min(blockSize, size - offset);
      const got = await readFully(fh, buf, length, offset);
      if (got !== length)
        throw new IntegrityError(`${path} ended at byte ${offset + got} while verifying ${size} bytes`);
      hash.update(buf.subarray(0, length));
    }
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/** Check every data block is present before touching the target, so a damaged snapshot fails early. */
function checkBlocksPresent(repo: Repo, content: readonly ContentRef[], name: string): void {
  let index = 0;
  for (const ref of content) {
    if (typeof ref === 'string' && !repo.hasBlob(ref)) {
      throw new IntegrityError(
        `image ${name} in this snapshot is incomplete: data block #${index} (blob ${ref.slice(0, 12)}…) is missing from the repository`,
        {
          hint: 'Run `lifeboat check` on the repository and restore an older snapshot of this job.',
          details: { blob: ref },
        },
      );
    }
    index++;
  }
}

interface Sink {
  /** Write data at an offset. */
  data(offset: number, bytes: Uint8Array): Promise<void>;
  /** A run of zeros at an offset. */
  zeros(offset: number, length: number): Promise<void>;
}

/**
 * Stream the image's blocks in order into a sink; returns bytes of data and
 * of zeros. No hash here: loadBlob authenticates every block and the
 * read-back hash covers the result, so hashing twice would only cost time.
 */
async function copyImage(
  repo: Repo,
  content: readonly ContentRef[],
  size: number,
  name: string,
  sink: Sink,
  opts: ImageRestoreOptions,
  target: string,
): Promise<{ dataBytes: number; zeroBytes: number }> {
  let offset = 0;
  let dataBytes = 0;
  let zeroBytes = 0;
  const load = async (ref: ContentRef, index: number): Promise<ContentRef | Uint8Array> => {
    if (typeof ref !== 'string') return ref;
    try {
      return await repo.loadBlob(ref);
    } catch (err) {
      if (err instanceof IntegrityError) {
        throw new IntegrityError(`image ${name}: data block #${index} cannot be read: ${err.message}`, {
          hint: 'Run `lifeboat check --read-data` and restore an older snapshot of this job.',
          cause: err,
        });
      }
      throw err;
    }
  };
  for await (const piece of orderedPrefetch(content, opts.concurrency ?? 4, load)) {
    throwIfAborted(opts.signal);
    const length = piece instanceof Uint8Array ? piece.length : (piece as { zero: number }).zero;
    if (offset + length > size) {
      throw new IntegrityError(
        `image ${name} in this snapshot holds more data than its recorded size ${size}`,
      );
    }
    if (piece instanceof Uint8Array) {
      await sink.data(offset, piece);
      dataBytes += length;
    } else {
      await sink.zeros(offset, length);
      zeroBytes += length;
    }
    offset += length;
    opts.onProgress?.({ files: 0, totalFiles: 1, bytes: offset, totalBytes: size, currentPath: target });
  }
  if (offset !== size) {
    throw new IntegrityError(
      `image ${name} in this snapshot is truncated: its blocks hold ${offset} of ${size} bytes`,
      {
        hint: 'Run `lifeboat check` on the repository and restore an older snapshot of this job.',
      },
    );
  }
  return { dataBytes, zeroBytes };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return false;
    throw err;
  }
}

/** Restore an image snapshot (root tree `treeId`) to `target`; see the file comment. */
export async function restoreImage(
  repo: Repo,
  treeId: BlobId,
  target: string,
  opts: ImageRestoreOptions = {},
): Promise<ImageRestoreResult> {
  const node = findImageNode(await repo.loadTree(treeId));
  checkBlocksPresent(repo, node.content, node.name);
  const targetStat = await stat(target).catch((err: unknown) => {
    if (isErrnoException(err) && err.code === 'ENOENT') return undefined;
    throw err;
  });
  const isDevice = targetStat?.isBlockDevice() ?? false;
  if (isDevice && !opts.toDevice) {
    throw new ImageRefusedError('E_RESTORE_TARGET_IS_DEVICE', `${target} is a block device`, {
      hint: 'Pass --to-device to overwrite the device with the image (everything on it is lost).',
    });
  }
  if (opts.toDevice && !isDevice) {
    throw new ImageRefusedError(
      'E_RESTORE_TARGET_NOT_DEVICE',
      `${target} is not a block device, but --to-device was given`,
      {
        hint: 'Name the device node (e.g. /dev/vdb), or drop --to-device to restore into an image file.',
      },
    );
  }
  return isDevice ? restoreToDevice(repo, node, target, opts) : restoreToFile(repo, node, target, opts);
}

type ImageNode = ReturnType<typeof findImageNode>;

async function restoreToFile(
  repo: Repo,
  node: ImageNode,
  target: string,
  opts: ImageRestoreOptions,
): Promise<ImageRestoreResult> {
  if (!opts.force && (await exists(target))) {
    throw new ImageRefusedError('E_RESTORE_TARGET_EXISTS', `${target} already exists`, {
      hint: 'Choose a new target file, or pass --force to replace it.',
    });
  }
  const partial = `${target}.partial`;
  // A .partial is only ever ours: left over from an interrupted restore.
  await rm(partial, { force: true });
  const unregister = registerCleanup(`partial image ${partial}`, () => rm(partial, { force: true }));
  let committed = false;
  try {
    // Images hold whole filesystems: keep the file private whatever the source's mode was.
    const fh = await open(partial, 'wx', 0o600);
    let copied;
    try {
      await fh.truncate(node.size);
      copied = await copyImage(
        repo,
        node.content,
        node.size,
        node.name,
        { data: (offset, bytes) => writeFully(fh, bytes, offset), zeros: async () => {} },
        opts,
        target,
      );
      await fh.sync();
    } finally {
      await fh.close();
    }
    const readBack = await hashPrefix(partial, node.size);
    if (readBack !== node.sha256) {
      throw new IntegrityError(
        `restored image ${partial} has SHA-256 ${readBack}, the snapshot recorded ${node.sha256}`,
        {
          hint:
            'Either the target filesystem did not keep what was written (check dmesg and free space) or the ' +
            'snapshot does not reproduce the image it recorded (run `lifeboat check`, try an older snapshot).',
        },
      );
    }
    await rename(partial, target);
    committed = true;
    await fsyncDirectory(dirname(target));
    return {
      target,
      kind: 'file',
      size: node.size,
      sha256: readBack,
      bytesWritten: copied.dataBytes,
      zeroBytes: copied.zeroBytes,
    };
  } finally {
    if (!committed) await rm(partial, { force: true });
    unregister();
  }
}

async function refuseBusyDevice(target: string): Promise<void> {
  const mounts = await mountsOfImage(target);
  if (mounts.length > 0) {
    const where = mounts.map((m) => `${m.mount.mountPoint} (${m.device})`).join(', ');
    throw new ImageRefusedError(
      'E_RESTORE_TARGET_MOUNTED',
      `refusing to restore onto ${target}: it is mounted at ${where}`,
      {
        hint: `Unmount it first (umount ${mounts[0]?.mount.mountPoint ?? target}) or choose another device.`,
      },
    );
  }
}

async function restoreToDevice(
  repo: Repo,
  node: ImageNode,
  target: string,
  opts: ImageRestoreOptions,
): Promise<ImageRestoreResult> {
  const logger = opts.logger ?? silentLogger;
  await refuseBusyDevice(target);
  const deviceSize = await blockDeviceSize(target, opts.env);
  if (deviceSize < node.size) {
    throw new ImageRefusedError(
      'E_RESTORE_TARGET_TOO_SMALL',
      `${target} holds ${deviceSize} bytes, the image needs ${node.size}`,
      { hint: 'Restore onto a device at least as large as the image, or into an image file.' },
    );
  }
  let fh: FileHandle;
  try {
    // O_EXCL on a block device: the kernel refuses while anything (a mount, LVM, md) holds it.
    fh = await open(target, constants.O_WRONLY | constants.O_EXCL);
  } catch (err) {
    if (isErrnoException(err) && err.code === 'EBUSY') {
      throw new ImageRefusedError(
        'E_RESTORE_TARGET_BUSY',
        `refusing to restore onto ${target}: the device is in use`,
        {
          hint: 'Something holds the device (a mount, LVM, RAID or swap); release it first (lsblk, swapoff, vgchange -an).',
          cause: err,
        },
      );
    }
    throw err;
  }
  const headLength = Math.min(DEFAULT_IMAGE_BLOCK_SIZE, node.size);
  const head = Buffer.alloc(headLength);
  const wipeHead = () => writeFully(fh, Buffer.alloc(headLength), 0);
  const unregister = registerCleanup(`half-restored device ${target}`, wipeHead);
  const zero = Buffer.alloc(ZERO_CHUNK);
  // Writes that touch the head go to memory; the head is written last.
  const writeAt = async (offset: number, bytes: Uint8Array) => {
    if (offset < headLength) {
      const inHead = Math.min(bytes.length, headLength - offset);
      head.set(bytes.subarray(0, inHead), offset);
      if (inHead === bytes.length) return;
      bytes = bytes.subarray(inHead);
      offset += inHead;
    }
    await writeFully(fh, bytes, offset);
  };
  let ok = false;
  try {
    await wipeHead();
    const copied = await copyImage(
      repo,
      node.content,
      node.size,
      node.name,
      {
        data: writeAt,
        zeros: async (offset, length) => {
          for (let done = 0; done < length; done += zero.length) {
            await writeAt(offset + done, zero.subarray(0, Math.min(zero.length, length - done)));
          }
        },
      },
      opts,
      target,
    );
    await writeFully(fh, head, 0);
    await fh.sync();
    // Drop the kernel's cached copy so the read-back comes from the device.
    await runChecked(['blockdev', '--flushbufs', target], { env: opts.env, timeoutMs: 120_000 });
    const readBack = await hashPrefix(target, node.size);
    if (readBack !== node.sha256) {
      throw new IntegrityError(
        `${target} reads back with SHA-256 ${readBack}, the snapshot recorded ${node.sha256}`,
        {
          hint:
            'Either the device did not keep what was written (check dmesg, smartctl) or the snapshot does not ' +
            'reproduce the image it recorded (run `lifeboat check`, try an older snapshot). Its start was wiped.',
        },
      );
    }
    ok = true;
    return {
      target,
      kind: 'blockdev',
      size: node.size,
      sha256: readBack,
      bytesWritten: copied.dataBytes + copied.zeroBytes,
      zeroBytes: copied.zeroBytes,
    };
  } finally {
    if (!ok) {
      await wipeHead()
        .then(() => fh.sync())
        .then(() => logger.warn(`${target} holds a partial image; its first ${headLength} bytes were wiped`))
        .catch((err: unknown) =>
          logger.error(`could not wipe the start of half-restored ${target}: ${String(err)}`),
        );
    }
    unregister();
    await fh.close();
  }
}
