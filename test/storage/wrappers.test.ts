import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessDeniedError } from '../../src/errors.js';
import {
  InvalidKeyError,
  StorageIoError,
  StorageNotFoundError,
  StorageReadOnlyError,
} from '../../src/storage/errors.js';
import { FaultStorage, StorageCrashedError } from '../../src/storage/fault.js';
import { LocalStorage } from '../../src/storage/local.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { ReadOnlyStorage } from '../../src/storage/readonly.js';
import { RetryingStorage, type RetryEvent } from '../../src/storage/retry.js';
import type { ObjectInfo } from '../../src/storage/types.js';
import { describeReadContract, describeStorageContract, listKeys, readStream } from './contract.js';

const tempDirs: string[] = [];
async function localStorage(): Promise<LocalStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-wrap-'));
  tempDirs.push(dir);
  return LocalStorage.create(join(dir, 'repo'));
}
async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
}

const noSleep = async (): Promise<void> => {};

// With no fault configured, every wrapper is a conforming Storage.
describeStorageContract(
  'retry(memory)',
  async () => new RetryingStorage(new MemoryStorage(), { sleep: noSleep }),
);
describeStorageContract('fault(memory)', async () => new FaultStorage(new MemoryStorage()));
describeStorageContract(
  'retry(fault(local))',
  async () => new RetryingStorage(new FaultStorage(await localStorage()), { sleep: noSleep }),
  removeTempDirs,
);
describeReadContract('readonly(memory)', async () => {
  const writer = new MemoryStorage();
  return { reader: new ReadOnlyStorage(writer), writer };
});
describeReadContract(
  'readonly(local)',
  async () => {
    const writer = await localStorage();
    return { reader: new ReadOnlyStorage(writer), writer };
  },
  removeTempDirs,
);

function econnreset(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

/** A storage whose get() streams break after `breakAfter` bytes for the first `breaks` calls. */
class BreakingReads extends MemoryStorage {
  readonly gets: Array<{ offset: number; length: number } | undefined> = [];
  constructor(
    private breaks: number,
    private readonly breakAfter: number,
  ) {
    super('memory://breaking');
  }
  override async get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    this.gets.push(range);
    const whole = await readStream(await super.get(key, range));
    if (this.breaks <= 0) return Readable.from([whole]);
    this.breaks--;
    const cut = this.breakAfter;
    async function* broken(): AsyncGenerator<Buffer> {
      yield whole.subarray(0, cut);
      throw econnreset();
    }
    return Readable.from(broken(), { objectMode: false });
  }
}

/** A storage whose list() fails after `failAfter` entries on its first call. */
class BreakingList extends MemoryStorage {
  listCalls = 0;
  constructor(private readonly failAfter: number) {
    super('memory://breaking-list');
  }
  override async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.listCalls++;
    let n = 0;
    for await (const info of super.list(prefix)) {
      if (this.listCalls === 1 && n++ === this.failAfter) throw econnreset();
      yield info;
    }
  }
}

