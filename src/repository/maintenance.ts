/**
 * Low-level access for `check` and `prune` (and nothing else): list and read
 * packs, index files and snapshots as stored, verify them, write replacement
 * index files and delete objects. Ordinary users go through Repository.
 *
 * Prune must keep the ordering of docs/repository-format.md §13: under an
 * exclusive lock, delete snapshots, write new index files, delete the old
 * index files, then delete unreferenced packs.
 */
import { createHash } from 'node:crypto';
import type { BlobType } from './api.js';
import { openRequestFor, openStoredBlob, storedBlobProblem, verifyStoredBlob } from './blobReader.js';
import { sha256Hex } from './crypto.js';
import { readIndexFile, writeIndexFile, type IndexedPack, type IndexFileBody } from './indexFile.js';
import {
  DATA_PREFIX,
  INDEX_PREFIX,
  indexKey,
  packKey,
  parseIndexKey,
  parsePackKey,
  parseSnapshotKey,
  snapshotKey,
  SNAPSHOTS_PREFIX,
} from './layout.js';
import { parsePackTail, readPackHeader as readStoredPackHeader, type PackEntry } from './pack.js';
import { PackWriter } from './packWriter.js';
import type { Repository } from './repository.js';
import { readSnapshot } from './snapshots.js';
import { listKeys, mapLimit, readObject } from './storageIo.js';
import type { SnapshotEntry } from './api.js';

export type { PackEntry } from './pack.js';
export type { IndexedPack, IndexedBlob, IndexFileBody } from './indexFile.js';
export type { BlobLocation } from './blobIndex.js';

/** A pack object as listed in the storage. */
export interface StoredPack {
  id: string;
  key: string;
  size: number;
  /** Last modification by the storage's clock, when the backend knows it (prune's leftover age). */
  mtimeMs?: number;
}

/** Every pack object in the storage (indexed or not). */
export async function listPackObjects(repo: Repository): Promise<StoredPack[]> {
  const { storage } = repo.internals();
  const out: StoredPack[] = [];
  for (const o of await listKeys(storage, DATA_PREFIX)) {
    const id = parsePackKey(o.key);
    if (id)
      out.push({ id, key: o.key, size: o.size, ...(o.mtimeMs === undefined ? {} : { mtimeMs: o.mtimeMs }) });
  }
  return out;
}

/** IDs of every index file in the storage. */
export async function listIndexFileIds(repo: Repository): Promise<string[]> {
  const { storage } = repo.internals();
  return (await listKeys(storage, INDEX_PREFIX))
    .map((o) => parseIndexKey(o.key))
    .filter((id): id is string => !!id);
}

/** Read one index file (verifies name hash, authentication and structure; IntegrityError otherwise). */
export function readIndex(repo: Repository, id: string): Promise<IndexFileBody> {
  const { storage, master } = repo.internals();
  return readIndexFile(storage, master.encryption, id);
}

/** Write an index file listing `packs` (all stored already); returns its ID. */
export function writeIndex(repo: Repository, packs: readonly IndexedPack[]): Promise<string> {
  const { storage, master } = repo.internals();
  return writeIndexFile(storage, master.encryption, packs);
}

/** Every pack the loaded in-memory index knows, with type, size and blob count. */
export function indexedPacks(
  repo: Repository,
): Map<string, Readonly<{ type: BlobType; size: number; blobs: number }>> {
  return new Map(repo.internals().index.packEntries());
}

/** Read and verify only the header of a stored pack (two range reads). */
export function readPackHeader(repo: Repository, packId: string): Promise<PackEntry[]> {
  const { storage, master } = repo.internals();
  return readStoredPackHeader(storage, packKey(packId), master.encryption);
}

/** One finding of verifyPack. */
export interface PackProblem {
  pack: string;
  blob?: string;
  message: string;
}

/**
 * Read a whole pack and verify everything in it: the SHA-256 name, the
 * header, and every blob (authentication, decompression, ID). Returns the
 * header entries (when readable) and every problem found.
 */
