/**
 * The cryptographic primitives of the format (docs/repository-format.md §4–§6):
 * AES-256-GCM sealing with associated data, keyed blob IDs, content hashes.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { BlobType } from './api.js';

export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
/** Bytes a sealed thing is longer than its plaintext. */
export const SEAL_OVERHEAD = NONCE_LENGTH + TAG_LENGTH;

/** The repository secrets shared by every key slot. */
export interface MasterKey {
  /** AES-256-GCM key for every blob and metadata object. */
  encryption: Buffer;
  /** HMAC-SHA256 key for blob IDs. */
  blobId: Buffer;
  /** Seed of the chunker's gear table. */
  chunkerSeed: Buffer;
}

const MASTER_KEY_LAYOUT = 1;
export const MASTER_KEY_ENCODED_LENGTH = 97;

/** Fresh random master key material for `repo init`. */
export function generateMasterKey(): MasterKey {
  const bytes = randomBytes(96);
  return {
    encryption: bytes.subarray(0, 32),
    blobId: bytes.subarray(32, 64),
    chunkerSeed: bytes.subarray(64, 96),
  };
}

/** `0x01 ‖ encryption ‖ blobId ‖ chunkerSeed` (97 bytes), the plaintext wrapped in key files. */
export function encodeMasterKey(key: MasterKey): Buffer {
  return Buffer.concat([Uint8Array.of(MASTER_KEY_LAYOUT), key.encryption, key.blobId, key.chunkerSeed]);
}

/** Inverse of encodeMasterKey; undefined when the layout is unknown. */
export function decodeMasterKey(bytes: Uint8Array): MasterKey | undefined {
  if (bytes.length !== MASTER_KEY_ENCODED_LENGTH || bytes[0] !== MASTER_KEY_LAYOUT) return undefined;
  const b = Buffer.from(bytes);
  return { encryption: b.subarray(1, 33), blobId: b.subarray(33, 65), chunkerSeed: b.subarray(65, 97) };
}

/**
 * Random nonces drawn from a 4 KiB pool: one randomFillSync per ~340 nonces
 * instead of one per blob (a system call each; 8 µs per blob measured on
 * small files). Nonces stay random and are never handed out twice.
 */
const NONCE_POOL_BYTES = NONCE_LENGTH * 341;
let noncePool = Buffer.alloc(0);
let noncePoolOffset = 0;

function freshNonce(): Buffer {
  if (noncePoolOffset + NONCE_LENGTH > noncePool.length) {
    noncePool = randomBytes(NONCE_POOL_BYTES);
    noncePoolOffset = 0;
  }
  const nonce = noncePool.subarray(noncePoolOffset, noncePoolOffset + NONCE_LENGTH);
  noncePoolOffset += NONCE_LENGTH;
  return nonce;
}

/** seal() as the pieces `[nonce, ciphertext…, tag]`, for callers that concatenate anyway (packs). */
export function sealParts(key: Uint8Array, plaintext: Uint8Array, associatedData: string): Buffer[] {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return final.length > 0 ? [nonce, body, final, cipher.getAuthTag()] : [nonce, body, cipher.getAuthTag()];
}

/** Encrypt and authenticate: `nonce(12) ‖ ciphertext ‖ tag(16)`. */
export function seal(key: Uint8Array, plaintext: Uint8Array, associatedData: string): Buffer {
  return Buffer.concat(sealParts(key, plaintext, associatedData));
}

/** Decrypt and verify; undefined when the bytes or the associated data do not authenticate. */
export function unseal(key: Uint8Array, sealed: Uint8Array, associatedData: string): Buffer | undefined {
  if (sealed.length < SEAL_OVERHEAD) return undefined;
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, NONCE_LENGTH));
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_LENGTH));
  try {
    const body = decipher.update(buf.subarray(NONCE_LENGTH, buf.length - TAG_LENGTH));
    return Buffer.concat([body, decipher.final()]);
  } catch {
    return undefined;
  }
}

/** Blob ID: hex HMAC-SHA256 of the plaintext under the blob-ID key. */
export function computeBlobId(blobIdKey: Uint8Array, data: Uint8Array): string {
  return createHmac('sha256', blobIdKey).update(data).digest('hex');
}

/** Zeros fed to the HMAC for the zero runs of computeBlobIdOfParts. */
const ZERO_RUN_SLICE = Buffer.alloc(64 * 1024);

/**
 * computeBlobId of the bytes that `parts` stand for, without joining them:
 * byte views in order, a number for that many zero bytes.
 */
export function computeBlobIdOfParts(blobIdKey: Uint8Array, parts: readonly (Uint8Array | number)[]): string {
  const mac = createHmac('sha256', blobIdKey);
  for (const part of parts) {
    if (typeof part !== 'number') {
      mac.update(part);
      continue;
    }
    for (let left = part; left > 0; left -= ZERO_RUN_SLICE.length) {
      mac.update(left >= ZERO_RUN_SLICE.length ? ZERO_RUN_SLICE : ZERO_RUN_SLICE.subarray(0, left));
    }
  }
  return mac.digest('hex');
}

/** Hex SHA-256, the name of content-addressed objects. */
export function sha256Hex(data: Uint8Array | readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  if (data instanceof Uint8Array) hash.update(data);
  else for (const part of data) hash.update(part);
  return hash.digest('hex');
}

/** `bytes` random bytes as hex. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** Associated data for each kind of sealed thing (§5): a sealed thing cannot pass as another. */
export const associatedData = {
  blob: (type: BlobType, id: string): string => `lifeboat:blob:v1:${type}:${id}`,
  packHeader: 'lifeboat:pack-header:v1',
  index: 'lifeboat:index:v1',
  snapshot: 'lifeboat:snapshot:v1',
  journal: (name: string): string => `lifeboat:journal:v1:${name}`,
  lock: (lockId: string): string => `lifeboat:lock:v1:${lockId}`,
  config: (repositoryId: string): string => `lifeboat:config:v1:${repositoryId}`,
} as const;
