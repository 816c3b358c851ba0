import { Readable } from 'node:stream';
import { LifeboatError, isErrnoException } from '../errors.js';
import { StorageIoError } from './errors.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from './types.js';

export interface RetryEvent {
  op: 'put' | 'get' | 'stat' | 'list' | 'delete';
  key: string;
  /** The attempt that just failed, 1-based. */
  attempt: number;
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  /** Total tries per operation, including the first. Default 5. */
  attempts?: number;
  /** Backoff base: the cap before jitter is baseDelayMs · 2^(attempt-1). Default 200 ms. */
  baseDelayMs?: number;
  /** Upper bound of one wait. Default 20 s. */
  maxDelayMs?: number;
  /** Injectable for tests; default waits with setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable for tests; uniform in [0, 1). Default Math.random. */
  random?: () => number;
  /** Which failures are worth another try. Default {@link isRetryableStorageError}. */
  isRetryable?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log "retrying in 1.2 s". */
  onRetry?: (event: RetryEvent) => void;
}

/** Network errno codes that mean "try again" rather than "this will never work". */
const RETRYABLE_ERRNO = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'EPIPE',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** S3-style error names for throttling and transient server trouble. */
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'InternalError',
  'ServiceUnavailable',
  'TooManyRequestsException',
]);

/**
 * Whether a storage failure is transient: StorageIoError says so itself
 * (`retryable`); other LifeboatErrors (not found, conflict, access denied,
 * invalid key) never are; raw errors count when they carry a network errno
 * code, an HTTP status of 5xx or 429, or an S3 throttling name such as
 * SlowDown. The `cause` chain is followed for raw errors.
 */
export function isRetryableStorageError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof StorageIoError) return e.retryable;
    if (e instanceof LifeboatError) return false;
    if (isErrnoException(e) && RETRYABLE_ERRNO.has(e.code ?? '')) return true;
    if (RETRYABLE_NAMES.has(e.name)) return true;
    const shaped = e as {
      $retryable?: unknown;
      $metadata?: { httpStatusCode?: unknown };
      statusCode?: unknown;
    };
    if (shaped.$retryable) return true;
    const status = shaped.$metadata?.httpStatusCode ?? shaped.statusCode;
    if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  }
  return false;
}

/**
 * Wraps any Storage and retries transient failures with exponential backoff
 * and full jitter (wait uniform in [0, min(max, base·2^n))), at most
 * `attempts` tries per operation; the last error is rethrown unchanged.
 *
 * What is retried:
 * - put() only when the body is a Uint8Array: a stream body may be partly
 *   consumed by a failed attempt, so it gets exactly one try. Use
 *   {@link RetryingStorage.putFrom} with a body factory to retry streams.
 * - get(): opening is retried; if the returned stream fails mid-way with a
 *   retryable error, it resumes with a range request from the byte where it
 *   stopped, so the caller sees one seamless stream.
 * - stat() and delete() (idempotent).
 * - list(): restarted after a mid-way failure, skipping keys already yielded
 *   (this remembers the yielded keys, O(number of keys)).
 *
 * put() with ifNoneMatch is retried too; if an earlier attempt did reach the
 * storage before failing, the retry reports StorageConflictError for what is
 * in fact our own object. Content-addressed keys make that harmless; callers
 * with other keys should treat a conflict after retries with care.
 */
export class RetryingStorage implements Storage {
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly retryable: (err: unknown) => boolean;
  private readonly onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(
    readonly inner: Storage,
    opts: RetryOptions = {},
  ) {
    this.attempts = Math.max(1, Math.floor(opts.attempts ?? 5));
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 20_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = opts.random ?? Math.random;
    this.retryable = opts.isRetryable ?? isRetryableStorageError;
    this.onRetry = opts.onRetry;
  }

  get url(): string {
    return this.inner.url;
  }

  get capabilities(): StorageCapabilities {
    return this.inner.capabilities;
  }

  async put(key: string, body: Uint8Array | Readable, opts?: PutOptions): Promise<void> {
    if (!(body instanceof Uint8Array)) return this.inner.put(key, body, opts);
    return this.retry('put', key, () => this.inner.put(key, body, opts));
  }

  /** put() that retries stream bodies too: `makeBody` is called once per attempt for a fresh body. */
  async putFrom(key: string, makeBody: () => Uint8Array | Readable, opts?: PutOptions): Promise<void> {
    return this.retry('put', key, () => this.inner.put(key, makeBody(), opts));
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    const first = await this.retry('get', key, () => this.inner.get(key, range));
    return Readable.from(this.resumingRead(key, range, first), { objectMode: false });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    return this.retry('stat', key, () => this.inner.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const info of this.inner.list(prefix)) {
          if (seen.has(info.key)) continue;
          seen.add(info.key);
          yield info;
        }
        return;
      } catch (err) {
        if (attempt >= this.attempts || !this.retryable(err)) throw err;
        await this.wait('list', prefix, attempt, err);
      }
    }
  }

  async delete(key: string): Promise<void> {
    return this.retry('delete', key, () => this.inner.delete(key));
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  /** The wait before retry number `attempt` (1-based): full jitter under an exponential cap. */
  delayFor(attempt: number): number {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(this.random() * cap);
  }

  private async retry<T>(op: RetryEvent['op'], key: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (attempt >= this.attempts || !this.retryable(err)) throw err;
        await this.wait(op, key, attempt, err);
      }
    }
  }

  private async wait(op: RetryEvent['op'], key: string, attempt: number, error: unknown): Promise<void> {
    const delayMs = this.delayFor(attempt);
    this.onRetry?.({ op, key, attempt, delayMs, error });
    await this.sleep(delayMs);
  }

  /** Yield the object's bytes; after a retryable mid-stream failure, continue with a range get. */
  private async *resumingRead(
    key: string,
    range: { offset: number; length: number } | undefined,
    first: Readable,
  ): AsyncGenerator<Buffer> {
    const start = range?.offset ?? 0;
    let delivered = 0;
    let failures = 0;
    let stream = first;
    for (;;) {
      try {
        for await (const chunk of stream) {
          const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          delivered += bytes.length;
          failures = 0; // progress was made: the budget is per stall, not per object
          yield bytes;
        }
        return;
      } catch (err) {
        failures++;
        if (failures >= this.attempts || !this.retryable(err)) throw err;
        await this.wait('get', key, failures, err);
        const remaining = range ? range.length - delivered : Number.MAX_SAFE_INTEGER - start - delivered;
        if (remaining <= 0) return;
        const resume = { offset: start + delivered, length: remaining };
        stream = await this.retry('get', key, () => this.inner.get(key, resume));
      }
    }
  }
}
