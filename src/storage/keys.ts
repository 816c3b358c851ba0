import { InvalidKeyError } from './errors.js';

/**
 * The rules every backend applies to object keys, so a key that works on one
 * backend works on all of them and no key can name something outside the
 * storage root:
 * - `/`-separated, relative (no leading `/`), no empty segment (`a//b`, `a/`),
 *   no `.` or `..` segment;
 * - no NUL or other control character;
 * - at most {@link MAX_KEY_BYTES} bytes (the S3 limit) and
 *   {@link MAX_SEGMENT_BYTES} bytes per segment (leaves room under the 255-byte
 *   file name limit of local file systems for the temp-file decoration);
 * - no segment shaped like a local temp file (see {@link isTempName}), which
 *   list() hides.
 */
export const MAX_KEY_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 200;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Shape of the names src/platform/atomicWrite.ts tempNameFor() produces: `.<name>.tmp-<12 hex>`. */
const TEMP_NAME = /^\..*\.tmp-[0-9a-f]{12}$/;

/** True for a file name that is an in-progress write of the local backend, never an object. */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** Why `key` is not acceptable, or undefined when it is a valid key. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'not a string';
  if (key.length === 0) return 'empty key';
  if (key.startsWith('/')) return 'absolute keys are not allowed';
  if (CONTROL.test(key)) return 'contains a NUL or control character';
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  for (const segment of key.split('/')) {
    const problem = segmentProblem(segment);
    if (problem) return problem;
  }
  return undefined;
}

function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'empty path segment';
  if (segment === '.' || segment === '..') return `"${segment}" segments are not allowed`;
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)
    return `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  if (isTempName(segment)) return 'segment is reserved for temporary files';
  return undefined;
}

/** Throw InvalidKeyError unless `key` is a valid object key. */
export function validateKey(key: string): void {
  const problem = keyProblem(key);
  if (problem) throw new InvalidKeyError(String(key), problem);
}

/**
 * Throw InvalidKeyError unless `prefix` is a valid list prefix: empty, or a
 * key-like string whose last segment may be partial or empty (`data/`, `data/a`).
 */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new InvalidKeyError(String(prefix), 'prefix is not a string');
  if (prefix === '') return;
  if (prefix.startsWith('/')) throw new InvalidKeyError(prefix, 'absolute prefixes are not allowed');
  if (CONTROL.test(prefix)) throw new InvalidKeyError(prefix, 'contains a NUL or control character');
  if (Buffer.byteLength(prefix) > MAX_KEY_BYTES) {
    throw new InvalidKeyError(prefix, `longer than ${MAX_KEY_BYTES} bytes`);
  }
  const segments = prefix.split('/');
  // Only the complete segments name directories; the last one is matched as a name prefix.
  for (const segment of segments.slice(0, -1)) {
    const problem = segmentProblem(segment);
    if (problem) throw new InvalidKeyError(prefix, problem);
  }
}

/** Throw a RangeError unless `range` is a sane byte range (non-negative safe integers). */
export function validateRange(range: { offset: number; length: number } | undefined): void {
  if (range === undefined) return;
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`invalid byte range offset=${offset} length=${length}`);
  }
}
