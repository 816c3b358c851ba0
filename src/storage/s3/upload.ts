import { MAX_PART_SIZE } from './options.js';

/**
 * The size of part `partNumber` (1-based) for a base part size: parts grow
 * ×2 every 1000 parts, so an upload of unknown size never runs out of S3's
 * 10 000 parts (8 MiB base: ~8 TB) while small uploads keep small parts.
 */
export function partSizeFor(base: number): (partNumber: number) => number {
  return (partNumber) => Math.min(MAX_PART_SIZE, base * 2 ** Math.floor((partNumber - 1) / 1000));
}

/**
 * Cut a byte stream into parts of exactly `sizeFor(n)` bytes (the last one
 * shorter, never empty unless the whole stream is). Chunks are not copied when
 * they already line up with part boundaries; memory holds one part at a time.
 */
export async function* splitIntoParts(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  sizeFor: (partNumber: number) => number,
): AsyncGenerator<Buffer> {
  let partNumber = 1;
  let target = sizeFor(partNumber);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let yielded = false;
  for await (const chunk of source) {
    let bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (bytes.length > 0) {
      const take = Math.min(bytes.length, target - pendingBytes);
      pending.push(bytes.subarray(0, take));
      pendingBytes += take;
      bytes = bytes.subarray(take);
      if (pendingBytes === target) {
        yield pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
        yielded = true;
        pending = [];
        pendingBytes = 0;
        target = sizeFor(++partNumber);
      }
    }
  }
  if (pendingBytes > 0 || !yielded) yield Buffer.concat(pending, pendingBytes);
}

/**
 * Run `upload(part, n)` for every part of `parts` with at most `concurrency`
 * in flight, numbering parts from 1, and return the results in part order.
 * Reading stops at the first failure; the failure (of an upload or of the
 * source) is thrown once every started upload has settled.
 */
export async function uploadParts<T>(
  parts: AsyncIterable<Buffer>,
  concurrency: number,
  upload: (part: Buffer, partNumber: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let partNumber = 0;
  try {
    for await (const part of parts) {
      if (failure) break;
      const n = ++partNumber;
      const task: Promise<void> = upload(part, n).then(
        (result) => {
          results[n - 1] = result;
        },
        (error: unknown) => {
          failure ??= { error };
        },
      );
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
  } catch (error) {
    failure ??= { error };
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;
  return results;
}
