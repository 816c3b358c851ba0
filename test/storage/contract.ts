/**
 * The one conformance suite every Storage (backend or wrapper) must pass.
 * It relies only on what S3 also offers: no directories, no rename, no
 * ordering of list(), no mtime, no zero-length ranges, and never both `a` and
 * `a/b` as keys.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidKeyError, StorageConflictError, StorageNotFoundError } from '../../src/storage/errors.js';
import type { ObjectInfo, Storage } from '../../src/storage/types.js';

/** Makes a fresh, empty storage for one test. */
export type MakeStorage = () => Promise<Storage>;
/** Releases what MakeStorage created. */
export type CleanupStorage = (storage: Storage) => Promise<void>;

/** A read-only view (`reader`) and a way to put objects behind it (`writer`), both on one store. */
export interface ReadFixture {
  reader: Storage;
  writer: Storage;
}

export const HOSTILE_KEYS = [
  '',
  '/etc/passwd',
  '../escape',
  'a/../../escape',
  'a/..',
  '..',
  '.',
  'a/./b',
  'a//b',
  'a/',
  'nul\0byte',
  'new\nline',
  `a/${'x'.repeat(300)}`,
  'x'.repeat(1100),
  'data/.abc.tmp-0123456789ab',
];

/** Read the whole stream into one Buffer. */
export async function readStream(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

/** Collect list(prefix) as sorted keys. */
export async function listKeys(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of storage.list(prefix)) keys.push(info.key);
  return keys.sort();
}

async function listInfos(storage: Storage, prefix: string): Promise<ObjectInfo[]> {
  const infos: ObjectInfo[] = [];
  for await (const info of storage.list(prefix)) infos.push(info);
  return infos.sort((a, b) => a.key.localeCompare(b.key));
}

/** Run `tasks` with at most `limit` in flight. */
export async function inParallel<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A stream of `total` random bytes in `chunk`-sized pieces, produced lazily; `digest()` is valid after the end. */
export function randomStream(total: number, chunk = 64 * 1024): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let digest: string | undefined;
  async function* produce(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < total; sent += chunk) {
      const piece = randomBytes(Math.min(chunk, total - sent));
      hash.update(piece);
      yield piece;
    }
    digest = hash.digest('hex');
  }
  return {
    stream: Readable.from(produce(), { objectMode: false }),
    digest: () => {
      if (digest === undefined) throw new Error('stream not finished');
      return digest;
    },
  };
}

/** A stream that emits `before` bytes and then fails. */
export function failingStream(before: number): Readable {
  async function* produce(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(before, 7);
    await new Promise((resolve) => setImmediate(resolve));
    throw new Error('source failed halfway');
  }
  return Readable.from(produce(), { objectMode: false });
}

