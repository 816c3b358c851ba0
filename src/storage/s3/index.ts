/**
 * The `s3://` storage backend. This is the only module tree that imports
 * @aws-sdk/*; the registry loads it with a dynamic import() so commands that
 * never touch S3 (and `--help`) do not pay for the SDK.
 */
import type { OpenStorageOptions } from '../registry.js';
import { S3Storage } from './storage.js';

export { S3Storage, type ObjectRetention } from './storage.js';
export { S3ReadInterruptedError, mapS3Error, type S3ErrorContext } from './errors.js';
export { resolveS3Options, type S3StorageOptions, type ResolvedS3Options } from './options.js';
export { parseS3Url, type S3Location } from './url.js';

/**
 * Open an S3 repository: `s3://bucket[/prefix][?region=…&endpoint=…&forcePathStyle=…&maxConnections=…]`
 * with `opts.s3` (credentials already resolved; they win over URL parameters).
 * The bucket must exist: `create` does not make buckets, because Object Lock
 * has to be chosen when a bucket is created, so that is left to the operator.
 */
export async function openS3Storage(url: string, opts: OpenStorageOptions = {}): Promise<S3Storage> {
  return S3Storage.open(url, opts.s3 ?? {});
}
