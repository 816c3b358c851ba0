/**
 * Index files (docs/repository-format.md §8): sealed, zstd-compressed JSON
 * listing complete packs and the blobs inside them. Named by the SHA-256 of
 * the stored object.
 */
import { IntegrityError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import type { BlobType } from './api.js';
import { associatedData, sha256Hex } from './crypto.js';
import { indexKey } from './layout.js';
import { decodeMetadataObject, encodeMetadataObject } from './metadataObject.js';
import type { Compression } from './pack.js';
import { readObject } from './storageIo.js';

export interface IndexedBlob {
  id: string;
  offset: number;
  /** Stored length (nonce + ciphertext + tag). */
  length: number;
  rawLength: number;
  compression: Compression;
}

export interface IndexedPack {
  id: string;
  type: BlobType;
  /** Size of the pack object in bytes. */
  size: number;
  blobs: IndexedBlob[];
}

export interface IndexFileBody {
  v: 1;
  packs: IndexedPack[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const isUint32 = (n: unknown): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 2 ** 32;

/** Structural validation of a decoded index body; the reason when it is malformed. */
export function validateIndexBody(value: unknown): IndexFileBody | string {
  const body = value as Partial<IndexFileBody> | null;
  if (typeof body !== 'object' || body === null) return 'it is not a JSON object';
  if (body.v !== 1) return `unknown index version ${String(body.v)}`;
  if (!Array.isArray(body.packs)) return 'it has no packs list';
  for (const pack of body.packs as unknown[]) {
    const p = pack as Partial<IndexedPack>;
    if (typeof p?.id !== 'string' || !HEX64.test(p.id)) return 'a pack has an invalid id';
    if (p.type !== 'data' && p.type !== 'tree') return `pack ${p.id} has an invalid type`;
    if (!isUint32(p.size) || !Array.isArray(p.blobs)) return `pack ${p.id} has an invalid size or blob list`;
    for (const blob of p.blobs as unknown[]) {
      const b = blob as Partial<IndexedBlob>;
      if (typeof b?.id !== 'string' || !HEX64.test(b.id)) return `pack ${p.id} lists an invalid blob id`;
      if (!isUint32(b.offset) || !isUint32(b.length) || !isUint32(b.rawLength)) {
        return `blob ${b.id} in pack ${p.id} has invalid offsets`;
      }
      if (b.compression !== 'none' && b.compression !== 'zstd') return `blob ${b.id} has invalid compression`;
    }
  }
  return body as IndexFileBody;
}

/** Seal and store an index file for `packs`; returns its ID. */
export async function writeIndexFile(
  storage: Storage,
  encryptionKey: Uint8Array,
  packs: readonly IndexedPack[],
): Promise<string> {
  const body: IndexFileBody = { v: 1, packs: [...packs] };
  const bytes = encodeMetadataObject(encryptionKey, associatedData.index, body, true);
  const id = sha256Hex(bytes);
  await storage.put(indexKey(id), bytes, { size: bytes.length });
  return id;
}

/** Read, verify (name = SHA-256, authentication, structure) and decode an index file. */
export async function readIndexFile(
  storage: Storage,
  encryptionKey: Uint8Array,
  id: string,
): Promise<IndexFileBody> {
  const key = indexKey(id);
  const fail = (why: string) =>
    new IntegrityError(`index file ${key} in ${storage.url} is damaged: ${why}`, {
      hint: 'Run `lifeboat check`; the index can be rebuilt from the packs.',
      details: { index: key },
    });
  const bytes = await readObject(storage, key);
  if (sha256Hex(bytes) !== id) throw fail('its content does not match its name');
  const decoded = decodeMetadataObject(encryptionKey, associatedData.index, bytes);
  if (!decoded.ok) throw fail(decoded.reason);
  const body = validateIndexBody(decoded.value);
  if (typeof body === 'string') throw fail(body);
  return body;
}