describe('RetryingStorage', () => {
  let inner: FaultStorage;
  let sleeps: number[];
  let events: RetryEvent[];
  let storage: RetryingStorage;

  beforeEach(() => {
    inner = new FaultStorage(new MemoryStorage());
    sleeps = [];
    events = [];
    storage = new RetryingStorage(inner, {
      attempts: 4,
      baseDelayMs: 100,
      maxDelayMs: 1000,
      random: () => 0.5,
      sleep: async (ms) => void sleeps.push(ms),
      onRetry: (e) => events.push(e),
    });
  });

  it('retries a transient put failure with growing jittered waits', async () => {
    const transient = () => new StorageIoError('503 Slow Down', true);
    inner.failNth('put', 1, transient).failNth('put', 1, transient);
    await storage.put('data/x', Buffer.from('payload'));
    expect(inner.calls.put).toBe(3);
    expect(sleeps).toEqual([50, 100]);
    expect(events.map((e) => [e.op, e.key, e.attempt])).toEqual([
      ['put', 'data/x', 1],
      ['put', 'data/x', 2],
    ]);
    expect((await readStream(await storage.get('data/x'))).toString()).toBe('payload');
  });

  it('gives up after the configured attempts and rethrows the last error', async () => {
    inner.failKeys(/^data\//, ['stat'], (_op, key) =>
      Object.assign(new Error(`reset ${key}`), { code: 'ETIMEDOUT' }),
    );
    await expect(storage.stat('data/x')).rejects.toThrow('reset data/x');
    expect(inner.calls.stat).toBe(4);
    expect(sleeps).toEqual([50, 100, 200]);
  });

  it('does not retry permanent failures', async () => {
    await expect(storage.get('missing')).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(storage.get('../x')).rejects.toBeInstanceOf(InvalidKeyError);
    inner.failKeys(/^denied/, ['delete'], new AccessDeniedError('no'));
    await expect(storage.delete('denied')).rejects.toBeInstanceOf(AccessDeniedError);
    inner.failNth('put', 1, new StorageIoError('disk full', false));
    await expect(storage.put('k', Buffer.from('x'))).rejects.toThrow('disk full');
    expect(inner.calls).toMatchObject({ get: 2, delete: 1, put: 1 });
    expect(sleeps).toEqual([]);
  });

  it('never retries a put whose body is a stream', async () => {
    inner.failNth('put', 1, () => new StorageIoError('reset', true));
    await expect(storage.put('s', Readable.from([Buffer.from('once')]))).rejects.toThrow('reset');
    expect(inner.calls.put).toBe(1);
    expect(await storage.stat('s')).toBeUndefined();
  });

  it('putFrom() retries streams with a fresh body per attempt', async () => {
    inner.failNth('put', 1, () => new StorageIoError('reset', true));
    let made = 0;
    await storage.putFrom('s', () => {
      made++;
      return Readable.from([Buffer.from('fresh')]);
    });
    expect(made).toBe(2);
    expect((await readStream(await storage.get('s'))).toString()).toBe('fresh');
  });

  it('resumes a read that breaks mid-stream with a range request', async () => {
    const breaking = new BreakingReads(2, 1000);
    const data = randomBytes(5000);
    await breaking.put('pack', data);
    const retrying = new RetryingStorage(breaking, { sleep: noSleep });
    expect((await readStream(await retrying.get('pack'))).equals(data)).toBe(true);
    expect(breaking.gets).toEqual([
      undefined,
      { offset: 1000, length: Number.MAX_SAFE_INTEGER - 1000 },
      { offset: 2000, length: Number.MAX_SAFE_INTEGER - 2000 },
    ]);
  });

  it('resumes a ranged read within its range', async () => {
    const breaking = new BreakingReads(1, 100);
    const data = randomBytes(5000);
    await breaking.put('pack', data);
    const retrying = new RetryingStorage(breaking, { sleep: noSleep });
    const got = await readStream(await retrying.get('pack', { offset: 1000, length: 700 }));
    expect(got.equals(data.subarray(1000, 1700))).toBe(true);
    expect(breaking.gets[1]).toEqual({ offset: 1100, length: 600 });
  });

  it('fails a read that keeps breaking without progress', async () => {
    const breaking = new BreakingReads(100, 0);
    await breaking.put('pack', randomBytes(10));
    const retrying = new RetryingStorage(breaking, { sleep: noSleep, attempts: 3 });
    await expect(readStream(await retrying.get('pack'))).rejects.toThrow('socket hang up');
    expect(breaking.gets).toHaveLength(3);
  });

  it('restarts a broken listing without repeating keys', async () => {
    const breaking = new BreakingList(3);
    const keys = Array.from({ length: 10 }, (_, i) => `k/${i}`);
    for (const key of keys) await breaking.put(key, Buffer.from(key));
    const retrying = new RetryingStorage(breaking, { sleep: noSleep });
    const listed: string[] = [];
    for await (const info of retrying.list('k/')) listed.push(info.key);
    expect(listed.sort()).toEqual(keys.sort());
    expect(breaking.listCalls).toBe(2);
  });

  it('computes full-jitter delays under an exponential cap', () => {
    const at = (random: number) =>
      new RetryingStorage(new MemoryStorage(), { baseDelayMs: 100, maxDelayMs: 1000, random: () => random });
    expect([1, 2, 3, 4, 5, 6].map((n) => at(0.999).delayFor(n))).toEqual([99, 199, 399, 799, 999, 999]);
    expect([1, 2, 3].map((n) => at(0).delayFor(n))).toEqual([0, 0, 0]);
  });
});

describe('ReadOnlyStorage', () => {
  it('rejects put and delete before they reach the backend', async () => {
    const inner = new FaultStorage(new MemoryStorage('memory://ro'));
    await inner.put('config', Buffer.from('c'));
    const ro = new ReadOnlyStorage(inner);
    const put = await ro.put('data/x', Buffer.from('x')).catch((e: unknown) => e);
    const del = await ro.delete('config').catch((e: unknown) => e);
    for (const err of [put, del]) {
      expect(err).toBeInstanceOf(StorageReadOnlyError);
      expect((err as StorageReadOnlyError).exitCode).toBe(12);
      expect((err as Error).message).toContain('memory://ro');
    }
    expect(inner.calls).toMatchObject({ put: 1, delete: 0 });
    expect(await listKeys(ro, '')).toEqual(['config']);
    expect(ro.capabilities).toBe(inner.capabilities);
  });
});

