import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { LifeboatError } from '../../errors.js';
import {
  StorageConflictError,
  StorageIoError,
  StorageNotFoundError,
  StorageUnsupportedError,
} from '../errors.js';
import { keyProblem, validateKey, validatePrefix, validateRange } from '../keys.js';
import { RetryingStorage } from '../retry.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from '../types.js';
import { createS3Client } from './client.js';
import { checkedBody } from './download.js';
import { S3ReadInterruptedError, mapS3Error, type S3ErrorContext } from './errors.js';
import { resolveS3Options, type ResolvedS3Options, type S3StorageOptions } from './options.js';
import { forEachLimited } from './parallel.js';
import { partSizeFor, splitIntoParts, uploadParts } from './upload.js';
import { parseS3Url, type S3Location } from './url.js';

type Range = { offset: number; length: number };
type LockMode = 'COMPLIANCE' | 'GOVERNANCE';

/** Object Lock retention of one object. */
export interface ObjectRetention {
  mode: LockMode;
  retainUntil: Date;
}

/** Per-request failure as the SDK reports it, before mapping. */
interface RawError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

/** S3 accepts at most this many keys per DeleteObjects request. */
const DELETE_BATCH = 1000;
/** A range reaching this far means "to the end" (RetryingStorage resumes whole reads with such a range). */
const OPEN_ENDED = Number.MAX_SAFE_INTEGER / 2;

/**
 * Storage in an S3 bucket (AWS or S3-compatible), under a key prefix:
 * `s3://bucket/prefix` stores key `k` as object `prefix/k`.
 *
 * - put(): byte bodies up to multipartThreshold (64 MiB) and streams up to
 *   partSize (8 MiB) are one PutObject; larger ones and streams of unknown
 *   size a multipart upload with bounded parallelism and memory, aborted on
 *   any failure so nothing half-written becomes visible. Every body carries
 *   Content-MD5, so the server refuses bytes damaged in transit. Only
 *   in-memory bodies reach the SDK, which therefore may retry every request.
 * - get(): Content-Length is enforced; a body that breaks off is resumed with
 *   a range request (RetryingStorage), pinned to the first response's ETag so
 *   a replaced object is never stitched together.
 * - ifNoneMatch: an existence check, plus `If-None-Match: *` unless the server
 *   answered it with 501 (then dropped). `capabilities.conditionalCreate`
 *   turns true once the server was seen refusing a create with 412. Never
 *   relied upon for correctness.
 * - Object Lock: detected when opened; put(…, { retainUntil }) locks the
 *   object, and getRetention()/extendRetention() read and extend it. Without
 *   Object Lock those throw StorageUnsupportedError.
 * Errors are mapped by mapS3Error(); credentials never appear in messages.
 */
export class S3Storage implements Storage {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly options: ResolvedS3Options;
  private objectLock = false;
  private objectLockNote = 'Object Lock is not enabled on the bucket';
  /** true once a conditional put got 412, false once one got 501, else unknown. */
  private conditional: boolean | undefined;
  /** false once the server answered DeleteObjects with 501. */
  private batchDelete: boolean | undefined;

  constructor(location: S3Location, options: S3StorageOptions = {}) {
    this.url = location.url;
    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.options = resolveS3Options(options);
    this.client = createS3Client(this.options);
  }

  /**
   * Open `s3://bucket/prefix[?region=…]`: checks that the bucket exists and
   * the credentials can list it (RepositoryMissingError / AccessDeniedError
   * otherwise) and detects Object Lock. `options` win over URL parameters.
   */
  static async open(url: string, options: S3StorageOptions = {}): Promise<S3Storage> {
    const parsed = parseS3Url(url);
    const storage = new S3Storage(parsed.location, { ...parsed.options, ...definedOnly(options) });
    try {
      await storage.probe();
    } catch (err) {
      storage.client.destroy();
      throw err;
    }
    return storage;
  }

  get capabilities(): StorageCapabilities {
    return {
      objectLock: this.objectLock,
      conditionalCreate: this.conditional === true,
      maxConnections: this.options.maxConnections,
    };
  }

  /** The object key in the bucket for a repository key. */
  objectKey(key: string): string {
    return this.prefix + key;
  }