export async function verifyPack(
  repo: Repository,
  packId: string,
): Promise<{ entries: PackEntry[] | undefined; problems: PackProblem[] }> {
  const { storage, master, pool } = repo.internals();
  const key = packKey(packId);
  const bytes = await readObject(storage, key);
  const problems: PackProblem[] = [];
  if (sha256Hex(bytes) !== packId)
    problems.push({ pack: packId, message: 'content does not match its name (SHA-256)' });
  const entries = parsePackTail(master.encryption, bytes);
  if (typeof entries === 'string') {
    problems.push({ pack: packId, message: `header: ${entries}` });
    return { entries: undefined, problems };
  }
  for (const entry of entries) {
    try {
      await verifyStoredBlob(
        master,
        pool,
        bytes.subarray(entry.offset, entry.offset + entry.length),
        entry,
        key,
        storage.url,
      );
    } catch (err) {
      problems.push({ pack: packId, blob: entry.id, message: (err as Error).message });
    }
  }
  return { entries, problems };
}

/** IDs of every snapshot object in the storage. */
export async function listSnapshotIds(repo: Repository): Promise<string[]> {
  const { storage } = repo.internals();
  return (await listKeys(storage, SNAPSHOTS_PREFIX))
    .map((o) => parseSnapshotKey(o.key))
    .filter((id): id is string => !!id);
}

/** Read one snapshot (verifies name hash, authentication, structure; IntegrityError otherwise). */
export function readSnapshotById(repo: Repository, id: string): Promise<SnapshotEntry> {
  const { storage, master } = repo.internals();
  return readSnapshot(storage, master.encryption, id);
}

/** Delete a snapshot object (forget). */
export async function deleteSnapshot(repo: Repository, id: string): Promise<void> {
  await repo.internals().storage.delete(snapshotKey(id));
}

/** Delete an index file (only after a replacement listing its live packs is written). */
export async function deleteIndexFile(repo: Repository, id: string): Promise<void> {
  await repo.internals().storage.delete(indexKey(id));
}

/** Delete a pack (only once no index file lists it). */
export async function deletePack(repo: Repository, id: string): Promise<void> {
  await repo.internals().storage.delete(packKey(id));
}

/** Read several index files with bounded parallelism; damaged ones are reported, not thrown. */
export async function readAllIndexFiles(
  repo: Repository,
): Promise<{ files: { id: string; body: IndexFileBody }[]; problems: { id: string; message: string }[] }> {
  const ids = await listIndexFileIds(repo);
  const files: { id: string; body: IndexFileBody }[] = [];
  const problems: { id: string; message: string }[] = [];
  await mapLimit(ids, 8, async (id) => {
    try {
      files.push({ id, body: await readIndex(repo, id) });
    } catch (err) {
      problems.push({ id, message: (err as Error).message });
    }
  });
  return { files, problems };
}

// ── Added for check and prune (src/repository/check.ts, prune.ts) ─────────

/** A blob as an index file locates it, with its ID (what the readers below need). */
export interface LocatedBlob {
  id: string;
  packId: string;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
  compression: PackEntry['compression'];
}

/** Read the sealed record of one blob as stored (a range read; nothing is verified yet). */
export function readBlobRecord(repo: Repository, blob: LocatedBlob): Promise<Buffer> {
  const { storage } = repo.internals();
  return readObject(storage, packKey(blob.packId), { offset: blob.offset, length: blob.length });
}

/**
 * Decrypt, decompress and verify a sealed blob record; IntegrityError naming
 * pack and blob otherwise. `take` as for openStoredBlob.
 */
export function openBlobRecord(
  repo: Repository,
  record: Uint8Array,
  blob: LocatedBlob,
  take = false,
): Promise<Buffer> {
  const { storage, master, pool } = repo.internals();
  return openStoredBlob(master, pool, record, blob, packKey(blob.packId), storage.url, take);
}

/**
 * Load one blob from the location given (not from the repository's
 * in-memory index, which check and prune do not trust: it may predate
 * their lock).
 */
export async function loadBlobAt(repo: Repository, blob: LocatedBlob): Promise<Buffer> {
  return openBlobRecord(repo, await readBlobRecord(repo, blob), blob, true);
}

