import { UsageError } from '../../errors.js';
import { redact } from '../../platform/redact.js';
import { keyProblem } from '../keys.js';
import type { S3StorageOptions } from './options.js';

/** Where a repository lives in S3: a bucket and a key prefix inside it. */
export interface S3Location {
  bucket: string;
  /** `''` or a `/`-terminated prefix such as `deep/prefix/`; every key is stored as prefix + key. */
  prefix: string;
  /** Canonical form for messages: `s3://bucket` or `s3://bucket/deep/prefix`. */
  url: string;
}

/** The non-secret options an `s3://` URL may carry as query parameters. */
const QUERY_OPTIONS = ['region', 'endpoint', 'forcePathStyle', 'maxConnections'] as const;
const SECRET_PARAMS =
  /^(accessKeyId|secretAccessKey|sessionToken|access_key|secret_key|secret|password|token)$/i;
/** Lenient enough for legacy and S3-compatible bucket names, strict enough to refuse paths and spaces. */
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

const EXAMPLE = 's3://bucket/prefix?region=eu-west-1';

/**
 * Parse `s3://bucket[/prefix][?region=…&endpoint=…&forcePathStyle=true&maxConnections=8]`.
 * The prefix is normalised to end in `/` (`s3://b/x` and `s3://b/x/` are the
 * same repository). Credentials are refused in the URL (user info or query):
 * they belong in the options, by reference. Errors are UsageErrors with the
 * URL redacted.
 */
export function parseS3Url(url: string): { location: S3Location; options: S3StorageOptions } {
  const shown = redact(url);
  const match = /^s3:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  if (!match) throw usage(`${shown} is not an s3:// URL`);
  const [, authority = '', path = '', query = '', fragment] = match;
  if (authority.includes('@')) {
    throw new UsageError(`${shown}: credentials do not belong in the repository URL`, {
      hint: 'Remove them from the URL and set accessKeyId / secretAccessKey in the repository options (by reference, e.g. from an environment variable or file).',
    });
  }
  if (fragment !== undefined) throw usage(`${shown}: a URL fragment (#…) is not allowed`);
  if (!BUCKET.test(authority)) {
    throw usage(
      `${shown}: "${authority}" is not a valid bucket name`,
      'Bucket names are 3-255 letters, digits, dots, dashes or underscores.',
    );
  }
  const location: S3Location = { bucket: authority, ...parsePrefix(path, shown), url: '' };
  location.url = `s3://${location.bucket}${location.prefix ? `/${location.prefix.slice(0, -1)}` : ''}`;
  return { location, options: parseQuery(query, shown) };
}

function parsePrefix(path: string, shown: string): { prefix: string } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw usage(`${shown}: the prefix is not valid percent-encoding`);
  }
  const trimmed = decoded.replace(/^\//, '').replace(/\/$/, '');
  if (trimmed === '') return { prefix: '' };
  const problem = keyProblem(trimmed);
  if (problem) throw usage(`${shown}: the prefix "${trimmed}" is not usable (${problem})`);
  return { prefix: `${trimmed}/` };
}

function parseQuery(query: string, shown: string): S3StorageOptions {
  const options: S3StorageOptions = {};
  for (const [name, value] of new URLSearchParams(query.replace(/^\?/, ''))) {
    if (SECRET_PARAMS.test(name)) {
      // The message must not echo the value: it is a secret.
      throw new UsageError(
        `${redact(shown.replace(/\?.*$/, ''))}: credentials (${name}) do not belong in the repository URL`,
        {
          hint: 'Set accessKeyId / secretAccessKey in the repository options, by reference (environment variable or file).',
        },
      );
    }
    switch (name as (typeof QUERY_OPTIONS)[number]) {
      case 'region':
        options.region = value;
        break;
      case 'endpoint':
        options.endpoint = value;
        break;
      case 'forcePathStyle':
        if (value !== 'true' && value !== 'false')
          throw usage(`${shown}: forcePathStyle must be true or false`);
        options.forcePathStyle = value === 'true';
        break;
      case 'maxConnections': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 1 || n > 1024)
          throw usage(`${shown}: maxConnections must be an integer from 1 to 1024`);
        options.maxConnections = n;
        break;
      }
      default:
        throw usage(`${shown}: unknown option "${name}"`, `Known URL options: ${QUERY_OPTIONS.join(', ')}.`);
    }
  }
  return options;
}

function usage(message: string, hint = `Write the repository as ${EXAMPLE}.`): UsageError {
  return new UsageError(message, { hint });
}
