/**
 * Turning a stored blob record back into plaintext, with every check of
 * docs/repository-format.md §6: authentication with the blob's type and ID
 * as associated data, decompression to the recorded length, and the keyed
 * ID recomputed over the plaintext. Any mismatch is an IntegrityError naming
 * the pack and the blob.
 */
import { IntegrityError } from '../errors.js';
import type { BlobType } from './api.js';
import type { WorkerPool } from './workerPool.js';
import { associatedData, computeBlobId, unseal, type MasterKey } from './crypto.js';
import type { Compression } from './pack.js';

export interface StoredBlobRef {
  id: string;
  type: BlobType;
  compression: Compression;
  length: number;
  rawLength: number;
}

/** Decrypt, decompress and verify one blob record read from `packKey`. */
export async function openStoredBlob(
  master: MasterKey,
  pool: WorkerPool,
  record: Uint8Array,
  blob: StoredBlobRef,
  packKey: string,
  url: string,
): Promise<Buffer> {
  const fail = (why: string) =>
    new IntegrityError(`blob ${blob.id} in pack ${packKey} of ${url} ${why}`, {
      hint: 'The repository is damaged here; run `lifeboat check` to see the extent, and restore from another copy.',
      details: { blob: blob.id, pack: packKey },
    });
  if (record.length !== blob.length) throw fail(`is truncated (${record.length} of ${blob.length} bytes)`);
  const payload = unseal(master.encryption, record, associatedData.blob(blob.type, blob.id));
  if (!payload) throw fail('failed authentication (damaged or modified)');
  let plain: Buffer;
  if (blob.compression === 'zstd') {
    try {
      plain = await pool.decompress(payload, blob.rawLength);
    } catch (err) {
      throw fail(`does not decompress: ${(err as Error).message}`);
    }
  } else {
    plain = payload;
  }
  if (plain.length !== blob.rawLength)
    throw fail(`has ${plain.length} bytes, the index says ${blob.rawLength}`);
  if (computeBlobId(master.blobId, plain) !== blob.id) throw fail('does not match its ID');
  return plain;
}
