import { Readable } from 'node:stream';
import { StorageIoError } from './errors.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from './types.js';

export type StorageOp = 'put' | 'get' | 'stat' | 'list' | 'delete';

/** The error to inject: a fixed error, or a factory called per failure. */
export type FaultError = Error | ((op: StorageOp, key: string) => Error);

/** Thrown for every operation once a FaultStorage has "crashed". */
export class StorageCrashedError extends StorageIoError {
  constructor(op: StorageOp, key: string) {
    super(`injected crash: storage is gone (${op} ${key})`, false);
  }
}

interface NthRule {
  op: StorageOp;
  /** Calls of `op` still to pass before the failing one. */
  remaining: number;
  error: FaultError | undefined;
}

interface KeyRule {
  pattern: RegExp;
  ops: readonly StorageOp[];
  error: FaultError | undefined;
}

interface ReadRule {
  pattern: RegExp;
  kind: 'flip' | 'truncate';
  /** flip: absolute object offset of the byte to flip; truncate: bytes of the object left readable. */
  at: number;
}

const ALL_OPS: readonly StorageOp[] = ['put', 'get', 'stat', 'list', 'delete'];

/**
 * A Storage wrapper for tests that injects failures into any backend:
 * fail the Nth call of an operation, fail every operation on keys matching a
 * pattern, flip a byte or truncate what get() returns, add latency, or
 * "crash" after N puts (every later operation throws StorageCrashedError).
 * Faults can be added and cleared while the storage is in use; with none
 * configured it behaves exactly like the wrapped storage. Counts of calls per
 * operation are in `calls`.
 */
export class FaultStorage implements Storage {
  readonly calls: Record<StorageOp, number> = { put: 0, get: 0, stat: 0, list: 0, delete: 0 };
  private nthRules: NthRule[] = [];
  private keyRules: KeyRule[] = [];
  private readRules: ReadRule[] = [];
  private latencyMs = 0;
  private latencyOps: readonly StorageOp[] = ALL_OPS;
  private putsBeforeCrash: number | undefined;
  private isCrashed = false;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly inner: Storage,
    opts: { sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  get url(): string {
    return this.inner.url;
  }

  get capabilities(): StorageCapabilities {
    return this.inner.capabilities;
  }

  /** True once crashAfterPuts() has triggered. */
  get crashed(): boolean {
    return this.isCrashed;
  }

  /** Fail the `n`th call (1-based, counted from now) of `op`, once. */
  failNth(op: StorageOp, n: number, error?: FaultError): this {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`failNth needs n >= 1, got ${n}`);
    this.nthRules.push({ op, remaining: n - 1, error });
    return this;
  }

  /** Fail every call of `ops` (default all) whose key (or list prefix) matches `pattern`, until cleared. */
  failKeys(pattern: RegExp, ops: readonly StorageOp[] = ALL_OPS, error?: FaultError): this {
    this.keyRules.push({ pattern, ops, error });
    return this;
  }

  /** get() of keys matching `pattern` returns the object with the byte at `offset` inverted. */
  flipByte(pattern: RegExp, offset = 0): this {
    this.readRules.push({ pattern, kind: 'flip', at: offset });
    return this;
  }

  /** get() of keys matching `pattern` ends (without error) after the first `length` bytes of the object. */
  truncateReads(pattern: RegExp, length: number): this {
    this.readRules.push({ pattern, kind: 'truncate', at: length });
    return this;
  }

  /** Wait `ms` (through the injected sleep) before each call of `ops` (default all). */
  addLatency(ms: number, ops: readonly StorageOp[] = ALL_OPS): this {
    this.latencyMs = ms;
    this.latencyOps = ops;
    return this;
  }

  /** Let `n` more puts succeed, then fail every operation as if the storage vanished. */
  crashAfterPuts(n: number): this {
    this.putsBeforeCrash = n;
    return this;
  }

  /** Remove every configured fault and revive a crashed storage (call counts stay). */
  clear(): this {
    this.nthRules = [];
    this.keyRules = [];
    this.readRules = [];
    this.latencyMs = 0;
    this.putsBeforeCrash = undefined;
    this.isCrashed = false;
    return this;
  }

  async put(key: string, body: Uint8Array | Readable, opts?: PutOptions): Promise<void> {
    await this.before('put', key);
    if (this.putsBeforeCrash !== undefined) {
      if (this.putsBeforeCrash === 0) {
        this.isCrashed = true;
        throw new StorageCrashedError('put', key);
      }
      this.putsBeforeCrash--;
    }
    await this.inner.put(key, body, opts);
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    await this.before('get', key);
    const stream = await this.inner.get(key, range);
    const rules = this.readRules.filter((r) => r.pattern.test(key));
    if (rules.length === 0) return stream;
    return Readable.from(alterRead(stream, range?.offset ?? 0, rules), { objectMode: false });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    await this.before('stat', key);
    return this.inner.stat(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    await this.before('list', prefix);
    yield* this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    await this.before('delete', key);
    await this.inner.delete(key);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  /** Count the call, wait the latency, and throw if a fault applies. */
  private async before(op: StorageOp, key: string): Promise<void> {
    this.calls[op]++;
    if (this.latencyMs > 0 && this.latencyOps.includes(op)) await this.sleep(this.latencyMs);
    if (this.isCrashed) throw new StorageCrashedError(op, key);
    for (const rule of this.nthRules) {
      if (rule.op !== op) continue;
      if (rule.remaining-- === 0) {
        this.nthRules = this.nthRules.filter((r) => r !== rule);
        throw makeError(rule.error, op, key, `call #${this.calls[op]}`);
      }
    }
    for (const rule of this.keyRules) {
      if (rule.ops.includes(op) && rule.pattern.test(key))
        throw makeError(rule.error, op, key, 'key pattern');
    }
  }
}

function makeError(error: FaultError | undefined, op: StorageOp, key: string, why: string): Error {
  if (error === undefined) return new StorageIoError(`injected fault (${why}): ${op} ${key}`, false);
  return typeof error === 'function' ? error(op, key) : error;
}

/** Apply flip/truncate rules to a stream that starts at object offset `start`. */
async function* alterRead(stream: Readable, start: number, rules: ReadRule[]): AsyncGenerator<Buffer> {
  const truncateAt = Math.min(...rules.filter((r) => r.kind === 'truncate').map((r) => r.at));
  const flips = rules.filter((r) => r.kind === 'flip').map((r) => r.at);
  let position = start;
  for await (const chunk of stream) {
    let bytes = Buffer.from(chunk as Uint8Array); // a copy: never corrupt the backend's own buffer
    if (position + bytes.length > truncateAt) bytes = bytes.subarray(0, Math.max(0, truncateAt - position));
    for (const at of flips) {
      if (at >= position && at < position + bytes.length)
        bytes.writeUInt8(bytes.readUInt8(at - position) ^ 0xff, at - position);
    }
    position += bytes.length;
    if (bytes.length > 0) yield bytes;
    if (position >= truncateAt) return; // leaving the loop destroys the source stream
  }
}