  async put(key: string, body: Uint8Array | Readable, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    const lock = opts.retainUntil === undefined ? undefined : this.lockFor(key, opts.retainUntil);
    // Always checked, even where the server enforces If-None-Match: that is never relied upon.
    if (opts.ifNoneMatch && (await this.stat(key)) !== undefined)
      throw new StorageConflictError(this.url, key);
    if (body instanceof Uint8Array && body.length <= this.options.multipartThreshold) {
      // Already in memory: one request, whatever partSize says (see S3StorageOptions.multipartThreshold).
      checkSize(key, body.length, opts.size);
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      await this.putSingle(key, bytes, lock, opts.ifNoneMatch === true);
      return;
    }
    const parts = splitIntoParts(
      body instanceof Uint8Array ? [body] : body,
      partSizeFor(this.options.partSize),
    );
    const first = await parts.next();
    const second = first.done ? first : await parts.next();
    if (second.done) {
      const bytes = first.done ? Buffer.alloc(0) : first.value;
      checkSize(key, bytes.length, opts.size);
      await this.putSingle(key, bytes, lock, opts.ifNoneMatch === true);
      return;
    }
    async function* all(): AsyncGenerator<Buffer> {
      yield first.value as Buffer;
      yield second.value as Buffer;
      yield* parts;
    }
    try {
      await this.putMultipart(key, all(), lock, opts);
    } finally {
      await parts.return(undefined); // releases (destroys) a source stream that was not read to the end
    }
  }

  async get(key: string, range?: Range): Promise<Readable> {
    validateKey(key);
    validateRange(range);
    let etag: string | undefined;
    const open = async (k: string, r?: Range): Promise<Readable> => {
      const opened = await this.openRead(k, r, etag);
      etag ??= opened.etag;
      return opened.stream;
    };
    // Only reads that broke off mid-body are retried here: the SDK already retried each request.
    const resumer = new RetryingStorage(readerView(this, open), {
      attempts: this.options.readAttempts,
      isRetryable: (err) => err instanceof S3ReadInterruptedError,
    });
    return resumer.get(key, range);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    validateKey(key);
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return {
        key,
        size: head.ContentLength ?? 0,
        ...(head.LastModified ? { mtimeMs: head.LastModified.getTime() } : {}),
      };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw this.error(err, 'stat', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.call({ op: 'list', key: prefix === '' ? undefined : prefix }, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            ContinuationToken: token,
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        const key = object.Key.slice(this.prefix.length);
        // Foreign objects (console "folders", odd names) are not repository keys.
        if (keyProblem(key) !== undefined) continue;
        yield {
          key,
          size: object.Size ?? 0,
          ...(object.LastModified ? { mtimeMs: object.LastModified.getTime() } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      if (status(err) === 404 && (err as RawError).name !== 'NoSuchBucket') return;
      throw this.error(err, 'delete', key);
    }
  }

  /**
   * Delete many objects with DeleteObjects, 1000 per request (absent keys are
   * fine), or one by one (maxConnections at a time) on servers without
   * DeleteObjects. Tries every key, then throws StorageIoError naming the
   * keys the server refused.
   */
  async deleteMany(keys: Iterable<string>): Promise<void> {
    const all = [...new Set(keys)];
    for (const key of all) validateKey(key);
    const refused: string[] = [];
    for (let start = 0; start < all.length; start += DELETE_BATCH) {
      const batch = all.slice(start, start + DELETE_BATCH);
      if (this.batchDelete !== false) {
        try {
          const result = await this.client.send(
            new DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: batch.map((key) => ({ Key: this.objectKey(key) })), Quiet: true },
            }),
          );
          this.batchDelete = true;
          for (const e of result.Errors ?? []) {
            if (e.Code !== 'NoSuchKey')
              refused.push(`${(e.Key ?? '?').slice(this.prefix.length)} (${e.Code ?? 'error'})`);
          }
          continue;
        } catch (err) {
          if (!isNotImplemented(err)) throw this.error(err, 'delete many objects', undefined);
          this.batchDelete = false; // e.g. Google Cloud Storage's S3 interface
        }
      }
      await forEachLimited(batch, this.options.maxConnections, async (key) => {
        await this.delete(key).catch((err: unknown) => {
          refused.push(`${key} (${err instanceof LifeboatError ? err.message : String(err)})`);
        });
      });
    }
    if (refused.length > 0) {
      const shown =
        refused.slice(0, 5).join(', ') + (refused.length > 5 ? `, and ${refused.length - 5} more` : '');
      throw new StorageIoError(
        `could not delete ${refused.length} objects from ${this.url}: ${shown}`,
        false,
        {
          hint: 'Check the s3:DeleteObject permission and the Object Lock retention of these objects.',
        },
      );
    }
  }