/** The read half of the contract: get, ranges, stat, list, hostile keys on reads. */
export function describeReadContract(
  name: string,
  makeFixture: () => Promise<ReadFixture>,
  cleanup: (fixture: ReadFixture) => Promise<void> = async () => {},
): void {
  describe(`${name}: storage read contract`, () => {
    let fx: ReadFixture;
    beforeEach(async () => {
      fx = await makeFixture();
    });
    afterEach(async () => {
      await cleanup(fx);
    });

    it('reads back what was written', async () => {
      const data = randomBytes(10_000);
      await fx.writer.put('data/ab/abcdef', data);
      expect((await readStream(await fx.reader.get('data/ab/abcdef'))).equals(data)).toBe(true);
    });

    it('reads byte ranges, clipping a range that reaches past the end', async () => {
      const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
      await fx.writer.put('packs/p1', data);
      const range = async (offset: number, length: number): Promise<Buffer> =>
        readStream(await fx.reader.get('packs/p1', { offset, length }));
      expect((await range(0, 10)).equals(data.subarray(0, 10))).toBe(true);
      expect((await range(500, 123)).equals(data.subarray(500, 623))).toBe(true);
      expect((await range(990, 10)).equals(data.subarray(990))).toBe(true);
      expect((await range(999, 1)).equals(data.subarray(999))).toBe(true);
      expect((await range(900, 5000)).equals(data.subarray(900))).toBe(true);
      expect((await range(0, 1000)).equals(data)).toBe(true);
    });

    it('stat() reports the size of present objects and undefined for absent ones', async () => {
      await fx.writer.put('snapshots/s1', Buffer.from('hello'));
      const info = await fx.reader.stat('snapshots/s1');
      expect(info).toMatchObject({ key: 'snapshots/s1', size: 5 });
      expect(await fx.reader.stat('snapshots/s2')).toBeUndefined();
      expect(await fx.reader.stat('nowhere/at/all')).toBeUndefined();
      // a "directory" made by nested keys is not an object
      expect(await fx.reader.stat('snapshots')).toBeUndefined();
    });

    it('get() of a missing key rejects with StorageNotFoundError (not a failing stream)', async () => {
      await expect(fx.reader.get('missing/key')).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(fx.reader.get('missing/key', { offset: 0, length: 4 })).rejects.toBeInstanceOf(
        StorageNotFoundError,
      );
      await fx.writer.put('dir/child', Buffer.from('x'));
      await expect(fx.reader.get('dir')).rejects.toBeInstanceOf(StorageNotFoundError);
    });

    it('lists by prefix: nested keys, partial segments, everything, and nothing', async () => {
      const keys = ['data/00/aa', 'data/00/ab', 'data/01/ba', 'data/ff/cc', 'index/i1', 'index/i2', 'config'];
      for (const key of keys) await fx.writer.put(key, Buffer.from(key));
      expect(await listKeys(fx.reader, '')).toEqual([...keys].sort());
      expect(await listKeys(fx.reader, 'data/')).toEqual([
        'data/00/aa',
        'data/00/ab',
        'data/01/ba',
        'data/ff/cc',
      ]);
      expect(await listKeys(fx.reader, 'data/0')).toEqual(['data/00/aa', 'data/00/ab', 'data/01/ba']);
      expect(await listKeys(fx.reader, 'data/00/a')).toEqual(['data/00/aa', 'data/00/ab']);
      expect(await listKeys(fx.reader, 'data/00/ab')).toEqual(['data/00/ab']);
      expect(await listKeys(fx.reader, 'index')).toEqual(['index/i1', 'index/i2']);
      expect(await listKeys(fx.reader, 'conf')).toEqual(['config']);
      expect(await listKeys(fx.reader, 'nothing/')).toEqual([]);
      expect(await listKeys(fx.reader, 'data/02')).toEqual([]);
      expect(await listKeys(fx.reader, 'config/')).toEqual([]);
      const infos = await listInfos(fx.reader, 'index/');
      expect(infos.map((i) => [i.key, i.size])).toEqual([
        ['index/i1', 8],
        ['index/i2', 8],
      ]);
    });

    it('lists many keys across fan-out prefixes', async () => {
      const keys = Array.from({ length: 300 }, (_, i) => {
        const id = createHash('sha256').update(String(i)).digest('hex');
        return `data/${id.slice(0, 2)}/${id}`;
      });
      await inParallel(keys, 8, (key) => fx.writer.put(key, Buffer.from(key.slice(-8))));
      const listed = await listKeys(fx.reader, 'data/');
      expect(listed).toEqual([...keys].sort());
      expect(new Set(listed).size).toBe(300);
      const under = keys.filter((k) => k.startsWith('data/a')).sort();
      expect(await listKeys(fx.reader, 'data/a')).toEqual(under);
    });

    it('accepts unusual but valid key characters', async () => {
      const keys = ['a b/ü=€+x', 'tags/name with spaces', 'x/.hidden', 'x/..dots', 'x/back\\slash'];
      for (const key of keys) await fx.writer.put(key, Buffer.from(key));
      for (const key of keys) expect((await readStream(await fx.reader.get(key))).toString()).toBe(key);
      expect(await listKeys(fx.reader, '')).toEqual([...keys].sort());
    });

    it('rejects hostile keys on reads with InvalidKeyError', async () => {
      for (const key of HOSTILE_KEYS) {
        await expect(fx.reader.get(key), JSON.stringify(key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(fx.reader.stat(key), JSON.stringify(key)).rejects.toBeInstanceOf(InvalidKeyError);
      }
      for (const prefix of ['/etc/', '../', 'a/../', 'a//', 'nul\0']) {
        await expect(listKeys(fx.reader, prefix), JSON.stringify(prefix)).rejects.toBeInstanceOf(
          InvalidKeyError,
        );
      }
    });
  });
}

/** The full contract: the read half plus writes, deletes, conditional creates and concurrency. */
export function describeStorageContract(
  name: string,
  makeStorage: MakeStorage,
  cleanup: CleanupStorage = async () => {},
): void {
  describeReadContract(
    name,
    async () => {
      const storage = await makeStorage();
      return { reader: storage, writer: storage };
    },
    (fx) => cleanup(fx.reader),
  );

  describe(`${name}: storage write contract`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await makeStorage();
    });
    afterEach(async () => {
      await cleanup(storage);
    });

    it('round-trips a stream body', async () => {
      const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(1)];
      await storage.put('s/streamed', Readable.from(parts));
      expect((await readStream(await storage.get('s/streamed'))).equals(Buffer.concat(parts))).toBe(true);
      expect((await storage.stat('s/streamed'))?.size).toBe(71_001);
    });

    it('stores empty objects from bytes and from streams', async () => {
      await storage.put('e/bytes', new Uint8Array(0));
      await storage.put('e/stream', Readable.from([], { objectMode: false }));
      for (const key of ['e/bytes', 'e/stream']) {
        expect((await readStream(await storage.get(key))).length).toBe(0);
        expect((await storage.stat(key))?.size).toBe(0);
      }
      expect(await listKeys(storage, 'e/')).toEqual(['e/bytes', 'e/stream']);
    });

    it('streams a 20 MiB object in and out', async () => {
      const size = 20 * 1024 * 1024;
      const source = randomStream(size);
      await storage.put('big/object', source.stream, { size });
      expect((await storage.stat('big/object'))?.size).toBe(size);
      const hash = createHash('sha256');
      let seen = 0;
      for await (const chunk of await storage.get('big/object')) {
        hash.update(chunk as Buffer);
        seen += (chunk as Buffer).length;
      }
      expect(seen).toBe(size);
      expect(hash.digest('hex')).toBe(source.digest());
      const tail = await readStream(await storage.get('big/object', { offset: size - 100, length: 100 }));
      expect(tail.length).toBe(100);
    });

    it('overwrites an existing key without ifNoneMatch', async () => {
      await storage.put('locks/l1', Buffer.from('first version'));
      await storage.put('locks/l1', Buffer.from('second'));
      expect((await readStream(await storage.get('locks/l1'))).toString()).toBe('second');
      expect((await storage.stat('locks/l1'))?.size).toBe(6);
      expect(await listKeys(storage, 'locks/')).toEqual(['locks/l1']);
    });

    it('ifNoneMatch creates a new key and refuses an existing one, keeping the original', async () => {
      await storage.put('config', Buffer.from('original'), { ifNoneMatch: true });
      await expect(
        storage.put('config', Buffer.from('intruder'), { ifNoneMatch: true }),
      ).rejects.toBeInstanceOf(StorageConflictError);
      await expect(
        storage.put('config', Readable.from([Buffer.from('intruder')]), { ifNoneMatch: true }),
      ).rejects.toBeInstanceOf(StorageConflictError);
      expect((await readStream(await storage.get('config'))).toString()).toBe('original');
      expect(await listKeys(storage, '')).toEqual(['config']);
    });

    it('ifNoneMatch lets exactly one of many concurrent creators win when conditionalCreate', async () => {
      if (!storage.capabilities.conditionalCreate) return;
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          storage.put('locks/exclusive', Buffer.from(`writer ${i}`), { ifNoneMatch: true }),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      for (const r of lost) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StorageConflictError);
      const winner = results.findIndex((r) => r.status === 'fulfilled');
      expect((await readStream(await storage.get('locks/exclusive'))).toString()).toBe(`writer ${winner}`);
      expect(await listKeys(storage, 'locks/')).toEqual(['locks/exclusive']);
    });

    it('deletes idempotently', async () => {
      await storage.put('d/one', Buffer.from('1'));
      await storage.put('d/two', Buffer.from('2'));
      await storage.delete('d/one');
      await storage.delete('d/one');
      await storage.delete('d/never-existed');
      await storage.delete('nowhere/at/all');
      await expect(storage.get('d/one')).rejects.toBeInstanceOf(StorageNotFoundError);
      expect(await storage.stat('d/one')).toBeUndefined();
      expect(await listKeys(storage, 'd/')).toEqual(['d/two']);
      // a deleted key can be created again, also conditionally
      await storage.put('d/one', Buffer.from('again'), { ifNoneMatch: true });
      expect((await readStream(await storage.get('d/one'))).toString()).toBe('again');
    });

    it('rejects hostile keys on put and delete, writing nothing', async () => {
      for (const key of HOSTILE_KEYS) {
        await expect(storage.put(key, Buffer.from('x')), JSON.stringify(key)).rejects.toBeInstanceOf(
          InvalidKeyError,
        );
        await expect(storage.delete(key), JSON.stringify(key)).rejects.toBeInstanceOf(InvalidKeyError);
      }
      expect(await listKeys(storage, '')).toEqual([]);
    });

    it('handles concurrent puts of different keys', async () => {
      const items = Array.from({ length: 40 }, (_, i) => ({
        key: `c/${i % 4}/obj-${i}`,
        data: randomBytes(i * 997),
      }));
      await Promise.all(
        items.map(({ key, data }, i) =>
          storage.put(key, i % 2 ? data : Readable.from([data.subarray(0, 10), data.subarray(10)])),
        ),
      );
      for (const { key, data } of items)
        expect((await readStream(await storage.get(key))).equals(data)).toBe(true);
      expect(await listKeys(storage, 'c/')).toEqual(items.map((i) => i.key).sort());
    });

    it('shows no object or temp entry while a put is in flight', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const midway = new Promise<void>((resolve) => (started = resolve));
      async function* slow(): AsyncGenerator<Buffer> {
        yield Buffer.alloc(100_000, 1);
        started();
        await gate;
        yield Buffer.alloc(100_000, 2);
      }
      await storage.put('p/existing', Buffer.from('x'));
      const pending = storage.put('p/slow', Readable.from(slow(), { objectMode: false }));
      await midway;
      expect(await listKeys(storage, '')).toEqual(['p/existing']);
      expect(await listKeys(storage, 'p/')).toEqual(['p/existing']);
      expect(await storage.stat('p/slow')).toBeUndefined();
      await expect(storage.get('p/slow')).rejects.toBeInstanceOf(StorageNotFoundError);
      release();
      await pending;
      expect(await listKeys(storage, '')).toEqual(['p/existing', 'p/slow']);
      expect((await storage.stat('p/slow'))?.size).toBe(200_000);
    });

    it('leaves nothing behind when the body stream fails', async () => {
      await expect(storage.put('f/broken', failingStream(300_000))).rejects.toThrow('source failed halfway');
      await expect(storage.get('f/broken')).rejects.toBeInstanceOf(StorageNotFoundError);
      expect(await storage.stat('f/broken')).toBeUndefined();
      expect(await listKeys(storage, '')).toEqual([]);
      // the same key still works afterwards
      await storage.put('f/broken', Buffer.from('fine'), { ifNoneMatch: true });
      expect((await readStream(await storage.get('f/broken'))).toString()).toBe('fine');
    });
  });
}
