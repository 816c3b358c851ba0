import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AccessDeniedError,
  ExitCode,
  LifeboatError,
  RepositoryMissingError,
  UsageError,
} from '../../src/errors.js';
import {
  InvalidKeyError,
  StorageConflictError,
  StorageIoError,
  StorageNotFoundError,
  StorageUnsupportedError,
} from '../../src/storage/errors.js';
import { openStorage } from '../../src/storage/registry.js';
import { S3Storage, mapS3Error, parseS3Url, type S3StorageOptions } from '../../src/storage/s3/index.js';
import { partSizeFor, splitIntoParts, uploadParts } from '../../src/storage/s3/upload.js';
import { registerSecret } from '../../src/platform/redact.js';
import type { Storage } from '../../src/storage/types.js';
import { s3ServerRunnable, startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { describeStorageContract, listKeys, randomStream, readStream } from './contract.js';

describe('parseS3Url', () => {
  it('parses a bare bucket, a prefix and a deep prefix with or without the trailing slash', () => {
    expect(parseS3Url('s3://my-bucket').location).toEqual({
      bucket: 'my-bucket',
      prefix: '',
      url: 's3://my-bucket',
    });
    expect(parseS3Url('s3://my-bucket/').location).toEqual({
      bucket: 'my-bucket',
      prefix: '',
      url: 's3://my-bucket',
    });
    for (const url of ['s3://my-bucket/deep/prefix', 's3://my-bucket/deep/prefix/']) {
      expect(parseS3Url(url).location).toEqual({
        bucket: 'my-bucket',
        prefix: 'deep/prefix/',
        url: 's3://my-bucket/deep/prefix',
      });
    }
    expect(parseS3Url('S3://b.with.dots/x%20y').location.prefix).toBe('x y/');
  });

  it('reads non-secret options from the query', () => {
    const { options } = parseS3Url(
      's3://bucket/p?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&forcePathStyle=true&maxConnections=16',
    );
    expect(options).toEqual({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      maxConnections: 16,
    });
  });

  it.each([
    ['s3://', /not a valid bucket name/],
    ['s3://ab', /not a valid bucket name/],
    ['s3://bucket name/x', /not a valid bucket name/],
    ['s3://bucket//double', /not usable/],
    ['s3://bucket/a/../b', /not usable/],
    ['s3://bucket/p?maxConnections=0', /maxConnections/],
    ['s3://bucket/p?forcePathStyle=yes', /forcePathStyle/],
    ['s3://bucket/p?colour=blue', /unknown option/],
    ['s3://bucket/p#frag', /fragment/],
    ['file:///tmp/x', /not an s3:\/\/ URL/],
  ])('rejects %j with a UsageError', (url, message) => {
    let error: unknown;
    try {
      parseS3Url(url);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses credentials in the URL without echoing them', () => {
    for (const url of [
      's3://AKIAEXAMPLE:sup3rsecretvalue@bucket/prefix',
      's3://bucket/prefix?secretAccessKey=sup3rsecretvalue',
      's3://bucket/prefix?region=x&accessKeyId=AKIAEXAMPLE&secretAccessKey=sup3rsecretvalue',
    ]) {
      let error: unknown;
      try {
        parseS3Url(url);
      } catch (err) {
        error = err;
      }
      expect(error, url).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).toMatch(/credentials/);
      expect((error as UsageError).message).not.toContain('sup3rsecretvalue');
      expect((error as UsageError).hint).toMatch(/by reference/);
    }
  });
});

describe('mapS3Error', () => {
  const ctx = { url: 's3://bucket/repo', bucket: 'bucket', op: 'get', key: 'data/k', region: 'eu-west-1' };
  /** An error shaped like what the SDK throws. */
  function sdkError(name: string, status: number | undefined, message = name, extra: object = {}): Error {
    return Object.assign(new Error(message), {
      name,
      $metadata: { httpStatusCode: status, attempts: 3 },
      ...extra,
    });
  }

  it('explains clock skew with a hint to fix the clock', () => {
    const err = mapS3Error(sdkError('RequestTimeTooSkewed', 403), ctx);
    expect(err).toBeInstanceOf(StorageIoError);
    expect(err.message).toBe(
      "get data/k on s3://bucket/repo failed: this machine's clock differs too much from the server's (RequestTimeTooSkewed)",
    );
    expect(err.hint).toMatch(/NTP/);
  });

  it('names the right region from a redirect or a malformed-authorization answer', () => {
    const redirect = mapS3Error(
      sdkError('PermanentRedirect', 301, 'moved', {
        $response: { headers: { 'x-amz-bucket-region': 'ap-south-1' } },
      }),
      { ...ctx, key: undefined, op: 'open' },
    );
    expect(redirect).toBeInstanceOf(UsageError);
    expect(redirect.message).toBe(
      'bucket "bucket" of s3://bucket/repo is in region ap-south-1, not eu-west-1',
    );
    const malformed = mapS3Error(
      sdkError('AuthorizationHeaderMalformed', 400, "the region 'eu-west-1' is wrong; expecting 'us-west-2'"),
      ctx,
    );
    expect(malformed.hint).toBe('Set region: us-west-2 in the repository options.');
  });

  it('maps access problems to exit 12 with a hint per cause', () => {
    const cases: Array<[Error, RegExp]> = [
      [sdkError('InvalidAccessKeyId', 403), /access key ID/],
      [sdkError('SignatureDoesNotMatch', 403), /secret access key/],
      [sdkError('AccessDenied', 403), /permission.*docs\/s3.md/],
      [sdkError('ExpiredToken', 400), /expired/],
      [
        Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        }),
        /AWS_ACCESS_KEY_ID/,
      ],
    ];
    for (const [raw, hint] of cases) {
      const err = mapS3Error(raw, ctx);
      expect(err, raw.name).toBeInstanceOf(AccessDeniedError);
      expect(err.exitCode).toBe(ExitCode.accessDenied);
      expect(err.hint).toMatch(hint);
    }
  });

  it('names the endpoint on connection failures and says how often it tried', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
      $metadata: { attempts: 5 },
    });
    const err = mapS3Error(refused, { ...ctx, endpoint: 'http://127.0.0.1:1' });
    expect(err.message).toBe(
      'get data/k on s3://bucket/repo failed: cannot connect to http://127.0.0.1:1 (ECONNREFUSED) after 5 attempts',
    );
    expect((err as StorageIoError).retryable).toBe(false);
    const slow = mapS3Error(sdkError('SlowDown', 503), ctx);
    expect(slow.message).toBe(
      'get data/k on s3://bucket/repo failed: the server kept asking to slow down (SlowDown) after 3 attempts',
    );
    expect(slow.hint).toMatch(/maxConnections/);
  });

  it('keeps registered secrets out of messages', () => {
    registerSecret('s3cr3t-value-123');
    const err = mapS3Error(sdkError('InternalError', 500, 'echo of s3cr3t-value-123'), ctx);
    expect(err.message).not.toContain('s3cr3t-value-123');
    expect(err.message).toContain('***');
  });
});