  /** The Object Lock retention of an object, or undefined when it has none. */
  async getRetention(key: string): Promise<ObjectRetention | undefined> {
    validateKey(key);
    this.requireObjectLock(key, 'read the retention of');
    try {
      const { Retention } = await this.client.send(
        new GetObjectRetentionCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      if (!Retention?.RetainUntilDate || !Retention.Mode) return undefined;
      return { mode: Retention.Mode as LockMode, retainUntil: Retention.RetainUntilDate };
    } catch (err) {
      if ((err as RawError).name === 'NoSuchObjectLockConfiguration') return undefined;
      throw this.error(err, 'get retention of', key);
    }
  }

  /**
   * Keep an object locked at least until `until`: sets the retention when it
   * has none or an earlier one, and never shortens it (S3 would refuse that
   * for COMPLIANCE anyway). Keeps the object's mode, else uses objectLockMode.
   * `known`: the retention the caller has just read (null: none), to save
   * reading it again; should it have grown meanwhile, S3 refuses the shorter
   * one (403: shortening needs the GOVERNANCE bypass lifeboat never sends).
   */
  async extendRetention(key: string, until: Date, known?: ObjectRetention | null): Promise<void> {
    const current = known === undefined ? await this.getRetention(key) : (known ?? undefined);
    if (current && current.retainUntil.getTime() >= until.getTime()) return;
    await this.call({ op: 'extend retention of', key }, () =>
      this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Retention: { Mode: current?.mode ?? this.options.objectLockMode, RetainUntilDate: until },
        }),
      ),
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Check the bucket is there and listable, and whether it has Object Lock. */
  private async probe(): Promise<void> {
    await this.call({ op: 'open' }, () =>
      this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 })),
    );
    try {
      const { ObjectLockConfiguration } = await this.client.send(
        new GetObjectLockConfigurationCommand({ Bucket: this.bucket }),
      );
      this.objectLock = ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      const code = status(err);
      if (code === 403) {
        this.objectLockNote =
          "the credentials may not read the bucket's Object Lock configuration (s3:GetBucketObjectLockConfiguration)";
      } else if (code !== 404 && code !== 400 && code !== 501 && code !== 405) {
        throw this.error(err, 'read the Object Lock configuration of', undefined);
      }
    }
  }

  private lockFor(
    key: string,
    retainUntil: Date,
  ): { ObjectLockMode: LockMode; ObjectLockRetainUntilDate: Date } {
    this.requireObjectLock(key, 'lock');
    return { ObjectLockMode: this.options.objectLockMode, ObjectLockRetainUntilDate: retainUntil };
  }

  private requireObjectLock(key: string, action: string): void {
    if (this.objectLock) return;
    throw new StorageUnsupportedError(`cannot ${action} ${key} in ${this.url}: ${this.objectLockNote}`, {
      hint: 'Use a bucket created with Object Lock enabled (see docs/s3.md), or do not ask for immutable backups.',
    });
  }

  private async putSingle(
    key: string,
    bytes: Buffer,
    lock: { ObjectLockMode: LockMode; ObjectLockRetainUntilDate: Date } | undefined,
    ifNoneMatch: boolean,
  ): Promise<void> {
    const command = (conditional: boolean): PutObjectCommand =>
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: bytes,
        ContentLength: bytes.length,
        ...(conditional ? { IfNoneMatch: '*' } : {}),
        ...lock,
      });
    if (!ifNoneMatch || this.conditional === false) {
      await this.call({ op: 'put', key }, () => this.client.send(command(false)));
      return;
    }
    try {
      // Success does not prove the server enforced the header (some ignore it); a 412 does.
      await this.client.send(command(true));
    } catch (err) {
      if (isConditionFailure(err)) {
        this.conditional = true;
        throw new StorageConflictError(this.url, key, { cause: err });
      }
      if (status(err) !== 501 && (err as RawError).name !== 'NotImplemented')
        throw this.error(err, 'put', key);
      // The server does not do conditional PUTs: the existence check in put() was all we can do.
      this.conditional = false;
      await this.call({ op: 'put', key }, () => this.client.send(command(false)));
    }
  }

  private async putMultipart(
    key: string,
    parts: AsyncIterable<Buffer>,
    lock: { ObjectLockMode: LockMode; ObjectLockRetainUntilDate: Date } | undefined,
    opts: PutOptions,
  ): Promise<void> {
    const Key = this.objectKey(key);
    const { UploadId } = await this.call({ op: 'start upload of', key }, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ...lock })),
    );
    if (!UploadId)
      throw new StorageIoError(`start upload of ${key} on ${this.url}: the server sent no upload ID`, false);
    try {
      let total = 0;
      const counted = async function* (): AsyncGenerator<Buffer> {
        for await (const part of parts) {
          total += part.length;
          yield part;
        }
      };
      const etags = await uploadParts(counted(), this.options.partConcurrency, async (part, PartNumber) => {
        const { ETag } = await this.call({ op: `upload part ${PartNumber} of`, key }, () =>
          this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key,
              UploadId,
              PartNumber,
              Body: part,
              ContentLength: part.length,
            }),
          ),
        );
        if (!ETag)
          throw new StorageIoError(`upload part ${PartNumber} of ${key}: the server sent no ETag`, false);
        return ETag;
      });
      checkSize(key, total, opts.size);
      const conditional = opts.ifNoneMatch === true && this.conditional === true;
      try {
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
            ...(conditional ? { IfNoneMatch: '*' } : {}),
          }),
        );
      } catch (err) {
        if (conditional && isConditionFailure(err))
          throw new StorageConflictError(this.url, key, { cause: err });
        throw this.error(err, 'complete upload of', key);
      }
    } catch (err) {
      // Best effort: parts of an aborted upload are invisible, and a lifecycle rule removes leftovers.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  /** One GetObject, its body checked against Content-Length; `ifMatch` pins it to a version. */
  private async openRead(
    key: string,
    range: Range | undefined,
    ifMatch: string | undefined,
  ): Promise<{ stream: Readable; etag?: string }> {
    if (range?.length === 0) {
      if ((await this.stat(key)) === undefined) throw new StorageNotFoundError(this.url, key);
      return { stream: Readable.from([], { objectMode: false }) };
    }
    const Range =
      range === undefined
        ? undefined
        : `bytes=${range.offset}-${range.offset + range.length >= OPEN_ENDED ? '' : range.offset + range.length - 1}`;
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range, IfMatch: ifMatch }),
      );
      if (!(res.Body instanceof Readable)) {
        throw new StorageIoError(`get ${key} on ${this.url}: the response has no readable body`, false);
      }
      const describe = `reading ${key} from ${this.url}`;
      return {
        stream: checkedBody(res.Body, res.ContentLength, describe),
        ...(res.ETag ? { etag: res.ETag } : {}),
      };
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      // A range starting at or past the end of an existing object: nothing to read.
      if (status(err) === 416) return { stream: Readable.from([], { objectMode: false }) };
      if (ifMatch !== undefined && isConditionFailure(err)) {
        throw new StorageIoError(`${key} in ${this.url} was replaced while it was being read`, false, {
          cause: err,
          hint: 'Another process overwrote the object; run the command again.',
        });
      }
      throw this.error(err, 'get', key);
    }
  }

  /** Run one SDK call, mapping any failure. */
  private async call<T>(where: { op: string; key?: string | undefined }, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.error(err, where.op, where.key);
    }
  }

  private error(err: unknown, op: string, key: string | undefined): LifeboatError {
    const ctx: S3ErrorContext = { url: this.url, bucket: this.bucket, op };
    if (key !== undefined) ctx.key = key;
    if (this.options.endpoint !== undefined) ctx.endpoint = this.options.endpoint;
    if (this.options.region !== undefined) ctx.region = this.options.region;
    return mapS3Error(err, ctx);
  }
}

