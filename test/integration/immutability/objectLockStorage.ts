/**
 * An EMULATION of S3 Object Lock for tests — not a real S3 server.
 *
 * Neither storage lifeboat can test against locally has Object Lock: local
 * disk has none, and OpenStack Swift's s3api (the S3 server of the test
 * suite, test/helpers/s3server.ts) implements no retention at all. So the
 * positive lock path (locking, extending, prune planning around locked
 * objects, check verifying retention) is tested against this wrapper. It
 * models the parts of Object Lock lifeboat relies on:
 *
 * - capabilities.objectLock is true;
 * - put(…, { retainUntil }) stores the object locked;
 * - getRetention(key) returns { mode, retainUntil } or undefined, and throws
 *   StorageNotFoundError for an absent object (S3 answers 404);
 * - extendRetention(key, until) sets or extends, never shortens; a
 *   COMPLIANCE retention cannot be shortened by anyone;
 * - delete(key) of an object whose retention lies in the future is refused
 *   (S3 refuses to delete a locked object version; on a versioned bucket a
 *   plain DELETE would add a delete marker instead — lifeboat must not try
 *   either way), and so is overwriting it.
 *
 * Time comes from the test's clock, so retention can be made to run out.
 * Calls are counted so tests can see what lifeboat asked for.
 */
import type { Readable } from 'node:stream';
import { AccessDeniedError } from '../../../src/errors.js';
import { StorageNotFoundError } from '../../../src/storage/errors.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from '../../../src/storage/types.js';

export interface EmulatedRetention {
  mode: 'COMPLIANCE' | 'GOVERNANCE';
  retainUntil: Date;
}

export class ObjectLockStorage implements Storage {
  readonly retention = new Map<string, EmulatedRetention>();
  readonly calls = { getRetention: 0, extendRetention: 0, refusedDeletes: 0 };
  /** Keys whose deletion was refused, in order. */
  readonly refused: string[] = [];

  constructor(
    readonly inner: Storage,
    private readonly now: () => number,
    private readonly mode: 'COMPLIANCE' | 'GOVERNANCE' = 'COMPLIANCE',
  ) {}

  get url(): string {
    return this.inner.url;
  }

  get capabilities(): StorageCapabilities {
    return { ...this.inner.capabilities, objectLock: true };
  }

  private lockedUntil(key: string): number | undefined {
    const r = this.retention.get(key);
    return r && r.retainUntil.getTime() > this.now() ? r.retainUntil.getTime() : undefined;
  }

  async put(key: string, body: Uint8Array | Readable, opts?: PutOptions): Promise<void> {
    const until = this.lockedUntil(key);
    if (until !== undefined) throw this.denied('overwrite', key, until);
    await this.inner.put(key, body, opts);
    if (opts?.retainUntil) this.retention.set(key, { mode: this.mode, retainUntil: opts.retainUntil });
  }

  get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    return this.inner.get(key, range);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    const until = this.lockedUntil(key);
    if (until !== undefined) {
      this.calls.refusedDeletes++;
      this.refused.push(key);
      throw this.denied('delete', key, until);
    }
    await this.inner.delete(key);
    this.retention.delete(key);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  async getRetention(key: string): Promise<EmulatedRetention | undefined> {
    this.calls.getRetention++;
    if ((await this.inner.stat(key)) === undefined) throw new StorageNotFoundError(this.url, key);
    const r = this.retention.get(key);
    return r ? { mode: r.mode, retainUntil: new Date(r.retainUntil.getTime()) } : undefined;
  }

  /** `known` (the caller's reading) is ignored: the emulator's own record is the truth, and it never shortens. */
  async extendRetention(key: string, until: Date): Promise<void> {
    this.calls.extendRetention++;
    if ((await this.inner.stat(key)) === undefined) throw new StorageNotFoundError(this.url, key);
    const current = this.retention.get(key);
    if (current && current.retainUntil.getTime() >= until.getTime()) return;
    this.retention.set(key, { mode: current?.mode ?? this.mode, retainUntil: new Date(until.getTime()) });
  }

  /** Test-only: what an operator with GOVERNANCE bypass (or a bug) could do — drop a retention. */
  dropRetention(key: string): void {
    this.retention.delete(key);
  }

  private denied(op: string, key: string, until: number): AccessDeniedError {
    return new AccessDeniedError(
      `access denied: cannot ${op} ${key} in ${this.url}: it is locked until ${new Date(until).toISOString()} (Object Lock)`,
    );
  }
}
