import { Readable } from 'node:stream';
import { LifeboatError } from '../../errors.js';
import { StorageIoError } from '../errors.js';
import { S3ReadInterruptedError } from './errors.js';

/**
 * The body of a GetObject response as a stream that never ends short: bytes
 * are counted against Content-Length, and a body that breaks off (reset,
 * idle timeout, premature end) fails with S3ReadInterruptedError, which the
 * resuming reader continues with a range request. More bytes than announced
 * is a non-retryable error. `describe` names the read for messages.
 */
export function checkedBody(body: Readable, expected: number | undefined, describe: string): Readable {
  return Readable.from(count(body, expected, describe), { objectMode: false });
}

async function* count(
  body: Readable,
  expected: number | undefined,
  describe: string,
): AsyncGenerator<Buffer> {
  let received = 0;
  const of = expected === undefined ? '' : ` of ${expected}`;
  try {
    for await (const chunk of body) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      received += bytes.length;
      if (expected !== undefined && received > expected) {
        throw new StorageIoError(
          `${describe}: the server sent more than the announced ${expected} bytes`,
          false,
        );
      }
      yield bytes;
    }
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new S3ReadInterruptedError(`${describe} broke off after ${received}${of} bytes (${reason})`, {
      cause: err,
    });
  }
  if (expected !== undefined && received < expected) {
    throw new S3ReadInterruptedError(`${describe} ended after ${received}${of} bytes`);
  }
}