describe('FaultStorage', () => {
  let mem: MemoryStorage;
  let faults: FaultStorage;
  beforeEach(async () => {
    mem = new MemoryStorage();
    faults = new FaultStorage(mem);
    await mem.put('data/a', Buffer.from('0123456789'));
    await mem.put('index/i', Buffer.from('index'));
  });

  it('fails exactly the Nth call of an operation, once', async () => {
    faults.failNth('get', 2);
    await faults.get('data/a');
    await expect(faults.get('data/a')).rejects.toBeInstanceOf(StorageIoError);
    await faults.get('data/a');
    faults.failNth('delete', 1, new Error('custom'));
    await expect(faults.delete('data/a')).rejects.toThrow('custom');
    expect(await mem.stat('data/a')).toBeDefined();
    faults.failNth('list', 1);
    await expect(listKeys(faults, '')).rejects.toThrow(/injected fault/);
    expect(faults.calls).toMatchObject({ get: 3, delete: 1, list: 1 });
  });

  it('fails every operation on keys matching a pattern until cleared', async () => {
    faults.failKeys(/^data\//, ['put', 'get']);
    await expect(faults.get('data/a')).rejects.toThrow(/injected fault \(key pattern\): get data\/a/);
    await expect(faults.put('data/b', Buffer.from('x'))).rejects.toBeInstanceOf(StorageIoError);
    expect(await faults.stat('data/a')).toBeDefined();
    await faults.get('index/i');
    expect(await mem.stat('data/b')).toBeUndefined();
    faults.clear();
    await faults.put('data/b', Buffer.from('x'));
  });

  it('flips a byte in what get() returns, also inside ranges', async () => {
    faults.flipByte(/^data\//, 3);
    const whole = await readStream(await faults.get('data/a'));
    expect(whole.length).toBe(10);
    expect([...whole].map((b, i) => (b === '0123456789'.charCodeAt(i) ? '.' : 'x')).join('')).toBe(
      '...x......',
    );
    expect(whole[3]).toBe('3'.charCodeAt(0) ^ 0xff);
    expect((await readStream(await faults.get('data/a', { offset: 2, length: 3 })))[1]).toBe(0x33 ^ 0xff);
    expect((await readStream(await faults.get('data/a', { offset: 5, length: 3 }))).toString()).toBe('567');
    expect(mem.raw('data/a')?.toString()).toBe('0123456789'); // the stored object is untouched
    expect((await readStream(await faults.get('index/i'))).toString()).toBe('index');
  });

  it('truncates reads without an error', async () => {
    faults.truncateReads(/^data\/a$/, 4);
    expect((await readStream(await faults.get('data/a'))).toString()).toBe('0123');
    expect((await readStream(await faults.get('data/a', { offset: 2, length: 5 }))).toString()).toBe('23');
    expect((await readStream(await faults.get('data/a', { offset: 6, length: 2 }))).toString()).toBe('');
  });

  it('adds latency through the injected sleep', async () => {
    const waits: number[] = [];
    const slow = new FaultStorage(mem, { sleep: async (ms) => void waits.push(ms) }).addLatency(25, [
      'get',
      'stat',
    ]);
    await slow.get('data/a');
    await slow.stat('data/a');
    await slow.put('data/c', Buffer.from('c'));
    expect(waits).toEqual([25, 25]);
  });

  it('crashes after N puts: every later operation fails until cleared', async () => {
    faults.crashAfterPuts(2);
    await faults.put('p/1', Buffer.from('1'));
    await faults.put('p/2', Buffer.from('2'));
    expect(faults.crashed).toBe(false);
    await expect(faults.put('p/3', Buffer.from('3'))).rejects.toBeInstanceOf(StorageCrashedError);
    expect(faults.crashed).toBe(true);
    await expect(faults.get('p/1')).rejects.toBeInstanceOf(StorageCrashedError);
    await expect(faults.stat('p/1')).rejects.toBeInstanceOf(StorageCrashedError);
    await expect(faults.delete('p/1')).rejects.toBeInstanceOf(StorageCrashedError);
    await expect(listKeys(faults, 'p/')).rejects.toBeInstanceOf(StorageCrashedError);
    expect(await listKeys(mem, 'p/')).toEqual(['p/1', 'p/2']);
    faults.clear();
    expect(await listKeys(faults, 'p/')).toEqual(['p/1', 'p/2']);
  });

  it('lets a retrying wrapper ride over injected transient faults on local disk', async () => {
    const local = new FaultStorage(await localStorage());
    const retrying = new RetryingStorage(local, { sleep: noSleep });
    local.failNth('put', 1, () => new StorageIoError('transient', true));
    local.failNth('get', 1, () => new StorageIoError('transient', true));
    await retrying.put('data/00/obj', Buffer.from('durable'));
    expect((await readStream(await retrying.get('data/00/obj'))).toString()).toBe('durable');
    expect(local.calls).toMatchObject({ put: 2, get: 2 });
  });
  afterEach(removeTempDirs);
});
