import {
  AccessDeniedError,
  LifeboatError,
  RepositoryMissingError,
  UsageError,
  isErrnoException,
} from '../../errors.js';
import { redact } from '../../platform/redact.js';
import { StorageIoError, StorageNotFoundError, StorageUnsupportedError } from '../errors.js';

/** What was being done when an S3 request failed, for the message. */
export interface S3ErrorContext {
  /** Repository URL as shown to users (`s3://bucket/prefix`). */
  url: string;
  bucket: string;
  /** e.g. `put`, `get`, `open`, `list`. */
  op: string;
  /** The object key (relative to the repository), when there is one. */
  key?: string;
  /** Custom endpoint, for connection messages. */
  endpoint?: string;
  region?: string;
}

/**
 * A read that broke off after its response started. S3Storage.get() resumes
 * it with range requests (up to readAttempts per stall); it is marked not
 * retryable so that a RetryingStorage around the backend does not multiply
 * those attempts once they are used up.
 */
export class S3ReadInterruptedError extends StorageIoError {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, false, {
      ...opts,
      hint: 'The connection broke during the transfer; it is retried from where it stopped.',
    });
  }
}

/** Shape of what the SDK throws: a ServiceException or a Node network error with SDK metadata. */
interface SdkError extends Error {
  code?: string;
  Code?: string;
  Region?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $response?: { headers?: Record<string, string> };
}

