/**
 * Sealed JSON objects: index files, snapshots, journal records and locks
 * (docs/repository-format.md §5 "Metadata objects"):
 * `version(0x01) ‖ sealed(encoding ‖ payload)`.
 */
import { seal, unseal } from './crypto.js';
import { zstdCompressSync, zstdDecompressSync } from './workerPool.js';

const OBJECT_VERSION = 1;
const ENCODING_JSON = 0;
const ENCODING_ZSTD_JSON = 1;

/** Serialize, optionally compress, and seal a JSON value. */
export function encodeMetadataObject(
  key: Uint8Array,
  associatedData: string,
  value: unknown,
  compress: boolean,
): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const body = compress
    ? Buffer.concat([Uint8Array.of(ENCODING_ZSTD_JSON), zstdCompressSync(json, 3)])
    : Buffer.concat([Uint8Array.of(ENCODING_JSON), json]);
  return Buffer.concat([Uint8Array.of(OBJECT_VERSION), seal(key, body, associatedData)]);
}

export type DecodeResult = { ok: true; value: unknown } | { ok: false; reason: string };

/** Verify, decrypt and parse a metadata object; says why when it cannot. */
export function decodeMetadataObject(
  key: Uint8Array,
  associatedData: string,
  bytes: Uint8Array,
): DecodeResult {
  if (bytes.length === 0) return { ok: false, reason: 'the object is empty' };
  if (bytes[0] !== OBJECT_VERSION) {
    return {
      ok: false,
      reason: `unknown object version ${bytes[0]} (this lifeboat reads version ${OBJECT_VERSION})`,
    };
  }
  const body = unseal(key, bytes.subarray(1), associatedData);
  if (!body) return { ok: false, reason: 'it failed authentication (damaged or modified)' };
  let json: Buffer;
  if (body[0] === ENCODING_JSON) json = body.subarray(1);
  else if (body[0] === ENCODING_ZSTD_JSON) {
    try {
      json = zstdDecompressSync(body.subarray(1));
    } catch (err) {
      return { ok: false, reason: `its zstd payload does not decode (${(err as Error).message})` };
    }
  } else return { ok: false, reason: `unknown payload encoding ${body[0]}` };
  try {
    return { ok: true, value: JSON.parse(json.toString('utf8')) as unknown };
  } catch {
    return { ok: false, reason: 'its payload is not valid JSON' };
  }
}
