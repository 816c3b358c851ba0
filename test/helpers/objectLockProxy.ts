/**
 * An EMULATION of S3 Object Lock at the HTTP level, for tests — not a real
 * Object Lock implementation.
 *
 * No S3 server that can run here has Object Lock: OpenStack Swift's s3api
 * (test/helpers/s3server.ts) has none (it answers `GET ?object-lock` with a
 * bucket listing, `GET ?retention` with the object's bytes, and stores a
 * `PUT ?retention` body as the object!), and MinIO/Ceph cannot be installed.
 * So this loopback proxy sits between lifeboat's real S3 backend (the AWS
 * SDK, real HTTP, SigV4) and Swift, forwards every request byte for byte
 * (the Host header too, so signatures stay valid) and answers the Object Lock
 * part of the S3 API itself, for the buckets it was told have Object Lock
 * (`enableBucket`):
 *
 * - `GET /bucket?object-lock`: `ObjectLockEnabled` = `Enabled`.
 * - `PUT` object and `POST ?uploads` (multipart) with
 *   `x-amz-object-lock-mode` + `x-amz-object-lock-retain-until-date`: checked
 *   as AWS does (both or neither, a known mode, a date in the future, a
 *   Content-MD5 or x-amz-checksum-* header), forwarded, and the retention is
 *   recorded once the upload (or CompleteMultipartUpload) succeeded.
 * - `GET ?retention`: the recorded retention; `404 NoSuchObjectLockConfiguration`
 *   for an object without one, `404 NoSuchKey` for an absent object.
 * - `PUT ?retention`: Content-MD5 required and checked; a date in the past is
 *   `400 InvalidArgument`; shortening an active COMPLIANCE retention (or
 *   turning it into GOVERNANCE) is `403 AccessDenied` — and so is shortening
 *   GOVERNANCE without `x-amz-bypass-governance-retention: true` (there is no
 *   IAM here to check the bypass permission).
 * - `DELETE` of an object whose retention has not ended, and DeleteObjects
 *   entries for such objects: `403 AccessDenied` ("Access Denied because
 *   object protected by object lock."), in DeleteObjects as a per-key `Error`
 *   of a `200` answer. The unlocked keys of such a batch are deleted by the
 *   proxy itself (with `client`, one by one), so the answer is what S3 gives.
 *
 * Deliberate differences from AWS, all on the strict side:
 * - AWS Object Lock buckets are versioned: a plain DELETE (no versionId) of a
 *   locked object "succeeds" by adding a delete marker that hides the object,
 *   and an overwrite adds a new version. Swift has no versions, so the proxy
 *   refuses both with 403 instead (AWS gives that answer for deleting the
 *   locked version itself) and records every attempt in `refused`: a test
 *   that expects lifeboat never to try asserts that list is empty.
 * - Retention is stored to the second (AWS reports `…T10:00:00.000Z`), the
 *   clock is `now` (a test's fake clock may drive it), and the request's
 *   signature is not checked for the answers the proxy gives itself.
 * - Not emulated: legal holds (answered 501), default retention, the lock
 *   headers on GET/HEAD, PutObjectLockConfiguration, versions and delete
 *   markers, CopyObject.
 * It listens on and connects to 127.0.0.1 only.
 */
import { createHash } from 'node:crypto';
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { endToEnd, requestUpstream } from './faultProxy.js';

export type LockMode = 'COMPLIANCE' | 'GOVERNANCE';

export interface EmulatedRetention {
  mode: LockMode;
  retainUntil: Date;
}

/** A request the emulation refused because of a retention (or would have, on a non-versioned store). */
export interface RefusedRequest {
  op: 'DeleteObject' | 'DeleteObjects' | 'PutObject' | 'PutObjectRetention';
  bucket: string;
  key: string;
}

export interface ObjectLockProxyOptions {
  /** Swift's S3 endpoint, `http://127.0.0.1:<port>`. */
  upstream: string;
  /** A client with the server's credentials, straight to `upstream`: the proxy's own HEADs and deletes. */
  client: S3Client;
  /** ms since the epoch; default Date.now. Retention ends by this clock. */
  now?: () => number;
}

const LOCKED_MESSAGE = 'Access Denied because object protected by object lock.';
/** Bodies the emulation reads itself (DeleteObjects of 1000 keys is about 100 KB). */
const MAX_BODY = 4 * 1024 * 1024;

