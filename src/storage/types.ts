import type { Readable } from 'node:stream';

/**
 * Object-store shaped storage. Local disk, S3 and memory all implement it, so
 * the repository never depends on rename, append or directory semantics.
 * Keys are `/`-separated relative names such as `data/ab/abcdef…`.
 */
export interface StorageCapabilities {
  /** Objects can be locked against deletion until a date (S3 Object Lock). */
  objectLock: boolean;
  /** put() with ifNoneMatch is enforced atomically by the backend. */
  conditionalCreate: boolean;
  /** How many requests may usefully run in parallel. */
  maxConnections: number;
  /**
   * How many pack uploads may usefully run at once (default: the repository's own limit, 4). Each one holds a
   * whole pack in memory; a local disk writes no faster with more than 2.
   */
  packUploads?: number;
}

export interface PutOptions {
  /** Fail with StorageConflictError if the key already exists (best effort unless conditionalCreate). */
  ifNoneMatch?: boolean;
  /** Object Lock retention (only where capabilities.objectLock). */
  retainUntil?: Date;
  /** Size in bytes when body is a stream (lets backends choose single vs multipart). */
  size?: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Last modification, ms since epoch, when the backend knows it. */
  mtimeMs?: number;
}

export interface Storage {
  /** Human-readable location with credentials redacted, for messages. */
  readonly url: string;
  readonly capabilities: StorageCapabilities;
  /** Write an object. Objects are write-once by convention: keys are random or content-derived. */
  put(key: string, body: Uint8Array | Readable, opts?: PutOptions): Promise<void>;
  /** Read an object (or a byte range of it). Throws StorageNotFoundError if absent. */
  get(key: string, range?: { offset: number; length: number }): Promise<Readable>;
  /** Metadata of an object, or undefined if absent. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Remove an object; removing an absent object is not an error. */
  delete(key: string): Promise<void>;
  /** Release connections and file handles. */
  close?(): Promise<void>;
}
