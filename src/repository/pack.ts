/**
 * The pack format (docs/repository-format.md §7):
 *
 *   pack          = blob-record* header-record header-length
 *   header-record = sealed(header), AD "lifeboat:pack-header:v1"
 *   header-length = uint32 LE
 *   header        = "LBPK" version(1) reserved(3) count(uint32) entry{count}
 *   entry (48 B)  = type(1) compression(1) reserved(2) blobId(32) offset(4) storedLength(4) rawLength(4)
 *
 * Blob records are contiguous from offset 0 in entry order.
 */
import { IntegrityError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import type { BlobType } from './api.js';
import { associatedData, SEAL_OVERHEAD, seal, unseal } from './crypto.js';
import { readObject } from './storageIo.js';

export type Compression = 'none' | 'zstd';

/** Where one blob sits inside a pack. */
export interface PackEntry {
  id: string;
  type: BlobType;
  compression: Compression;
  /** Offset of the blob record from the start of the pack. */
  offset: number;
  /** Length of the blob record (nonce + ciphertext + tag). */
  length: number;
  /** Plaintext length. */
  rawLength: number;
}

const MAGIC = Buffer.from('LBPK', 'ascii');
const HEADER_VERSION = 1;
const HEADER_PREFIX = 12;
export const PACK_ENTRY_SIZE = 48;
/** Largest header we accept (a hostile length field must not make us read gigabytes). */
const MAX_HEADER_RECORD = 64 * 1024 * 1024;

const TYPE_CODE: Record<BlobType, number> = { data: 0, tree: 1 };
const COMPRESSION_CODE: Record<Compression, number> = { none: 0, zstd: 1 };

/** The plaintext header for `entries`. */
export function encodePackHeader(entries: readonly PackEntry[]): Buffer {
  const buf = Buffer.alloc(HEADER_PREFIX + entries.length * PACK_ENTRY_SIZE);
  MAGIC.copy(buf, 0);
  buf.writeUInt8(HEADER_VERSION, 4);
  buf.writeUInt32LE(entries.length, 8);
  entries.forEach((e, i) => {
    const at = HEADER_PREFIX + i * PACK_ENTRY_SIZE;
    buf.writeUInt8(TYPE_CODE[e.type], at);
    buf.writeUInt8(COMPRESSION_CODE[e.compression], at + 1);
    if (Buffer.from(e.id, 'hex').copy(buf, at + 4) !== 32) throw new RangeError(`bad blob id ${e.id}`);
    buf.writeUInt32LE(e.offset, at + 36);
    buf.writeUInt32LE(e.length, at + 40);
    buf.writeUInt32LE(e.rawLength, at + 44);
  });
  return buf;
}

/** Parse a plaintext header; returns the reason when it is malformed. */
export function decodePackHeader(buf: Buffer): PackEntry[] | string {
  if (buf.length < HEADER_PREFIX || !buf.subarray(0, 4).equals(MAGIC)) return 'the header magic is wrong';
  if (buf.readUInt8(4) !== HEADER_VERSION) return `unknown pack header version ${buf.readUInt8(4)}`;
  const count = buf.readUInt32LE(8);
  if (buf.length !== HEADER_PREFIX + count * PACK_ENTRY_SIZE)
    return 'the header length does not match its count';
  const entries: PackEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER_PREFIX + i * PACK_ENTRY_SIZE;
    const typeCode = buf.readUInt8(at);
    const compressionCode = buf.readUInt8(at + 1);
    if (typeCode > 1) return `entry ${i} has unknown blob type ${typeCode}`;
    if (compressionCode > 1) return `entry ${i} has unknown compression ${compressionCode}`;
    entries.push({
      type: typeCode === 0 ? 'data' : 'tree',
      compression: compressionCode === 0 ? 'none' : 'zstd',
      id: buf.subarray(at + 4, at + 36).toString('hex'),
      offset: buf.readUInt32LE(at + 36),
      length: buf.readUInt32LE(at + 40),
      rawLength: buf.readUInt32LE(at + 44),
    });
  }
  return entries;
}

/** `sealed(header) ‖ uint32 length`, appended after the blob records. */
export function buildPackTrailer(encryptionKey: Uint8Array, entries: readonly PackEntry[]): Buffer {
  const record = seal(encryptionKey, encodePackHeader(entries), associatedData.packHeader);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(record.length, 0);
  return Buffer.concat([record, length]);
}

/** Check that entries tile the pack from offset 0 up to `headerOffset` without gaps. */
export function checkPackLayout(entries: readonly PackEntry[], headerOffset: number): string | undefined {
  let expected = 0;
  for (const [i, e] of entries.entries()) {
    if (e.offset !== expected) return `entry ${i} starts at ${e.offset}, expected ${expected}`;
    if (e.length < SEAL_OVERHEAD) return `entry ${i} is shorter than the encryption overhead`;
    expected += e.length;
  }
  return expected === headerOffset
    ? undefined
    : `blobs end at ${expected} but the header starts at ${headerOffset}`;
}

/** Decode the header from the tail of a pack held in memory (check reads whole packs). */
export function parsePackTail(encryptionKey: Uint8Array, pack: Buffer): PackEntry[] | string {
  if (pack.length < 4 + SEAL_OVERHEAD) return 'the pack is too short to hold a header';
  const recordLength = pack.readUInt32LE(pack.length - 4);
  const headerOffset = pack.length - 4 - recordLength;
  if (recordLength < SEAL_OVERHEAD || headerOffset < 0) return 'the header length field is invalid';
  const plain = unseal(
    encryptionKey,
    pack.subarray(headerOffset, pack.length - 4),
    associatedData.packHeader,
  );
  if (!plain) return 'the header failed authentication';
  const entries = decodePackHeader(plain);
  if (typeof entries === 'string') return entries;
  return checkPackLayout(entries, headerOffset) ?? entries;
}

/** Read and decrypt only the header of a stored pack (two range reads). */
export async function readPackHeader(
  storage: Storage,
  key: string,
  encryptionKey: Uint8Array,
): Promise<PackEntry[]> {
  const fail = (why: string) =>
    new IntegrityError(`pack ${key} in ${storage.url} is damaged: ${why}`, { details: { pack: key } });
  const info = await storage.stat(key);
  if (!info) throw fail('it does not exist');
  if (info.size < 4 + SEAL_OVERHEAD) throw fail('it is too short to hold a header');
  const lengthBytes = await readObject(storage, key, { offset: info.size - 4, length: 4 });
  const recordLength = lengthBytes.readUInt32LE(0);
  const headerOffset = info.size - 4 - recordLength;
  if (recordLength < SEAL_OVERHEAD || recordLength > MAX_HEADER_RECORD || headerOffset < 0) {
    throw fail('its header length field is invalid');
  }
  const record = await readObject(storage, key, { offset: headerOffset, length: recordLength });
  const plain = unseal(encryptionKey, record, associatedData.packHeader);
  if (!plain) throw fail('its header failed authentication');
  const entries = decodePackHeader(plain);
  if (typeof entries === 'string') throw fail(entries);
  const layout = checkPackLayout(entries, headerOffset);
  if (layout) throw fail(layout);
  return entries;
}