/** The Storage RetryingStorage resumes reads through: our own get() swapped for `open`. */
function readerView(storage: S3Storage, open: (key: string, range?: Range) => Promise<Readable>): Storage {
  return {
    url: storage.url,
    capabilities: storage.capabilities,
    get: open,
    put: (key, body, opts) => storage.put(key, body, opts),
    stat: (key) => storage.stat(key),
    list: (prefix) => storage.list(prefix),
    delete: (key) => storage.delete(key),
  };
}

function status(err: unknown): number | undefined {
  return (err as RawError | undefined)?.$metadata?.httpStatusCode;
}

function isNotImplemented(err: unknown): boolean {
  return status(err) === 501 || (err as RawError | undefined)?.name === 'NotImplemented';
}

/** 412 (the object exists) or 409 (a concurrent conditional write won). */
function isConditionFailure(err: unknown): boolean {
  const name = (err as RawError | undefined)?.name;
  return (
    status(err) === 412 ||
    status(err) === 409 ||
    name === 'PreconditionFailed' ||
    name === 'ConditionalRequestConflict'
  );
}

function checkSize(key: string, actual: number, declared: number | undefined): void {
  if (declared !== undefined && actual !== declared) {
    throw new StorageIoError(
      `body of ${key} had ${actual} bytes but ${declared} were announced; nothing was stored`,
      false,
    );
  }
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