export class ObjectLockProxy {
  /** Every request refused because of a retention, in order. */
  readonly refused: RefusedRequest[] = [];
  /** How many Object Lock requests the proxy answered or tracked, by S3 operation. */
  readonly counts: Record<string, number> = {};
  private readonly buckets = new Set<string>();
  private readonly retention = new Map<string, EmulatedRetention>();
  /** Multipart uploads started with a retention: uploadId → retention. */
  private readonly pendingUploads = new Map<string, EmulatedRetention>();
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly upstreamPort: number;
  private readonly client: S3Client;
  private readonly now: () => number;
  private port = 0;

  private constructor(
    private readonly server: Server,
    opts: ObjectLockProxyOptions,
  ) {
    const target = new URL(opts.upstream);
    if (target.hostname !== '127.0.0.1' || target.protocol !== 'http:')
      throw new Error(`the Object Lock proxy only forwards to http://127.0.0.1, not ${opts.upstream}`);
    this.upstreamPort = Number(target.port);
    this.client = opts.client;
    this.now = opts.now ?? Date.now;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendError(res, 500, 'InternalError', `object lock proxy: ${String(err)}`);
        else res.destroy();
      });
    });
  }

  static async start(opts: ObjectLockProxyOptions): Promise<ObjectLockProxy> {
    const server = createServer();
    server.keepAliveTimeout = 30_000;
    const proxy = new ObjectLockProxy(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy.port = (server.address() as { port: number }).port;
    return proxy;
  }

  /** The proxy's address, to use as the S3 endpoint. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Give a bucket Object Lock (as if it had been created with it). */
  enableBucket(bucket: string): this {
    this.buckets.add(bucket);
    return this;
  }

  /** The recorded retention of an object (ended or not), as GetObjectRetention would report it. */
  retentionOf(bucket: string, key: string): EmulatedRetention | undefined {
    const r = this.retention.get(`${bucket}/${key}`);
    return r && { mode: r.mode, retainUntil: new Date(r.retainUntil.getTime()) };
  }

  /** Behind the client's back (an operator with bypass, a bug, a restore from elsewhere): set a retention. */
  setRetention(bucket: string, key: string, r: EmulatedRetention): void {
    this.retention.set(`${bucket}/${key}`, { mode: r.mode, retainUntil: new Date(r.retainUntil.getTime()) });
  }

  /** Behind the client's back: remove a retention. */
  dropRetention(bucket: string, key: string): void {
    this.retention.delete(`${bucket}/${key}`);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.agent.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private count(op: string): void {
    this.counts[op] = (this.counts[op] ?? 0) + 1;
  }

  private lockedUntil(bucket: string, key: string): number | undefined {
    const r = this.retention.get(`${bucket}/${key}`);
    return r && r.retainUntil.getTime() > this.now() ? r.retainUntil.getTime() : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    if (!this.buckets.has(bucket)) return this.forward(req, res);

    if (key === '') {
      if (method === 'GET' && q.has('object-lock')) {
        this.count('GetObjectLockConfiguration');
        req.resume();
        return sendXml(
          res,
          200,
          '<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
            '<ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>',
        );
      }
      if (method === 'POST' && q.has('delete')) return this.deleteObjects(req, res, bucket);
      return this.forward(req, res);
    }

    if (q.has('legal-hold')) {
      req.resume();
      return sendError(res, 501, 'NotImplemented', 'legal holds are not emulated');
    }
    if (q.has('retention')) {
      if (method === 'GET') return this.getRetention(req, res, bucket, key);
      if (method === 'PUT') return this.putRetention(req, res, bucket, key);
    }
    if (method === 'DELETE' && !q.has('uploadId')) {
      if (this.lockedUntil(bucket, key) !== undefined) {
        this.count('DeleteObject');
        this.refused.push({ op: 'DeleteObject', bucket, key });
        req.resume();
        return sendError(res, 403, 'AccessDenied', LOCKED_MESSAGE);
      }
      return this.forward(req, res, (status) => {
        if (status < 300) this.retention.delete(`${bucket}/${key}`);
      });
    }
    const isPut = method === 'PUT' && !q.has('partNumber') && !q.has('uploadId');
    const isCreate = method === 'POST' && q.has('uploads');
    const isComplete = method === 'POST' && q.has('uploadId');
    if (isPut || isComplete) {
      // On AWS this would add a new version; here it would destroy the locked bytes.
      if (this.lockedUntil(bucket, key) !== undefined) {
        this.refused.push({ op: 'PutObject', bucket, key });
        req.resume();
        return sendError(res, 403, 'AccessDenied', LOCKED_MESSAGE);
      }
    }
    if (isPut || isCreate) {
      const lock = this.lockHeaders(req);
      if (typeof lock === 'string') {
        req.resume();
        return sendError(
          res,
          400,
          lock.startsWith('Content-MD5') ? 'InvalidRequest' : 'InvalidArgument',
          lock,
        );
      }
      if (!lock) return this.forward(req, res);
      this.count(isPut ? 'PutObject with retention' : 'CreateMultipartUpload with retention');
      if (isPut) {
        return this.forward(req, res, (status) => {
          if (status < 300) this.retention.set(`${bucket}/${key}`, lock);
        });
      }
      return this.forward(req, res, (status, body) => {
        const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(body?.toString() ?? '')?.[1];
        if (status < 300 && uploadId) this.pendingUploads.set(uploadId, lock);
      });
    }
    if (isComplete) {
      const uploadId = q.get('uploadId') ?? '';
      const lock = this.pendingUploads.get(uploadId);
      if (!lock) return this.forward(req, res);
      // A 200 answer may still carry an <Error> (S3 and Swift send it after keep-alive whitespace).
      return this.forward(req, res, (status, body) => {
        if (status < 300 && !/<Error>/.test(body?.toString() ?? '')) {
          this.retention.set(`${bucket}/${key}`, lock);
          this.pendingUploads.delete(uploadId);
        }
      });
    }
    if (method === 'DELETE') this.pendingUploads.delete(q.get('uploadId') ?? ''); // AbortMultipartUpload
    return this.forward(req, res);
  }

  /** The retention a PUT or CreateMultipartUpload asks for, undefined for none, or why it is refused. */
  private lockHeaders(req: IncomingMessage): EmulatedRetention | undefined | string {
    const mode = req.headers['x-amz-object-lock-mode'];
    const until = req.headers['x-amz-object-lock-retain-until-date'];
    if (mode === undefined && until === undefined) return undefined;
    if (typeof mode !== 'string' || typeof until !== 'string')
      return 'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied';
    if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') return `Unknown wormMode directive: ${mode}`;
    const date = parseDate(until);
    if (date === undefined) return 'The retain until date must be provided in ISO 8601 format';
    if (date.getTime() <= this.now()) return 'The retain until date must be in the future!';
    const isUpload = req.method === 'PUT';
    if (isUpload && !hasChecksum(req))
      return 'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters';
    return { mode, retainUntil: date };
  }

  private async exists(bucket: string, key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false;
      throw err;
    }
  }

  private async getRetention(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
  ): Promise<void> {
    this.count('GetObjectRetention');
    req.resume();
    if (!(await this.exists(bucket, key)))
      return sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    const r = this.retention.get(`${bucket}/${key}`);
    if (!r) {
      return sendError(
        res,
        404,
        'NoSuchObjectLockConfiguration',
        'The specified object does not have a ObjectLock configuration',
      );
    }
    sendXml(
      res,
      200,
      '<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Mode>${r.mode}</Mode><RetainUntilDate>${r.retainUntil.toISOString()}</RetainUntilDate></Retention>`,
    );
  }

  private async putRetention(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
  ): Promise<void> {
    this.count('PutObjectRetention');
    const body = await readBody(req);
    if (!hasChecksum(req)) {
      return sendError(
        res,
        400,
        'InvalidRequest',
        'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object Retention requests',
      );
    }
    const md5 = req.headers['content-md5'];
    if (typeof md5 === 'string' && md5 !== createHash('md5').update(body).digest('base64'))
      return sendError(
        res,
        400,
        'BadDigest',
        'The Content-MD5 you specified did not match what we received.',
      );
    const text = body.toString();
    const mode = /<Mode>([^<]*)<\/Mode>/.exec(text)?.[1];
    const date = parseDate(/<RetainUntilDate>([^<]*)<\/RetainUntilDate>/.exec(text)?.[1]);
    if ((mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') || date === undefined)
      return sendError(res, 400, 'MalformedXML', 'The XML you provided was not well-formed');
    if (!(await this.exists(bucket, key)))
      return sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    if (date.getTime() <= this.now())
      return sendError(res, 400, 'InvalidArgument', 'The retain until date must be in the future!');
    const current = this.retention.get(`${bucket}/${key}`);
    if (current && this.lockedUntil(bucket, key) !== undefined) {
      const shorter = date.getTime() < current.retainUntil.getTime();
      const weaker = current.mode === 'COMPLIANCE' && mode === 'GOVERNANCE';
      const bypass = req.headers['x-amz-bypass-governance-retention'] === 'true';
      if (
        (current.mode === 'COMPLIANCE' && (shorter || weaker)) ||
        (current.mode === 'GOVERNANCE' && shorter && !bypass)
      ) {
        this.refused.push({ op: 'PutObjectRetention', bucket, key });
        return sendError(res, 403, 'AccessDenied', LOCKED_MESSAGE);
      }
    }
    this.retention.set(`${bucket}/${key}`, { mode, retainUntil: date });
    res.writeHead(200, { 'content-length': 0 }).end();
  }

  /** DeleteObjects: forwarded as it is unless it names a locked object (see the file comment). */
  private async deleteObjects(req: IncomingMessage, res: ServerResponse, bucket: string): Promise<void> {
    const body = await readBody(req);
    const text = body.toString();
    const keys = [...text.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unescapeXml(m[1]!));
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(text);
    const locked = new Set(keys.filter((k) => this.lockedUntil(bucket, k) !== undefined));
    if (locked.size === 0) {
      return this.forward(
        req,
        res,
        (status) => {
          if (status < 300) for (const k of keys) this.retention.delete(`${bucket}/${k}`);
        },
        body,
      );
    }
    this.count('DeleteObjects with locked keys');
    const parts: string[] = [];
    for (const k of keys) {
      if (locked.has(k)) {
        this.refused.push({ op: 'DeleteObjects', bucket, key: k });
        parts.push(
          `<Error><Key>${escapeXml(k)}</Key><Code>AccessDenied</Code><Message>${LOCKED_MESSAGE}</Message></Error>`,
        );
        continue;
      }
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
        this.retention.delete(`${bucket}/${k}`);
        if (!quiet) parts.push(`<Deleted><Key>${escapeXml(k)}</Key></Deleted>`);
      } catch (err) {
        const e = err as { name?: string; message?: string };
        parts.push(
          `<Error><Key>${escapeXml(k)}</Key><Code>${e.name ?? 'InternalError'}</Code>` +
            `<Message>${escapeXml(e.message ?? '')}</Message></Error>`,
        );
      }
    }
    sendXml(
      res,
      200,
      `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.join('')}</DeleteResult>`,
    );
  }

  /**
   * Send the request on to Swift unchanged (streamed, or `body` when it was
   * already read) and its answer back. With `then`, the answer's body is
   * read first (only small XML answers are watched) and handed over.
   */
  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    then?: (status: number, body?: Buffer) => void,
    body?: Buffer,
  ): void {
    const upstream = requestUpstream({ port: this.upstreamPort, agent: this.agent }, req, res, (answer) => {
      const status = answer.statusCode ?? 502;
      const headers = endToEnd(answer.rawHeaders);
      if (!then) {
        res.writeHead(status, answer.statusMessage, headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const data = Buffer.concat(chunks);
        then(status, data);
        res.writeHead(status, answer.statusMessage, headers);
        res.end(req.method === 'HEAD' ? undefined : data);
      });
    });
    if (body) upstream.end(body);
    else req.pipe(upstream);
  }
}

function hasChecksum(req: IncomingMessage): boolean {
  return (
    req.headers['content-md5'] !== undefined ||
    Object.keys(req.headers).some((h) => h.startsWith('x-amz-checksum-') && h !== 'x-amz-checksum-type')
  );
}

/** An ISO 8601 date, stored to the second as S3 reports it; undefined when it is not one. */
function parseDate(text: string | undefined): Date | undefined {
  if (text === undefined || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(text))
    return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(Math.floor(ms / 1000) * 1000);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error(`request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function sendXml(res: ServerResponse, status: number, xml: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': 'objectlockproxy',
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendXml(
    res,
    status,
    `<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message><RequestId>objectlockproxy</RequestId></Error>`,
  );
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function unescapeXml(s: string): string {
  return s.replace(/&(#x?[0-9a-fA-F]+|amp|lt|gt|quot|apos);/g, (whole, e: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (named[e] !== undefined) return named[e];
    const code = e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return Number.isNaN(code) ? whole : String.fromCodePoint(code);
  });
}
