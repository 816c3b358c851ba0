import { Readable } from 'node:stream';
import { StorageConflictError, StorageNotFoundError } from './errors.js';
import { validateKey, validatePrefix, validateRange } from './keys.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from './types.js';

/** Collect a body (bytes or stream) into one buffer. */
export async function readAll(body: Uint8Array | Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body);
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

/** An in-process object store for tests and the `memory://` scheme. */
export class MemoryStorage implements Storage {
  readonly capabilities: StorageCapabilities = {
    objectLock: false,
    conditionalCreate: true,
    maxConnections: 8,
  };
  private readonly objects = new Map<string, { data: Buffer; mtimeMs: number }>();

  constructor(readonly url = 'memory://') {}

  async put(key: string, body: Uint8Array | Readable, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    const data = await readAll(body);
    if (opts.ifNoneMatch && this.objects.has(key)) throw new StorageConflictError(this.url, key);
    this.objects.set(key, { data, mtimeMs: 0 });
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    validateKey(key);
    validateRange(range);
    const entry = this.objects.get(key);
    if (!entry) throw new StorageNotFoundError(this.url, key);
    const data = range ? entry.data.subarray(range.offset, range.offset + range.length) : entry.data;
    return Readable.from([data]);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    validateKey(key);
    const entry = this.objects.get(key);
    return entry ? { key, size: entry.data.length, mtimeMs: entry.mtimeMs } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    for (const [key, entry] of [...this.objects.entries()]) {
      if (key.startsWith(prefix)) yield { key, size: entry.data.length, mtimeMs: entry.mtimeMs };
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.objects.delete(key);
  }

  /** Direct access for fault tests (flip a byte, truncate). */
  raw(key: string): Buffer | undefined {
    return this.objects.get(key)?.data;
  }
}
