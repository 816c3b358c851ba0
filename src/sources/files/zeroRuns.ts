/**
 * All-zero detection for sparse files: a chunk of zeros is recorded as
 * `{ zero: n }` and never stored. Comparing against a shared zero buffer lets
 * memcmp do the work instead of a JavaScript loop.
 */
import type { ContentRef } from '../../repository/tree.js';

const SLICE = 1024 * 1024;
const zeros = Buffer.alloc(SLICE);

/** True when every part of a chunk (byte views, lengths of zero runs) is zeros. */
export function isAllZeroParts(parts: readonly (Uint8Array | number)[]): boolean {
  return parts.every((part) => typeof part === 'number' || isAllZero(part));
}

/** True when every byte of `data` is zero. */
export function isAllZero(data: Uint8Array): boolean {
  const len = data.length;
  if (len === 0) return true;
  // Most data chunks fail on the first or last byte.
  if (data[0] !== 0 || data[len - 1] !== 0) return false;
  const buf = Buffer.from(data.buffer, data.byteOffset, len);
  for (let off = 0; off < len; off += SLICE) {
    const end = Math.min(len, off + SLICE);
    if (buf.compare(zeros, 0, end - off, off, end) !== 0) return false;
  }
  return true;
}

/** True when `data[from, to)` is all zero (no view is created: called per 64 KiB block of large files). */
export function isZeroRange(data: Buffer, from: number, to: number): boolean {
  if (to <= from) return true;
  if (data[from] !== 0 || data[to - 1] !== 0) return false;
  for (let off = from; off < to; off += SLICE) {
    const end = Math.min(to, off + SLICE);
    if (data.compare(zeros, 0, end - off, off, end) !== 0) return false;
  }
  return true;
}

/** A shared zero buffer of min(length, 1 MiB) bytes, for hashing holes; never write to it. */
export function zeroSlice(length: number): Buffer {
  return zeros.subarray(0, Math.min(length, SLICE));
}

/** Length of the shared zeros (the longest view sharedZeros gives). */
export const SHARED_ZEROS = 8 * 1024 * 1024;
/** Zeros in shared memory, allocated on first use (pages never written cost no memory). */
let sharedZeroBuffer: Buffer | undefined;

/**
 * A view of min(length, 8 MiB) zeros in a SharedArrayBuffer, for hashing holes
 * on a worker without copying (ContentHasher reads shared memory in place); never write to it.
 */
export function sharedZeros(length: number): Buffer {
  sharedZeroBuffer ??= Buffer.from(new SharedArrayBuffer(SHARED_ZEROS));
  return sharedZeroBuffer.subarray(0, Math.min(length, SHARED_ZEROS));
}

/** Append a zero run, merging it with a preceding one. */
export function pushZero(refs: ContentRef[], length: number): void {
  const last = refs[refs.length - 1];
  if (last !== undefined && typeof last !== 'string') refs[refs.length - 1] = { zero: last.zero + length };
  else refs.push({ zero: length });
}