const ACCESS_HINTS: Record<string, string> = {
  InvalidAccessKeyId:
    'The server does not know this access key ID: check accessKeyId in the repository options.',
  SignatureDoesNotMatch:
    'The secret access key does not match the access key ID (or a proxy altered the request): check secretAccessKey.',
  ExpiredToken: 'The session token has expired: refresh the temporary credentials.',
  InvalidToken: 'The session token is not valid: refresh the temporary credentials.',
  AccountProblem: 'The account behind these credentials has a problem: check it with the provider.',
};
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Turn whatever the SDK threw into a LifeboatError that says what failed,
 * where and what to do, with secrets redacted:
 * missing bucket → RepositoryMissingError (exit 10); missing object →
 * StorageNotFoundError; denied, unknown key, bad signature → AccessDeniedError
 * (exit 12); wrong region and clock skew → clear messages with hints;
 * connection failures and timeouts → StorageIoError naming the endpoint.
 *
 * Every StorageIoError made here has `retryable: false`: the SDK has already
 * retried the request (maxAttempts, with backoff) where that made sense, and a
 * RetryingStorage around the backend must not multiply those attempts.
 */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const e = (err instanceof Error ? err : new Error(String(err))) as SdkError;
  const name = e.Code ?? e.name;
  const status = e.$metadata?.httpStatusCode;
  const what = `${ctx.op}${ctx.key === undefined ? '' : ` ${ctx.key}`} on ${ctx.url}`;
  const detail = redact(e.message && e.message !== 'UnknownError' ? `${name}: ${e.message}` : name);
  const attempts =
    e.$metadata?.attempts && e.$metadata.attempts > 1 ? ` after ${e.$metadata.attempts} attempts` : '';
  const opts = { cause: err };

  if (name === 'NoSuchBucket' || (ctx.key === undefined && status === 404 && name !== 'NoSuchKey')) {
    return new RepositoryMissingError(`bucket "${ctx.bucket}" of ${ctx.url} does not exist`, {
      ...opts,
      hint: 'Create the bucket first (with Object Lock enabled if backups must be immutable), or fix the bucket name or region/endpoint.',
    });
  }
  if (name === 'NoSuchKey' || (ctx.key !== undefined && status === 404)) {
    return new StorageNotFoundError(ctx.url, ctx.key ?? '', opts);
  }
  if (name === 'RequestTimeTooSkewed' || name === 'RequestExpired') {
    return new StorageIoError(
      `${what} failed: this machine's clock differs too much from the server's (${name})`,
      false,
      {
        ...opts,
        hint: 'Synchronise the system clock (e.g. enable NTP with `timedatectl set-ntp true`) and try again.',
      },
    );
  }
  const region = wrongRegion(e, name, status);
  if (region !== undefined) {
    const expected = region ? `region ${region}` : 'another region';
    return new UsageError(
      `bucket "${ctx.bucket}" of ${ctx.url} is in ${expected}, not ${ctx.region ?? 'the configured one'}`,
      {
        ...opts,
        hint: region
          ? `Set region: ${region} in the repository options.`
          : "Set the bucket's region in the repository options.",
      },
    );
  }
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(e.message)) {
    return new AccessDeniedError(`no S3 credentials found for ${ctx.url}`, {
      ...opts,
      hint: 'Set accessKeyId and secretAccessKey in the repository options (by reference), or provide AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or an instance role.',
    });
  }
  if (status === 403 || name === 'AccessDenied' || name === 'Forbidden' || ACCESS_HINTS[name] !== undefined) {
    return new AccessDeniedError(`access denied: ${what} (${detail})`, {
      ...opts,
      hint:
        ACCESS_HINTS[name] ??
        // S3 refuses to delete (or shorten the retention of) a locked object with a plain AccessDenied.
        (/object lock/i.test(e.message)
          ? 'The object is protected by S3 Object Lock until its retention ends; forget and prune leave locked objects alone and remove them later.'
          : undefined) ??
        'The credentials lack a permission lifeboat needs (see docs/s3.md for the list); note that S3 answers 403 instead of 404 for missing objects without s3:ListBucket.',
    });
  }
  if (/region is missing/i.test(e.message)) {
    return new UsageError(`no region configured for ${ctx.url}`, {
      ...opts,
      hint: 'Set region in the repository options (or AWS_REGION).',
    });
  }
  if (name === 'NotImplemented' || status === 501) {
    return new StorageUnsupportedError(`${what} failed: the server does not implement it (${detail})`, {
      ...opts,
      hint: 'This S3-compatible server lacks a feature lifeboat needs; see docs/s3.md.',
    });
  }
  const code = isErrnoException(e) ? e.code : undefined;
  if (code !== undefined && CONNECTION_CODES.has(code)) {
    const where = ctx.endpoint ?? `the S3 endpoint of ${ctx.region ?? 'the configured region'}`;
    return new StorageIoError(
      `${what} failed: cannot connect to ${redact(where)} (${code})${attempts}`,
      false,
      {
        ...opts,
        hint: 'Check the endpoint URL, DNS and network, and that the S3 service is running.',
      },
    );
  }
  if (name === 'TimeoutError' || code === 'ETIMEDOUT') {
    return new StorageIoError(`${what} timed out${attempts} (${detail})`, false, {
      ...opts,
      hint: 'The server or network is too slow or unreachable; check connectivity, or raise the timeouts or lower maxConnections.',
    });
  }
  if (name === 'SlowDown' || status === 503) {
    return new StorageIoError(
      `${what} failed: the server kept asking to slow down (${name})${attempts}`,
      false,
      {
        ...opts,
        hint: 'Lower maxConnections for this repository or try again later.',
      },
    );
  }
  return new StorageIoError(`${what} failed${attempts}: ${detail}`, false, opts);
}

/** The bucket's real region when the error says the request went to the wrong one; '' if unknown; undefined if not that error. */
function wrongRegion(e: SdkError, name: string, status: number | undefined): string | undefined {
  const header = e.$response?.headers?.['x-amz-bucket-region'];
  const quoted = /expecting '([a-z0-9-]+)'/i.exec(e.message)?.[1];
  if (name === 'AuthorizationHeaderMalformed' && (quoted || e.Region)) return quoted ?? e.Region ?? '';
  if (name === 'PermanentRedirect' || name === 'IllegalLocationConstraintException' || status === 301) {
    return header ?? e.Region ?? '';
  }
  return undefined;
}
