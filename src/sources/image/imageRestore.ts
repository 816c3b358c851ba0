/**
 * Restore a disk image from a snapshot to an image file or a block device,
 * and prove it: every block is authenticated by the repository as it is
 * loaded, and the whole-image SHA-256 is checked by reading the target back.
 *
 * - Image file: written to `<target>.partial` as a sparse file (ftruncate,
 *   then only the data blocks are written, several at once; zero runs stay
 *   holes), verified, then renamed into place. A worker thread reads back and
 *   hashes the written prefix while later blocks are still being restored
 *   (the holes it left are hashed as zeros, not read). A failed restore
 *   leaves no file at `target`.
 * - Block device: refused when mounted, in use or smaller than the image.
 *   Zero blocks are written as zeros (the device may hold old data). The
 *   first block is wiped before and written last, and wiped again on
 *   failure, so a half-written device never looks like a valid filesystem.
 */
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
import { DEFAULT_IMAGE_BLOCK_SIZE, type ImageProgress } from './imageBackup.js';
import { BoundedTasks } from './boundedTasks.js';
import { ImageRefusedError } from './imageErrors.js';
import { findImageNode } from './imageNode.js';
import { ReadBackHasher } from './imageWorker.js';
import { orderedPrefetch } from './orderedPrefetch.js';

export interface ImageRestoreOptions {
  /** The target is a block device (required for devices, so a typo cannot overwrite a disk). */
  toDevice?: boolean;
  /** Replace an existing target file. */
  force?: boolean;
  logger?: Logger;
  onProgress?: (p: ImageProgress) => void;
  signal?: AbortSignal;
  /** Blocks loaded (decrypted) ahead of the writes, and blocks written at once (default 4 each). */
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

/** Hash the first `size` bytes of a target on a worker thread (after everything is written). */
async function readBackSha256(path: string, size: number): Promise<string> {
  const hasher = await ReadBackHasher.open(path, DEFAULT_IMAGE_BLOCK_SIZE);
  try {
    return await hasher.finish(size);
  } finally {
    await hasher.close();
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
  /** The piece [start, end) and every piece before it are written; called in image order. */
  written?(start: number, end: number, zero: boolean): void;
}

/** Reports written pieces in image order, however their writes complete. */
class WrittenPrefix {
  private readonly done = new Map<number, { start: number; end: number; zero: boolean }>();
  private next = 0;

  constructor(private readonly onPiece: Sink['written']) {}

  /** Piece `index` ([start, end)) is written. */
  add(index: number, start: number, end: number, zero: boolean): void {
    this.done.set(index, { start, end, zero });
    for (let p = this.done.get(this.next); p; p = this.done.get(this.next)) {
      this.done.delete(this.next++);
      this.onPiece?.(p.start, p.end, p.zero);
    }
  }
}

/**
 * Stream the image's blocks into a sink: `concurrency` blocks are loaded
 * (read, authenticated, decompressed) ahead, and as many positional writes
 * run at once, so loading, writing and the read-back overlap. Returns bytes
 * of data and of zeros. No hash here: loadBlob authenticates every block and
 * the read-back hash covers the result, so hashing twice would only cost time.
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
  const concurrency = opts.concurrency ?? 4;
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
  const writes = new BoundedTasks(concurrency);
  const prefix = new WrittenPrefix(sink.written?.bind(sink));
  let index = 0;
  try {
    for await (const piece of orderedPrefetch(content, concurrency, load)) {
      throwIfAborted(opts.signal);
      const length = piece instanceof Uint8Array ? piece.length : (piece as { zero: number }).zero;
      if (offset + length > size) {
        throw new IntegrityError(
          `image ${name} in this snapshot holds more data than its recorded size ${size}`,
        );
      }
      const at = offset;
      const pieceIndex = index++;
      if (piece instanceof Uint8Array) {
        dataBytes += length;
        await writes.add(async () => {
          await sink.data(at, piece);
          prefix.add(pieceIndex, at, at + length, false);
        });
      } else {
        zeroBytes += length;
        await writes.add(async () => {
          await sink.zeros(at, length);
          prefix.add(pieceIndex, at, at + length, true);
        });
      }
      offset += length;
      opts.onProgress?.({ files: 0, totalFiles: 1, bytes: offset, totalBytes: size, currentPath: target });
    }
    await writes.drain();
  } finally {
    // No write may outlive a failed restore: the caller removes or wipes the target next.
    await writes.drain().catch(() => {});
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
    let readBack;
    let hasher: ReadBackHasher | undefined;
    try {
      await fh.truncate(node.size);
      hasher = await ReadBackHasher.open(partial, DEFAULT_IMAGE_BLOCK_SIZE);
      const verifier = hasher;
      copied = await copyImage(
        repo,
        node.content,
        node.size,
        node.name,
        {
          data: (offset, bytes) => writeFully(fh, bytes, offset),
          // Zero runs stay holes of the truncated file.
          zeros: async () => {},
          // Read back and hash what is written while later blocks are restored; holes hash as zeros.
          written: (start, end, zero) => (zero ? verifier.zeros(end - start) : verifier.advance(end)),
        },
        opts,
        target,
      );
      [readBack] = await Promise.all([verifier.finish(node.size), fh.sync()]);
    } finally {
      await hasher?.close();
      await fh.close();
    }
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
    const readBack = await readBackSha256(target, node.size);
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
