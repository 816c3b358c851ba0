import { UsageError } from '../../errors.js';
import { redact } from '../../platform/redact.js';

/** How an S3 repository is reached. Secrets arrive here already resolved (never from the URL). */
export interface S3StorageOptions {
  /** AWS region (or the region an S3-compatible server expects). Default: the SDK's chain, else us-east-1 with an endpoint. */
  region?: string;
  /** Base URL of an S3-compatible server, e.g. `https://minio.example:9000`. Default: AWS. */
  endpoint?: string;
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint`. Default: true with an endpoint. */
  forcePathStyle?: boolean;
  /** Static credentials; without them the SDK's default chain (env, profile, instance role) is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Most HTTP connections (so requests) in flight at once. Default 8. */
  maxConnections?: number;
  /** Tries per HTTP request (SDK retries with backoff and jitter: 5xx, 503 SlowDown, timeouts, resets). Default 5. */
  maxAttempts?: number;
  /** Tries to continue one read that keeps breaking off mid-body, counted per stall. Default 5. */
  readAttempts?: number;
  /**
   * Size of the parts of a multipart upload (it doubles every 1000 parts). A
   * stream up to this size is one PutObject; a longer one, or one of unknown
   * size, a multipart upload, so a stream never holds more than a few parts in
   * memory. Default 8 MiB.
   */
  partSize?: number;
  /**
   * Byte bodies (already in memory, e.g. repository packs) up to this size
   * (or up to partSize, whichever is larger) are one PutObject; larger ones a
   * multipart upload of partSize parts. One
   * request instead of create + parts + complete: fewer round trips, and on
   * servers that build multipart objects from segments (Swift's SLO) cheaper
   * range reads later. Default 64 MiB; S3's limit for one PutObject is 5 GiB.
   */
  multipartThreshold?: number;
  /** Parts of one multipart upload in flight at once (also bounds its memory: (n + 1) × partSize). Default min(4, maxConnections). */
  partConcurrency?: number;
  /** Fail a connection attempt after this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** Fail a request whose connection is silent this long (in either direction, body transfer included). Default 60 s. */
  idleTimeoutMs?: number;
  /** Fail a request that has no response headers after this long (request body upload included). Default 10 min. */
  requestTimeoutMs?: number;
  /** Object Lock mode of put(…, { retainUntil }). Default COMPLIANCE (not even the root account can shorten it). */
  objectLockMode?: 'COMPLIANCE' | 'GOVERNANCE';
  /**
   * The SDK's flexible checksums. `when-required` (default with a custom
   * endpoint) sends them only where an operation demands it: several
   * S3-compatible servers store the streaming-checksum framing inside the
   * object or reject it with 501. Content-MD5 is sent on every upload anyway.
   */
  checksums?: 'when-required' | 'when-supported';
}

/** Options with every default filled in. */
export type ResolvedS3Options = Required<
  Pick<
    S3StorageOptions,
    | 'forcePathStyle'
    | 'maxConnections'
    | 'maxAttempts'
    | 'readAttempts'
    | 'partSize'
    | 'multipartThreshold'
    | 'partConcurrency'
    | 'connectTimeoutMs'
    | 'idleTimeoutMs'
    | 'requestTimeoutMs'
    | 'objectLockMode'
    | 'checksums'
  >
> &
  Pick<S3StorageOptions, 'region' | 'endpoint' | 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>;

const MIB = 1024 * 1024;
/** S3's smallest part (except the last) and largest part. */
export const MIN_PART_SIZE = 5 * MIB;
export const MAX_PART_SIZE = 5 * 1024 * MIB;
/** S3's largest single PutObject. */
export const MAX_SINGLE_PUT = 5 * 1024 * MIB;
/** Default of multipartThreshold: above the repository's packs (16 MiB by default, a little more with the trailer). */
const DEFAULT_MULTIPART_THRESHOLD = 64 * MIB;

/** Fill in defaults and reject nonsense with UsageErrors (secrets never echoed). */
export function resolveS3Options(opts: S3StorageOptions): ResolvedS3Options {
  const endpoint = opts.endpoint === undefined ? undefined : checkEndpoint(opts.endpoint);
  if ((opts.accessKeyId === undefined) !== (opts.secretAccessKey === undefined)) {
    throw new UsageError('S3 credentials need both accessKeyId and secretAccessKey', {
      hint: 'Set both, or neither to use the default credential chain (environment, profile, instance role).',
    });
  }
  const maxConnections = integer('maxConnections', opts.maxConnections ?? 8, 1, 1024);
  return {
    region: opts.region === undefined ? (endpoint ? 'us-east-1' : undefined) : checkRegion(opts.region),
    endpoint,
    forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
    accessKeyId: opts.accessKeyId,
    secretAccessKey: opts.secretAccessKey,
    sessionToken: opts.sessionToken,
    maxConnections,
    maxAttempts: integer('maxAttempts', opts.maxAttempts ?? 5, 1, 20),
    readAttempts: integer('readAttempts', opts.readAttempts ?? 5, 1, 100),
    partSize: integer('partSize', opts.partSize ?? 8 * MIB, MIN_PART_SIZE, MAX_PART_SIZE),
    multipartThreshold: integer(
      'multipartThreshold',
      opts.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD,
      0,
      MAX_SINGLE_PUT,
    ),
    partConcurrency: integer('partConcurrency', opts.partConcurrency ?? Math.min(4, maxConnections), 1, 64),
    connectTimeoutMs: integer('connectTimeoutMs', opts.connectTimeoutMs ?? 10_000, 1, 3_600_000),
    idleTimeoutMs: integer('idleTimeoutMs', opts.idleTimeoutMs ?? 60_000, 1, 3_600_000),
    requestTimeoutMs: integer('requestTimeoutMs', opts.requestTimeoutMs ?? 600_000, 1, 86_400_000),
    objectLockMode: opts.objectLockMode ?? 'COMPLIANCE',
    checksums: opts.checksums ?? (endpoint ? 'when-required' : 'when-supported'),
  };
}

function checkEndpoint(endpoint: string): string {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new UsageError(`S3 endpoint ${redact(endpoint)} is not a URL`, {
      hint: 'Give it as http(s)://host[:port], e.g. https://s3.example.com or http://127.0.0.1:9000.',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`S3 endpoint ${redact(endpoint)} must be an http:// or https:// URL`);
  }
  if (parsed.username || parsed.password) {
    throw new UsageError(`S3 endpoint ${redact(endpoint)}: credentials do not belong in the endpoint URL`, {
      hint: 'Set accessKeyId / secretAccessKey in the repository options, by reference.',
    });
  }
  return endpoint.replace(/\/+$/, '');
}

function checkRegion(region: string): string {
  if (!/^[a-z0-9-]{1,64}$/i.test(region)) {
    throw new UsageError(`S3 region "${redact(region)}" is not a region name`, {
      hint: 'For example: us-east-1, eu-central-1.',
    });
  }
  return region;
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`S3 option ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
