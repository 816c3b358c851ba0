import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { registerSecret } from '../../platform/redact.js';
import type { ResolvedS3Options } from './options.js';

// The SDK prints a deprecation warning for Node 20 on first use; lifeboat supports
// Node 20 and must not write SDK warnings into its own output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Operations whose body gets a Content-MD5 header: integrity of uploads, and some servers demand it. */
const MD5_COMMANDS = new Set([
  'PutObjectCommand',
  'UploadPartCommand',
  'DeleteObjectsCommand',
  'PutObjectRetentionCommand',
]);

/**
 * An S3Client set up for backups:
 * - every request has a connect, idle and total (to response headers)
 *   timeout that really fails it (throwOnRequestTimeout);
 * - at most maxConnections sockets (keep-alive agents of our own, so the SDK
 *   does not open an unbounded side agent for `Expect: 100-continue`);
 * - SDK retries in standard mode (exponential backoff, full jitter, retry
 *   quota) for 5xx, 503 SlowDown, timeouts and resets. That is safe because
 *   the backend only ever hands the SDK in-memory bodies, which can be resent;
 * - Content-MD5 on uploads and DeleteObjects (the server verifies the bytes;
 *   Swift's s3api requires it for DeleteObjects);
 * - flexible checksums only when required for custom endpoints (see
 *   S3StorageOptions.checksums).
 * Static credentials are registered with redact() so they never show up in a message.
 */
export function createS3Client(opts: ResolvedS3Options): S3Client {
  registerSecret(opts.secretAccessKey);
  registerSecret(opts.sessionToken);
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.maxConnections,
    maxFreeSockets: opts.maxConnections,
  };
  const checksums = opts.checksums === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const config: S3ClientConfig = {
    region: opts.region,
    endpoint: opts.endpoint,
    forcePathStyle: opts.forcePathStyle,
    maxAttempts: opts.maxAttempts,
    retryMode: 'standard',
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    // On AWS a bucket in another region is found by following the redirect.
    followRegionRedirects: opts.endpoint === undefined,
    expectContinueHeader: false,
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: opts.connectTimeoutMs,
      socketTimeout: opts.idleTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  };
  if (opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined) {
    config.credentials = {
      accessKeyId: opts.accessKeyId,
      secretAccessKey: opts.secretAccessKey,
      ...(opts.sessionToken === undefined ? {} : { sessionToken: opts.sessionToken }),
    };
  }
  const client = new S3Client(config);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown } | undefined;
      if (MD5_COMMANDS.has(context.commandName ?? '') && request?.headers) {
        const body = request.body;
        const bytes =
          typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
        const present = Object.keys(request.headers).some((h) => h.toLowerCase() === 'content-md5');
        if (bytes && !present)
          request.headers['content-md5'] = createHash('md5').update(bytes).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'lifeboatContentMd5', tags: ['CONTENT_MD5'] },
  );
  return client;
}
