/**
 * Turning a stored blob record back into plaintext, with every check of
 * docs/repository-format.md §6: authentication with the blob's type and ID
 * as associated data, decompression to the recorded length, and the keyed
 * ID recomputed over the plaintext (left to the caller's own content hash
 * when it asks, see OpenRequest.contentChecked). The checks run on a worker thread for
 * all but small records (WorkerPool.open); any mismatch is an IntegrityError
 * naming the pack and the blob.
 */
import { IntegrityError } from '../errors.js';
import type { BlobType } from './api.js';
import type { OpenFailure, OpenRequest, WorkerPool } from './workerPool.js';
import { associatedData, type MasterKey } from './crypto.js';
import type { Compression } from './pack.js';

export interface StoredBlobRef {
  id: string;
  type: BlobType;
  compression: Compression;
  length: number;
  rawLength: number;
}

/**
 * Decrypt, decompress and verify one blob record read from `packKey`. With
 * `take`, the record's memory may move to a worker thread (the caller must
 * not use `record`, nor anything else over its ArrayBuffer, afterwards); with
 * `contentChecked`, the keyed ID is not recomputed (OpenRequest.contentChecked).
 */
export async function openStoredBlob(
  master: MasterKey,
  pool: WorkerPool,
  record: Uint8Array,
  blob: StoredBlobRef,
  packKey: string,
  url: string,
  take = false,
  contentChecked = false,
): Promise<Buffer> {
  return (await checkStoredBlob(master, pool, record, blob, packKey, url, {
    take,
    verifyOnly: false,
    contentChecked,
  }))!;
}

/** openStoredBlob for a caller that needs only the verdict (check --read-data): nothing comes back. */
export async function verifyStoredBlob(
  master: MasterKey,
  pool: WorkerPool,
  record: Uint8Array,
  blob: StoredBlobRef,
  packKey: string,
  url: string,
  take = false,
): Promise<void> {
  await checkStoredBlob(master, pool, record, blob, packKey, url, { take, verifyOnly: true });
}

async function checkStoredBlob(
  master: MasterKey,
  pool: WorkerPool,
  record: Uint8Array,
  blob: StoredBlobRef,
  packKey: string,
  url: string,
  opts: { take: boolean; verifyOnly: boolean; contentChecked?: boolean },
): Promise<Buffer | undefined> {
  if (record.length !== blob.length) {
    throw damagedBlob(blob, packKey, url, `is truncated (${record.length} of ${blob.length} bytes)`);
  }
  const opened = await pool.open(
    master,
    record,
    openRequestFor(blob, opts.verifyOnly, opts.contentChecked),
    opts.take,
  );
  if (!opened.ok) throw storedBlobError(blob, packKey, url, opened.failure);
  return opened.plain;
}

const damagedBlob = (blob: StoredBlobRef, packKey: string, url: string, why: string) =>
  new IntegrityError(blobProblem(blob.id, packKey, url, why), {
    hint: 'The repository is damaged here; run `lifeboat check` to see the extent, and restore from another copy.',
    details: { blob: blob.id, pack: packKey },
  });

/** The IntegrityError for a record that failed a check where it was opened (here or by a worker job). */
export function storedBlobError(
  blob: StoredBlobRef,
  packKey: string,
  url: string,
  failure: OpenFailure,
): IntegrityError {
  return damagedBlob(blob, packKey, url, describeFailure(failure, blob.rawLength));
}

const blobProblem = (id: string, packKey: string, url: string, why: string) =>
  `blob ${id} in pack ${packKey} of ${url} ${why}`;

/** What check --read-data reports for a record that failed a check (the message an IntegrityError would have). */
export function storedBlobProblem(
  blob: StoredBlobRef,
  packKey: string,
  url: string,
  failure: OpenFailure,
): string {
  return blobProblem(blob.id, packKey, url, describeFailure(failure, blob.rawLength));
}

/** What a stored blob record must turn into, for WorkerPool.open/verifyBatch. */
export function openRequestFor(
  blob: StoredBlobRef,
  verifyOnly: boolean,
  contentChecked = false,
): OpenRequest {
  return {
    id: blob.id,
    associatedData: associatedData.blob(blob.type, blob.id),
    compressed: blob.compression === 'zstd',
    rawLength: blob.rawLength,
    verifyOnly,
    ...(contentChecked ? { contentChecked } : {}),
  };
}

/** The end of the IntegrityError message for each failed check. */
function describeFailure(failure: OpenFailure, rawLength: number): string {
  switch (failure.reason) {
    case 'authentication':
      return 'failed authentication (damaged or modified)';
    case 'decompression':
      return `does not decompress: ${failure.message}`;
    case 'length':
      return `has ${failure.length} bytes, the index says ${rawLength}`;
    case 'id':
      return 'does not match its ID';
  }
}
