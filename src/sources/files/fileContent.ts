/**
 * Reads one open file through the repository's chunker into data blobs, with
 * several saveBlob calls in flight, hashing the whole file on the way.
 * All-zero chunks become `{ zero: n }` refs and are not stored (sparse files).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Chunker, Repo } from '../../repository/api.js';
import type { ContentRef } from '../../repository/tree.js';
import type { Semaphore } from './semaphore.js';
import { isAllZero, pushZero } from './zeroRuns.js';

/** Files below this size are read with one call: no stream, no per-read overhead. */
export const SMALL_FILE = 1024 * 1024;
const READ_SIZE = 1024 * 1024;

/** A read from the source failed: a warning for this file, not a failure of the backup. */
export class SourceReadError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

export interface StoredContent {
  content: ContentRef[];
  sha256: string;
  /** Bytes read (the size the file had while it was read). */
  size: number;
  addedBytes: number;
  newBlobs: number;
}

async function* readAll(fh: FileHandle, expectedSize: number): AsyncGenerator<Uint8Array> {
  if (expectedSize < SMALL_FILE) {
    // One read of at most size + 1 bytes: no stream, no extra fstat, and never unbounded even if
    // the file was swapped for something endless. A longer read means the file grew; the caller's
    // after-read check reports it.
    const buf = Buffer.allocUnsafe(expectedSize + 1);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, 0, buf.length, 0));
    } catch (err) {
      throw new SourceReadError(err);
    }
    if (bytesRead > 0) yield buf.subarray(0, bytesRead);
    return;
  }
  let position = 0;
  for (;;) {
    // A fresh buffer per read: the chunker may hold on to it.
    const buf = Buffer.allocUnsafe(READ_SIZE);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, 0, READ_SIZE, position));
    } catch (err) {
      throw new SourceReadError(err);
    }
    if (bytesRead === 0) return;
    position += bytesRead;
    yield bytesRead === READ_SIZE ? buf : buf.subarray(0, bytesRead);
  }
}

export interface StoreContentOptions {
  /** The repository's chunker (one per run: it is stateless between calls). */
  chunker: Chunker;
  blobSlots: Semaphore;
  onBytes?: (n: number) => void;
  checkAbort?: () => void;
}

/** Chunk, hash and save the content of an open file. Throws SourceReadError when reading fails. */
export async function storeFileContent(
  repo: Repo,
  fh: FileHandle,
  expectedSize: number,
  opts: StoreContentOptions,
): Promise<StoredContent> {
  const hash = createHash('sha256');
  const content: ContentRef[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let size = 0;
  let addedBytes = 0;
  let newBlobs = 0;
  try {
    for await (const chunk of opts.chunker.chunks(readAll(fh, expectedSize))) {
      if (failure !== undefined) break;
      opts.checkAbort?.();
      hash.update(chunk);
      size += chunk.length;
      opts.onBytes?.(chunk.length);
      if (isAllZero(chunk)) {
        pushZero(content, chunk.length);
        continue;
      }
      const index = content.push('') - 1;
      const release = await opts.blobSlots.acquire();
      const saving: Promise<void> = repo
        .saveBlob('data', chunk)
        .then(
          (saved) => {
            content[index] = saved.id;
            if (saved.stored) {
              addedBytes += saved.length;
              newBlobs++;
            }
          },
          (err: unknown) => {
            failure ??= err;
          },
        )
        .finally(() => {
          release();
          inFlight.delete(saving);
        });
      inFlight.add(saving);
    }
  } finally {
    // Never leave saves running behind our back, even when reading failed.
    await Promise.all(inFlight);
  }
  if (failure !== undefined) throw failure;
  return { content, sha256: hash.digest('hex'), size, addedBytes, newBlobs };
}
