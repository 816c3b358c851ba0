import type { Readable } from 'node:stream';
import { StorageReadOnlyError } from './errors.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from './types.js';

/**
 * Wraps any Storage so that reads pass through and put()/delete() fail with
 * StorageReadOnlyError before reaching the backend: for commands that must
 * never change a repository (check, restore, report) and for mounting
 * someone else's repository safely.
 */
export class ReadOnlyStorage implements Storage {
  constructor(readonly inner: Storage) {}

  get url(): string {
    return this.inner.url;
  }

  get capabilities(): StorageCapabilities {
    return this.inner.capabilities;
  }

  async put(key: string, _body: Uint8Array | Readable, _opts?: PutOptions): Promise<void> {
    throw new StorageReadOnlyError(this.url, `write ${key}`);
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    return this.inner.get(key, range);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    throw new StorageReadOnlyError(this.url, `delete ${key}`);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