describe('multipart helpers', () => {
  it('cuts a stream into exact parts without losing or reordering bytes', async () => {
    const data = randomBytes(10_000);
    const chunks = [
      data.subarray(0, 1),
      data.subarray(1, 2999),
      data.subarray(2999, 3000),
      data.subarray(3000),
    ];
    const parts: Buffer[] = [];
    for await (const part of splitIntoParts(chunks, () => 3000)) parts.push(part);
    expect(parts.map((p) => p.length)).toEqual([3000, 3000, 3000, 1000]);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    const single: Buffer[] = [];
    for await (const part of splitIntoParts([], () => 3000)) single.push(part);
    expect(single.map((p) => p.length)).toEqual([0]);
  });

  it('grows parts every 1000 parts so 10 000 parts hold terabytes', () => {
    const size = partSizeFor(8 * 1024 * 1024);
    expect([1, 1000, 1001, 2001, 10_000].map(size)).toEqual([8, 8, 16, 32, 4096].map((m) => m * 1024 * 1024));
    let total = 0;
    for (let n = 1; n <= 10_000; n++) total += size(n);
    expect(total).toBeGreaterThan(8e12);
  });

  it('uploads parts with bounded concurrency, in order, and stops reading after a failure', async () => {
    let running = 0;
    let peak = 0;
    const results = await uploadParts(
      (async function* () {
        for (let i = 0; i < 10; i++) yield Buffer.from([i]);
      })(),
      3,
      async (part, n) => {
        peak = Math.max(peak, ++running);
        await new Promise((resolve) => setTimeout(resolve, 5 * (10 - n)));
        running--;
        return `${n}:${part[0]}`;
      },
    );
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 1}:${i}`));
    expect(peak).toBe(3);
    let read = 0;
    const failing = uploadParts(
      (async function* () {
        for (let i = 0; i < 100; i++) {
          read++;
          yield Buffer.from([i]);
        }
      })(),
      2,
      async (_part, n) => {
        if (n === 3) throw new Error('part 3 failed');
      },
    );
    await expect(failing).rejects.toThrow('part 3 failed');
    expect(read).toBeLessThan(10);
  });
});

describe.runIf(s3ServerRunnable)('S3 storage on Swift (s3api)', () => {
  let server: S3TestServer;
  const opened: Storage[] = [];

  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => {
    for (const storage of opened.splice(0)) await storage.close?.();
    await server?.stop();
  });

  function optionsFor(extra: S3StorageOptions = {}): S3StorageOptions {
    return {
      endpoint: server.endpoint,
      region: server.region,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      ...extra,
    };
  }

  async function openFresh(prefix = '', extra: S3StorageOptions = {}): Promise<S3Storage> {
    const bucket = await server.createBucket();
    const storage = await S3Storage.open(`s3://${bucket}/${prefix}`, optionsFor(extra));
    opened.push(storage);
    return storage;
  }

  describeStorageContract(
    's3 (bucket root)',
    () => openFresh(),
    async (s) => s.close?.(),
  );
  describeStorageContract(
    's3 (deep prefix)',
    () => openFresh('deep/prefix/'),
    async (s) => s.close?.(),
  );

  /** Put an object straight into a bucket, bypassing the backend. */
  async function putDirect(bucket: string, key: string, body: string | Buffer): Promise<void> {
    await server.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  async function pendingUploads(bucket: string): Promise<number> {
    const res = await server.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return res.Uploads?.length ?? 0;
  }

  async function failureOf(run: () => Promise<unknown>): Promise<LifeboatError> {
    const err = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LifeboatError);
    return err as LifeboatError;
  }

  describe('multipart uploads', () => {
    it('uploads a 40 MiB stream of unknown size in parts and reads it back exactly', async () => {
      const storage = await openFresh('repo');
      const size = 40 * 1024 * 1024;
      const source = randomStream(size);
      await storage.put('packs/big', source.stream);
      const head = await server.client.send(
        new HeadObjectCommand({ Bucket: storage.bucket, Key: 'repo/packs/big' }),
      );
      // A multipart object's ETag is "<md5 of the part md5s>-<number of parts>": 40 MiB in 8 MiB parts.
      expect(head.ETag).toMatch(/-5"$/);
      expect(head.ContentLength).toBe(size);
      const hash = createHash('sha256');
      let seen = 0;
      for await (const chunk of await storage.get('packs/big')) {
        hash.update(chunk as Buffer);
        seen += (chunk as Buffer).length;
      }
      expect(seen).toBe(size);
      expect(hash.digest('hex')).toBe(source.digest());
      expect(await pendingUploads(storage.bucket)).toBe(0);
    });

    it('uploads a large byte body in parts of the configured size', async () => {
      const storage = await openFresh('', {
        partSize: 5 * 1024 * 1024,
        partConcurrency: 2,
        multipartThreshold: 10 * 1024 * 1024,
      });
      const data = randomBytes(12 * 1024 * 1024);
      await storage.put('packs/bytes', data);
      const head = await server.client.send(
        new HeadObjectCommand({ Bucket: storage.bucket, Key: 'packs/bytes' }),
      );
      expect(head.ETag).toMatch(/-3"$/);
      expect((await readStream(await storage.get('packs/bytes'))).equals(data)).toBe(true);
    });

    it('uploads a byte body up to multipartThreshold (a repository pack) with one PutObject', async () => {
      // 17 MiB: a default 16 MiB pack plus its trailer; more than two 8 MiB parts, less than the 64 MiB threshold.
      const storage = await openFresh('repo');
      const data = randomBytes(17 * 1024 * 1024);
      await storage.put('packs/whole', data, { size: data.length });
      const head = await server.client.send(
        new HeadObjectCommand({ Bucket: storage.bucket, Key: 'repo/packs/whole' }),
      );
      // A single PutObject's ETag is the plain MD5 of the body (no "-<parts>" suffix).
      expect(head.ETag).toBe(`"${createHash('md5').update(data).digest('hex')}"`);
      expect((await readStream(await storage.get('packs/whole'))).equals(data)).toBe(true);
      await expect(storage.put('packs/bad', data, { size: data.length + 1 })).rejects.toThrow(
        /had 17825792 bytes but 17825793 were announced/,
      );
      expect(await storage.stat('packs/bad')).toBeUndefined();
      // The same bytes as a stream go in 8 MiB parts: a stream is never buffered whole.
      await storage.put('packs/streamed', Readable.from([data]));
      const streamed = await server.client.send(
        new HeadObjectCommand({ Bucket: storage.bucket, Key: 'repo/packs/streamed' }),
      );
      expect(streamed.ETag).toMatch(/-3"$/);
      expect(await pendingUploads(storage.bucket)).toBe(0);
    });

    it('aborts the upload and stores nothing when the source fails or the size is wrong', async () => {
      const storage = await openFresh('', { partSize: 5 * 1024 * 1024 });
      async function* failing(): AsyncGenerator<Buffer> {
        yield randomBytes(6 * 1024 * 1024);
        yield randomBytes(6 * 1024 * 1024);
        throw new Error('source failed after 12 MiB');
      }
      await expect(storage.put('packs/broken', Readable.from(failing()))).rejects.toThrow(
        'source failed after 12 MiB',
      );
      const announced = 11 * 1024 * 1024;
      const err = await failureOf(() =>
        storage.put('packs/short', Readable.from([randomBytes(announced - 1)]), { size: announced }),
      );
      expect(err.message).toMatch(
        /packs\/short had 11534335 bytes but 11534336 were announced; nothing was stored/,
      );
      expect(await storage.stat('packs/broken')).toBeUndefined();
      expect(await storage.stat('packs/short')).toBeUndefined();
      expect(await listKeys(storage, '')).toEqual([]);
      expect(await pendingUploads(storage.bucket)).toBe(0);
    });

    it('checks the announced size of small bodies too', async () => {
      const storage = await openFresh();
      const err = await failureOf(() =>
        storage.put('x/small', Readable.from([Buffer.from('abc')]), { size: 4 }),
      );
      expect(err.message).toMatch(/had 3 bytes but 4 were announced/);
      expect(await storage.stat('x/small')).toBeUndefined();
    });
  });

  describe('repository prefix', () => {
    it('keeps to its prefix: foreign objects are neither listed nor touched', async () => {
      const storage = await openFresh('team/repo');
      await putDirect(storage.bucket, 'team/other/data', 'not ours');
      await putDirect(storage.bucket, 'team/repository-lookalike', 'not ours');
      await putDirect(storage.bucket, 'team/repo/', 'a console folder marker');
      await storage.put('data/a', Buffer.from('ours'));
      expect(await listKeys(storage, '')).toEqual(['data/a']);
      const head = await server.client.send(
        new HeadObjectCommand({ Bucket: storage.bucket, Key: 'team/repo/data/a' }),
      );
      expect(head.ContentLength).toBe(4);
      await storage.deleteMany(['data/a', 'data/b']);
      const { Contents } = await server.client.send(new ListObjectsV2Command({ Bucket: storage.bucket }));
      expect(Contents?.map((c) => c.Key).sort()).toEqual([
        'team/other/data',
        'team/repo/',
        'team/repository-lookalike',
      ]);
    });
  });

  describe('batch delete', () => {
    it('deletes many keys in batches of 1000, ignoring absent and duplicate keys', async () => {
      const storage = await openFresh('repo');
      const keys = Array.from({ length: 1003 }, (_, i) => `data/${String(i).padStart(4, '0')}`);
      const present = [keys[0]!, keys[999]!, keys[1000]!, keys[1002]!];
      for (const key of present) await storage.put(key, Buffer.from(key));
      await storage.put('keep/me', Buffer.from('stay'));
      await storage.deleteMany([...keys, keys[0]!]);
      expect(await listKeys(storage, '')).toEqual(['keep/me']);
      await storage.deleteMany([]);
    });

    it('validates every key before deleting any', async () => {
      const storage = await openFresh();
      await storage.put('a/1', Buffer.from('1'));
      await expect(storage.deleteMany(['a/1', '../escape'])).rejects.toBeInstanceOf(InvalidKeyError);
      expect(await listKeys(storage, '')).toEqual(['a/1']);
    });
  });

  describe('capabilities', () => {
    it('reports no Object Lock on Swift and refuses retention instead of ignoring it', async () => {
      const storage = await openFresh();
      expect(storage.capabilities.objectLock).toBe(false);
      const until = new Date(Date.UTC(2040, 0, 1));
      const err = await failureOf(() => storage.put('locked/obj', Buffer.from('x'), { retainUntil: until }));
      expect(err).toBeInstanceOf(StorageUnsupportedError);
      expect(err.exitCode).toBe(ExitCode.usage);
      expect(err.message).toMatch(/cannot lock locked\/obj in s3:\/\/.*Object Lock is not enabled/);
      expect(await storage.stat('locked/obj')).toBeUndefined();
      await storage.put('plain/obj', Buffer.from('x'));
      await expect(storage.getRetention('plain/obj')).rejects.toBeInstanceOf(StorageUnsupportedError);
      await expect(storage.extendRetention('plain/obj', until)).rejects.toBeInstanceOf(
        StorageUnsupportedError,
      );
    });

    it('detects that Swift does not enforce conditional creates, and still refuses existing keys', async () => {
      const storage = await openFresh();
      expect(storage.capabilities.conditionalCreate).toBe(false);
      await storage.put('config', Buffer.from('one'), { ifNoneMatch: true });
      expect(storage.capabilities.conditionalCreate).toBe(false);
      await expect(storage.put('config', Buffer.from('two'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
        StorageConflictError,
      );
      await storage.put('config2', Buffer.from('three'), { ifNoneMatch: true });
      expect((await readStream(await storage.get('config'))).toString()).toBe('one');
      expect((await readStream(await storage.get('config2'))).toString()).toBe('three');
    });

    it('reports maxConnections', async () => {
      expect((await openFresh('', { maxConnections: 3 })).capabilities.maxConnections).toBe(3);
      expect((await openFresh()).capabilities.maxConnections).toBe(8);
    });
  });

  describe('errors', () => {
    it('maps a missing bucket to RepositoryMissingError (exit 10) naming the URL', async () => {
      const err = await failureOf(() => S3Storage.open('s3://lb-no-such-bucket/repo', optionsFor()));
      expect(err).toBeInstanceOf(RepositoryMissingError);
      expect(err.exitCode).toBe(ExitCode.repositoryMissing);
      expect(err.message).toBe('bucket "lb-no-such-bucket" of s3://lb-no-such-bucket/repo does not exist');
      expect(err.hint).toMatch(/Create the bucket/);
    });

    it('maps a wrong secret and an unknown access key to AccessDeniedError (exit 12) without leaking them', async () => {
      const bucket = await server.createBucket();
      const wrongSecret = `wrong-${randomBytes(8).toString('hex')}`;
      for (const creds of [
        { secretAccessKey: wrongSecret },
        { accessKeyId: 'nobody:nobody', secretAccessKey: wrongSecret },
      ]) {
        const err = await failureOf(() => S3Storage.open(`s3://${bucket}/repo`, optionsFor(creds)));
        expect(err).toBeInstanceOf(AccessDeniedError);
        expect(err.exitCode).toBe(ExitCode.accessDenied);
        expect(err.message).toContain(`access denied: open on s3://${bucket}/repo (SignatureDoesNotMatch`);
        expect(err.hint).toMatch(/secret access key/);
        for (const text of [err.message, err.hint ?? '', JSON.stringify(err.details ?? {})]) {
          expect(text).not.toContain(wrongSecret);
          expect(text).not.toContain(server.secretAccessKey);
        }
      }
    });

    it('explains a wrong region with the region to use', async () => {
      const bucket = await server.createBucket();
      const err = await failureOf(() =>
        S3Storage.open(`s3://${bucket}`, optionsFor({ region: 'eu-west-3' })),
      );
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toBe(`bucket "${bucket}" of s3://${bucket} is in region us-east-1, not eu-west-3`);
      expect(err.hint).toBe('Set region: us-east-1 in the repository options.');
    });

    it('maps a missing object to StorageNotFoundError with the key relative to the repository', async () => {
      const storage = await openFresh('repo');
      const err = await failureOf(() => storage.get('data/nothing'));
      expect(err).toBeInstanceOf(StorageNotFoundError);
      expect(err.message).toBe(`object data/nothing not found in s3://${storage.bucket}/repo`);
    });
  });

  describe('openStorage("s3://…")', () => {
    it('opens through the registry with URL options and the default credential chain', async () => {
      const bucket = await server.createBucket();
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
      try {
        const endpoint = encodeURIComponent(server.endpoint);
        const url = `s3://${bucket}/via/registry?endpoint=${endpoint}&region=${server.region}&maxConnections=4`;
        const storage = await openStorage(url);
        opened.push(storage);
        expect(storage).toBeInstanceOf(S3Storage);
        expect(storage.url).toBe(`s3://${bucket}/via/registry`);
        expect(storage.capabilities.maxConnections).toBe(4);
        await storage.put('k', Buffer.from('v'));
        expect(await listKeys(storage, '')).toEqual(['k']);
      } finally {
        restoreEnv('AWS_ACCESS_KEY_ID', saved.id);
        restoreEnv('AWS_SECRET_ACCESS_KEY', saved.secret);
      }
    });
  });
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