/** What readAndVerifyPack found. */
export interface PackReadResult {
  /** Bytes read. */
  size: number;
  /** SHA-256 of the bytes read (the pack's name when intact). */
  sha256: string;
  /** Blobs that failed verification, truncation, and a name mismatch. */
  problems: PackProblem[];
}

/**
 * readAndVerifyPack verifies the records of a pack in batches of about this
 * many bytes, one worker job each: a pack of small files holds thousands of
 * records, and opening them one by one (or one job each) kept the calling
 * thread busier than the workers.
 */
const VERIFY_BATCH_BYTES = 1024 * 1024;
/** Batches of one pack being verified at once (the worker threads share them). */
const BATCHES_IN_FLIGHT = 4;
/** Batch buffers back from the workers, filled again by the next batches (of any pack). */
const spareBatches: Buffer[] = [];
const SPARE_BATCHES = 4;

/**
 * Stream a whole pack once: hash every byte (the name must be its SHA-256)
 * and verify every blob record of `entries` as soon as it has arrived, in
 * batches so that every worker thread has work. Memory stays at a few
 * batches, whatever the pack size.
 */
export async function readAndVerifyPack(
  repo: Repository,
  packId: string,
  entries: readonly PackEntry[],
  onBytes?: (n: number) => void,
): Promise<PackReadResult> {
  const { storage, master, pool } = repo.internals();
  const key = packKey(packId);
  const url = storage.url;
  const sorted = [...entries].sort((a, b) => a.offset - b.offset);
  const hash = createHash('sha256');
  // Per entry (in offset order), what is wrong with it: filled as batches finish, reported in order.
  const blobProblems: (string | undefined)[] = [];
  const verifying = new Set<Promise<void>>();
  // The batch being gathered: its records copied back to back into `batchData`, and their indexes in `sorted`.
  let batchData: Buffer | undefined;
  let batchBytes = 0;
  let members: number[] = [];
  const flush = () => {
    if (!batchData || members.length === 0) return;
    const indexes = members;
    const data = batchData.subarray(0, batchBytes);
    const lengths = indexes.map((i) => sorted[i]!.length);
    const blobs = indexes.map((i) => openRequestFor(sorted[i]!, true));
    members = [];
    batchData = undefined;
    batchBytes = 0;
    const done: Promise<void> = pool
      .verifyBatch(master, data, lengths, blobs)
      .then(({ verdicts, buffer }) => {
        if (buffer.length >= VERIFY_BATCH_BYTES && spareBatches.length < SPARE_BATCHES)
          spareBatches.push(buffer);
        verdicts.forEach((failure, k) => {
          const index = indexes[k]!;
          if (failure) blobProblems[index] = storedBlobProblem(sorted[index]!, key, url, failure);
        });
      })
      .catch((err: unknown) => {
        for (const index of indexes) blobProblems[index] = (err as Error).message;
      })
      .finally(() => verifying.delete(done));
    verifying.add(done);
  };
  const add = (index: number, record: Buffer) => {
    if (batchData && batchBytes + record.length > batchData.length) flush();
    batchData ??=
      record.length <= VERIFY_BATCH_BYTES && spareBatches.length > 0
        ? spareBatches.pop()!
        : Buffer.allocUnsafeSlow(Math.max(VERIFY_BATCH_BYTES, record.length));
    batchBytes += record.copy(batchData, batchBytes);
    members.push(index);
    if (batchBytes === batchData.length) flush();
  };
  const received = new ReceivedBytes();
  let next = 0;
  let position = 0;
  const stream = await storage.get(key);
  for await (const raw of stream as AsyncIterable<Uint8Array | string>) {
    const chunk =
      typeof raw === 'string' ? Buffer.from(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    hash.update(chunk);
    position += chunk.length;
    onBytes?.(chunk.length);
    if (next >= sorted.length) continue;
    received.push(chunk);
    while (next < sorted.length && sorted[next]!.offset + sorted[next]!.length <= position) {
      const index = next++;
      const entry = sorted[index]!;
      if (entry.offset < received.from) {
        blobProblems[index] = 'overlaps the blob before it';
        continue;
      }
      add(index, received.record(entry.offset, entry.length).bytes);
      // Keep only what the next records still need.
      const nextOffset = next < sorted.length ? sorted[next]!.offset : position;
      received.dropBefore(Math.max(nextOffset, entry.offset + entry.length));
      while (verifying.size >= BATCHES_IN_FLIGHT) await Promise.race(verifying);
    }
  }
  flush();
  await Promise.all(verifying);
  const problems: PackProblem[] = [];
  sorted.forEach((entry, i) => {
    const message = blobProblems[i];
    if (message !== undefined) problems.push({ pack: packId, blob: entry.id, message });
  });
  for (const entry of sorted.slice(next)) {
    problems.push({
      pack: packId,
      blob: entry.id,
      message: `is cut off: the pack ends at byte ${position}, the blob at ${entry.offset + entry.length}`,
    });
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== packId)
    problems.push({ pack: packId, message: 'content does not match its name (SHA-256)' });
  return { size: position, sha256, problems };
}

/**
 * The bytes of a stream from `from` on, kept as the chunks received, so that
 * records are cut out of them without concatenating whole chunks.
 */
class ReceivedBytes {
  /** Stream offset of the first byte still needed; earlier ones are gone. */
  from = 0;
  /** Stream offset of chunks[0]. */
  private start = 0;
  private chunks: Buffer[] = [];

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  /**
   * The bytes at [offset, offset + length): a view when one chunk holds
   * them, else a copy of its own (`owned`: it may move to a worker).
   */
  record(offset: number, length: number): { bytes: Buffer; owned: boolean } {
    let chunkStart = this.start;
    let first = 0;
    while (chunkStart + this.chunks[first]!.length <= offset) chunkStart += this.chunks[first++]!.length;
    const head = this.chunks[first]!;
    if (offset + length <= chunkStart + head.length) {
      return { bytes: head.subarray(offset - chunkStart, offset - chunkStart + length), owned: false };
    }
    const bytes = Buffer.allocUnsafeSlow(length);
    for (let i = first; chunkStart < offset + length; chunkStart += this.chunks[i++]!.length) {
      const chunk = this.chunks[i]!;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(offset + length, chunkStart + chunk.length);
      bytes.set(chunk.subarray(from - chunkStart, to - chunkStart), from - offset);
    }
    return { bytes, owned: true };
  }

  /** Forget the bytes before `offset` (whole chunks are let go of once nothing in them is needed). */
  dropBefore(offset: number): void {
    this.from = Math.max(this.from, offset);
    while (this.chunks.length > 0 && this.start + this.chunks[0]!.length <= this.from) {
      this.start += this.chunks.shift()!.length;
    }
  }
}

/** Writes verified blob records into new packs (prune's repacking); see createPackCopier. */
export interface PackCopier {
  /** Append one sealed blob record exactly as it was stored (the seal does not depend on the pack). */
  add(blob: LocatedBlob, record: Buffer): Promise<void>;
  /** Upload what is still open and wait for every upload; returns every pack written. */
  finish(): Promise<IndexedPack[]>;
}

/**
 * A pack writer for repacking: blobs keep their sealed bytes (associated
 * data names type and ID, not the pack), so nothing is decrypted or
 * compressed again. New packs are not indexed here: the caller writes them
 * into its new index files.
 */
export function createPackCopier(repo: Repository, opts: { packSize?: number } = {}): PackCopier {
  const { storage, master, pool, parameters } = repo.internals();
  const written: IndexedPack[] = [];
  let failure: unknown;
  const writer = new PackWriter({
    storage,
    encryptionKey: master.encryption,
    packSize: opts.packSize ?? parameters.packSize,
    maxUploads: Math.max(1, Math.min(2, storage.capabilities.maxConnections)),
    onPackStored: (pack) => written.push(pack),
    onFailure: (err) => (failure ??= err),
    sha256: (pack) => pool.sha256(pack),
  });
  return {
    async add(blob, record) {
      if (failure !== undefined) throw failure;
      await writer.add(blob.type, { id: blob.id, compression: blob.compression, rawLength: blob.rawLength }, [
        record,
      ]);
    },
    async finish() {
      await writer.flush();
      if (failure !== undefined) throw failure;
      return written;
    },
  };
}
