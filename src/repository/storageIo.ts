/**
 * Reading whole objects (or byte ranges) from a Storage into memory.
 */
import type { Storage } from '../storage/types.js';

/** Read an object or a byte range of it into one buffer. */
export async function readObject(
  storage: Storage,
  key: string,
  range?: { offset: number; length: number },
): Promise<Buffer> {
  const stream = await storage.get(key, range);
  const parts: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Uint8Array | string>) {
    parts.push(
      typeof part === 'string'
        ? Buffer.from(part)
        : Buffer.from(part.buffer, part.byteOffset, part.byteLength),
    );
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Every key under `prefix` (collected; listings are small compared to the data). */
export async function listKeys(
  storage: Storage,
  prefix: string,
): Promise<{ key: string; size: number; mtimeMs?: number }[]> {
  const out: { key: string; size: number; mtimeMs?: number }[] = [];
  for await (const info of storage.list(prefix)) out.push(info);
  return out;
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}
