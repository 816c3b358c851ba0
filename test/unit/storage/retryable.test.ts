import { describe, expect, it } from 'vitest';
import { AccessDeniedError, LifeboatError } from '../../../src/errors.js';
import {
  InvalidKeyError,
  StorageConflictError,
  StorageIoError,
  StorageNotFoundError,
} from '../../../src/storage/errors.js';
import { isRetryableStorageError } from '../../../src/storage/retry.js';

const errno = (code: string) => Object.assign(new Error(code), { code });
const named = (name: string) => Object.assign(new Error(name), { name });
const http = (status: number) =>
  Object.assign(new Error(`HTTP ${status}`), { $metadata: { httpStatusCode: status } });

describe('isRetryableStorageError', () => {
  it.each<[string, unknown, boolean]>([
    ['retryable StorageIoError', new StorageIoError('x', true), true],
    ['permanent StorageIoError', new StorageIoError('x', false), false],
    ['ECONNRESET', errno('ECONNRESET'), true],
    ['ETIMEDOUT', errno('ETIMEDOUT'), true],
    ['EAI_AGAIN', errno('EAI_AGAIN'), true],
    ['ENOENT', errno('ENOENT'), false],
    ['ENOSPC', errno('ENOSPC'), false],
    ['SlowDown', named('SlowDown'), true],
    ['ServiceUnavailable', named('ServiceUnavailable'), true],
    ['NoSuchKey', named('NoSuchKey'), false],
    ['HTTP 503', http(503), true],
    ['HTTP 500', http(500), true],
    ['HTTP 429', http(429), true],
    ['HTTP 403', http(403), false],
    ['HTTP 404', http(404), false],
    ['statusCode 502', Object.assign(new Error('bad gateway'), { statusCode: 502 }), true],
    ['$retryable', Object.assign(new Error('x'), { $retryable: {} }), true],
    ['ECONNRESET as cause', new Error('wrapped', { cause: errno('ECONNRESET') }), true],
    ['not found', new StorageNotFoundError('memory://', 'k'), false],
    ['conflict', new StorageConflictError('memory://', 'k'), false],
    ['invalid key', new InvalidKeyError('../k', 'bad'), false],
    ['access denied', new AccessDeniedError('no'), false],
    [
      'LifeboatError wrapping ECONNRESET',
      new LifeboatError('E_X', 1, 'x', { cause: errno('ECONNRESET') }),
      false,
    ],
    ['a string', 'ECONNRESET', false],
    ['undefined', undefined, false],
  ])('%s -> %s', (_label, err, expected) => {
    expect(isRetryableStorageError(err)).toBe(expected);
  });
});
