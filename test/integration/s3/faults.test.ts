/**
 * The S3 backend under network faults, injected by a proxy between the SDK
 * and a real S3 server (Swift): every operation either completes with the
 * exact bytes (retries, range resume) or fails within a bounded time with a
 * clear error, and no damaged object is ever stored or returned as complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StorageConflictError, StorageIoError } from '../../../src/storage/errors.js';
import { S3ReadInterruptedError, S3Storage, type S3StorageOptions } from '../../../src/storage/s3/index.js';
import { FaultProxy, objectGets, objectPuts } from '../../helpers/faultProxy.js';
import { s3ServerRunnable, startS3Server, type S3TestServer } from '../../helpers/s3server.js';
import { randomStream, readStream } from '../../storage/contract.js';

const MIB = 1024 * 1024;
/** Short timeouts so that faults show within seconds; the bounds below derive from them. */
const FAST: S3StorageOptions = {
  connectTimeoutMs: 2_000,
  idleTimeoutMs: 1_500,
  requestTimeoutMs: 5_000,
  maxAttempts: 3,
  readAttempts: 3,
};

describe.runIf(s3ServerRunnable)('S3 backend under injected faults', () => {
  let server: S3TestServer;
  let proxy: FaultProxy;
  let bucket: string;
  let storage: S3Storage;

  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    proxy = await FaultProxy.start(server.endpoint);
    bucket = await server.createBucket();
    storage = await open();
  });
  afterEach(async () => {
    await storage?.close();
    await proxy?.close();
  });

  async function open(extra: S3StorageOptions = {}): Promise<S3Storage> {
    return S3Storage.open(`s3://${bucket}/repo`, {
      endpoint: proxy.endpoint,
      region: server.region,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      ...FAST,
      ...extra,
    });
  }

  /** The stored object, read straight from the server (not through the proxy or the backend). */
  async function stored(key: string): Promise<Buffer | undefined> {
    try {
      const res = await server.client.send(new GetObjectCommand({ Bucket: bucket, Key: `repo/${key}` }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  async function pendingUploads(): Promise<number> {
    const res = await server.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return res.Uploads?.length ?? 0;
  }

  async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
    const start = performance.now();
    const [result] = await Promise.allSettled([run()]);
    return { ms: performance.now() - start, result: result! };
  }

  function failure(result: PromiseSettledResult<unknown>): Error {
    expect(result.status).toBe('rejected');
    return (result as PromiseRejectedResult).reason as Error;
  }

  const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

  describe('throttling (503 SlowDown)', () => {
    it('retries a burst and stores the exact bytes', async () => {
      const data = randomBytes(MIB);
      proxy.slowDown({ count: 2, match: objectPuts });
      await storage.put('data/slow', data);
      expect(proxy.faulted('slowDown')).toHaveLength(2);
      expect((await stored('data/slow'))?.equals(data)).toBe(true);
    });

    it('retries bursts on multipart parts and completes the upload', async () => {
      const source = randomStream(12 * MIB);
      proxy.slowDown({ count: 2, match: (r) => objectPuts(r) && r.path.includes('partNumber=') });
      const s = await open({ partSize: 5 * MIB });
      try {
        await s.put('big/throttled', source.stream);
      } finally {
        await s.close();
      }
      expect(proxy.faulted('slowDown')).toHaveLength(2);
      expect(sha((await stored('big/throttled'))!)).toBe(source.digest());
      expect(await pendingUploads()).toBe(0);
    });

    it('gives up cleanly and stores nothing when the server keeps throttling', async () => {
      proxy.slowDown({ count: Infinity, match: objectPuts });
      const { ms, result } = await timed(() => storage.put('data/never', randomBytes(1000)));
      const err = failure(result);
      expect(err).toBeInstanceOf(StorageIoError);
      expect(err.message).toMatch(/put data\/never on s3:\/\/.*slow down.*after 3 attempts/);
      expect(proxy.faulted('slowDown')).toHaveLength(3);
      // Backoff for throttling is at most 0.5 s + 1 s of jitter for 3 attempts.
      expect(ms).toBeLessThan(5_000);
      expect(await stored('data/never')).toBeUndefined();
    });
  });

  describe('connection reset in the middle of a response body', () => {
    it('resumes a whole-object read with range requests and returns the exact bytes', async () => {
      const data = randomBytes(3 * MIB);
      await storage.put('packs/p1', data);
      proxy.resetResponse(MIB, { count: 2, match: objectGets });
      const read = await readStream(await storage.get('packs/p1'));
      expect(read.length).toBe(data.length);
      expect(read.equals(data)).toBe(true);
      const gets = proxy.log.filter((r) => r.method === 'GET' && r.path.includes('packs/p1'));
      expect(gets.map((r) => r.fault)).toEqual(['resetResponse', 'resetResponse', undefined]);
      // Each retry resumes where the bytes read so far end: at most where the proxy cut (a reset may drop some
      // bytes still unread in the client's socket buffer), and after the previous resume.
      const starts = gets.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1]));
      expect(starts[0]).toBeGreaterThan(0);
      expect(starts[0]).toBeLessThanOrEqual(MIB);
      expect(starts[1]).toBeGreaterThan(starts[0]!);
      expect(starts[1]).toBeLessThanOrEqual(starts[0]! + MIB);
    });

    it('resumes a ranged read from where it broke off', async () => {
      const data = randomBytes(3 * MIB);
      await storage.put('packs/p2', data);
      proxy.resetResponse(500_000, { match: objectGets });
      const range = { offset: 100_000, length: 2 * MIB };
      const read = await readStream(await storage.get('packs/p2', range));
      expect(read.equals(data.subarray(100_000, 100_000 + 2 * MIB))).toBe(true);
      const gets = proxy.log.filter((r) => r.method === 'GET' && r.path.includes('packs/p2'));
      const end = 100_000 + 2 * MIB - 1;
      expect(gets[0]!.range).toBe(`bytes=100000-${end}`);
      const resumedAt = Number(new RegExp(`^bytes=(\\d+)-${end}$`).exec(gets[1]!.range ?? '')?.[1]);
      expect(resumedAt).toBeGreaterThan(100_000);
      expect(resumedAt).toBeLessThanOrEqual(600_000);
      expect(gets).toHaveLength(2);
    });

    it('keeps resuming a read that breaks off again and again, as long as it makes progress', async () => {
      const data = randomBytes(2 * MIB);
      await storage.put('packs/p3', data);
      proxy.resetResponse(256 * 1024, { count: Infinity, match: objectGets });
      const read = await readStream(await storage.get('packs/p3'));
      expect(read.equals(data)).toBe(true);
      expect(proxy.faulted('resetResponse').length).toBeGreaterThanOrEqual(8);
    });

    it('fails the read cleanly when it breaks off without progress, never ending it as if complete', async () => {
      const data = randomBytes(2 * MIB);
      await storage.put('packs/p4', data);
      proxy.resetResponse(0, { count: Infinity, match: objectGets });
      const { ms, result } = await timed(async () => readStream(await storage.get('packs/p4')));
      const err = failure(result);
      expect(err).toBeInstanceOf(S3ReadInterruptedError);
      expect(err.message).toMatch(/reading packs\/p4 from s3:\/\/.* broke off after 0 of 2097152 bytes/);
      expect((err as StorageIoError).retryable).toBe(false);
      expect(proxy.faulted('resetResponse')).toHaveLength(3); // readAttempts
      expect(ms).toBeLessThan(5_000);
    });

    it('hands out the bytes before a break-off only as part of the complete stream', async () => {
      const data = randomBytes(MIB);
      await storage.put('packs/p5', data);
      proxy.resetResponse(300_000, { count: Infinity, match: objectGets });
      const s = await open({ readAttempts: 1 });
      try {
        const stream = await s.get('packs/p5');
        const received: Buffer[] = [];
        const err = await (async () => {
          for await (const chunk of stream) received.push(chunk as Buffer);
        })().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(S3ReadInterruptedError);
        const got = Buffer.concat(received);
        expect(got.length).toBeLessThan(data.length);
        expect(got.equals(data.subarray(0, got.length))).toBe(true);
      } finally {
        await s.close();
      }
    });
  });

  describe('timeouts', () => {
    it('times out a stalled response body and resumes it', async () => {
      const data = randomBytes(2 * MIB);
      await storage.put('packs/stall', data);
      proxy.stallResponse(256 * 1024, { match: objectGets });
      const { ms, result } = await timed(async () => readStream(await storage.get('packs/stall')));
      expect(result.status).toBe('fulfilled');
      expect((result as PromiseFulfilledResult<Buffer>).value.equals(data)).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(1_400); // the idle timeout did fire
      expect(ms).toBeLessThan(8_000);
    });

    it('retries a request that was never answered', async () => {
      await storage.put('index/i1', Buffer.from('index'));
      proxy.blackhole({ match: (r) => r.method === 'HEAD' });
      const { ms, result } = await timed(() => storage.stat('index/i1'));
      expect(result).toEqual({
        status: 'fulfilled',
        value: expect.objectContaining({ key: 'index/i1', size: 5 }),
      });
      expect(proxy.faulted('blackhole')).toHaveLength(1);
      expect(ms).toBeGreaterThanOrEqual(1_400);
    });

    it('fails within a bounded time when the server never answers', async () => {
      proxy.blackhole({ count: Infinity });
      const { ms, result } = await timed(() => storage.stat('index/i2'));
      const err = failure(result);
      expect(err).toBeInstanceOf(StorageIoError);
      expect(err.message).toMatch(/stat index\/i2 on s3:\/\/.* timed out after 3 attempts/);
      expect(proxy.faulted('blackhole')).toHaveLength(3);
      // 3 attempts × 1.5 s idle timeout + backoff.
      expect(ms).toBeLessThan(3 * 1_500 + 3_000);
    });

    it('fails a request on the total request timeout even when the idle timeout is long', async () => {
      const s = await open({ idleTimeoutMs: 60_000, requestTimeoutMs: 1_000, maxAttempts: 2 });
      try {
        proxy.blackhole({ count: Infinity });
        const { ms, result } = await timed(() => s.stat('index/i3'));
        const err = failure(result);
        expect(err).toBeInstanceOf(StorageIoError);
        expect(err.message).toMatch(
          /stat index\/i3 on s3:\/\/.* timed out after 2 attempts.*1000 ms requestTimeout/,
        );
        expect(ms).toBeGreaterThanOrEqual(2_000);
        expect(ms).toBeLessThan(4_000);
      } finally {
        await s.close();
      }
    });

    it('lets added latency slow operations down without breaking them', async () => {
      proxy.latency(200);
      const data = randomBytes(100_000);
      const start = performance.now();
      await storage.put('slow/a', data);
      expect((await readStream(await storage.get('slow/a'))).equals(data)).toBe(true);
      expect((await storage.stat('slow/a'))?.size).toBe(100_000);
      expect(performance.now() - start).toBeGreaterThanOrEqual(600);
    });
  });

  describe('connection reset in the middle of an upload', () => {
    it('retries the upload and stores the exact bytes', async () => {
      const data = randomBytes(2 * MIB);
      proxy.resetRequest(512 * 1024, { match: objectPuts });
      await storage.put('data/reset-once', data);
      expect(proxy.faulted('resetRequest')).toHaveLength(1);
      expect((await stored('data/reset-once'))?.equals(data)).toBe(true);
    });

    it('never stores a truncated object when every upload breaks off', async () => {
      proxy.resetRequest(100_000, { count: Infinity, match: objectPuts });
      const single = await timed(() => storage.put('data/cut', randomBytes(MIB)));
      expect(failure(single.result)).toBeInstanceOf(StorageIoError);
      const s = await open({ partSize: 5 * MIB });
      try {
        const multi = await timed(() => s.put('data/cut-multi', Readable.from([randomBytes(11 * MIB)])));
        expect(failure(multi.result)).toBeInstanceOf(StorageIoError);
      } finally {
        await s.close();
      }
      proxy.clear();
      for (const key of ['data/cut', 'data/cut-multi']) {
        expect(await stored(key)).toBeUndefined();
        await expect(
          server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `repo/${key}` })),
        ).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
      }
      expect(await pendingUploads()).toBe(0); // the multipart upload was aborted
    });
  });

  it('takes 412 on a conditional create as a conflict and as proof that the server enforces it', async () => {
    expect(storage.capabilities.conditionalCreate).toBe(false);
    // What a server that enforces If-None-Match answers when another writer won the race after our check.
    proxy.errorResponse(412, 'PreconditionFailed', {
      match: (r) => objectPuts(r) && r.headers['if-none-match'] === '*',
    });
    await expect(storage.put('locks/l1', Buffer.from('mine'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    expect(storage.capabilities.conditionalCreate).toBe(true);
    expect(await stored('locks/l1')).toBeUndefined();
    // The existence check still runs (never relied upon alone) and the header is sent; the real server
    // behind the proxy (Swift) answers that with 501, so the put is repeated without it.
    await storage.put('locks/l2', Buffer.from('mine'), { ifNoneMatch: true });
    const puts = proxy.log.filter((r) => r.path.includes('locks/l2'));
    expect(puts.map((r) => [r.method, r.status])).toEqual([
      ['HEAD', 404],
      ['PUT', 501],
      ['PUT', 200],
    ]);
    expect(storage.capabilities.conditionalCreate).toBe(false);
    expect((await stored('locks/l2'))?.toString()).toBe('mine');
  });

  it('deletes one by one where the server lacks DeleteObjects (501)', async () => {
    for (const key of ['d/1', 'd/2', 'd/3', 'keep']) await storage.put(key, Buffer.from(key));
    proxy.errorResponse(501, 'NotImplemented', {
      match: (r) => r.method === 'POST' && r.path.includes('delete'),
    });
    await storage.deleteMany(['d/1', 'd/2', 'd/3', 'd/absent']);
    expect(proxy.faulted('errorResponse')).toHaveLength(1);
    expect(proxy.log.filter((r) => r.method === 'DELETE')).toHaveLength(4);
    expect(await stored('keep')).toBeDefined();
    for (const key of ['d/1', 'd/2', 'd/3']) expect(await stored(key)).toBeUndefined();
    // Remembered: the next batch goes one by one straight away.
    await storage.deleteMany(['keep']);
    expect(proxy.faulted('errorResponse')).toHaveLength(1);
    expect(await stored('keep')).toBeUndefined();
  });

  it('never has more requests in flight than maxConnections', async () => {
    const s = await open({ maxConnections: 2 });
    try {
      proxy.latency(100);
      await Promise.all(Array.from({ length: 10 }, (_, i) => s.put(`c/${i}`, randomBytes(1000))));
    } finally {
      await s.close();
    }
    expect(proxy.maxInFlight).toBe(2);
  });

  it('reports a refused connection clearly and quickly', async () => {
    await proxy.close();
    const { ms, result } = await timed(() => open());
    const err = failure(result);
    expect(err).toBeInstanceOf(StorageIoError);
    expect(err.message).toContain(`cannot connect to ${proxy.endpoint} (ECONNREFUSED) after 3 attempts`);
    expect((err as StorageIoError).hint).toMatch(/endpoint/);
    expect(ms).toBeLessThan(3_000);
  });
});
