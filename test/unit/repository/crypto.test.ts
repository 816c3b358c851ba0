import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  computeBlobId,
  computeBlobIdOfParts,
  NONCE_LENGTH,
  seal,
  sealParts,
  unseal,
} from '../../../src/repository/crypto.js';

describe('sealing', () => {
  const key = randomBytes(32);

  it('round-trips and refuses other associated data', () => {
    const sealed = seal(key, Buffer.from('hello'), 'blob:data:1');
    expect(unseal(key, sealed, 'blob:data:1')?.toString()).toBe('hello');
    expect(unseal(key, sealed, 'blob:data:2')).toBeUndefined();
  });

  it('never uses a nonce twice, across refills of the nonce pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const [nonce] = sealParts(key, Buffer.from([i & 255]), 'x');
      expect(nonce).toHaveLength(NONCE_LENGTH);
      seen.add(nonce!.toString('hex'));
    }
    expect(seen.size).toBe(2000);
  });

  it('keeps earlier nonces intact when the pool is refilled', () => {
    const sealed = Array.from({ length: 1000 }, (_, i) => ({
      i,
      bytes: seal(key, Buffer.from(`m${i}`), `ad${i}`),
    }));
    for (const { i, bytes } of sealed) expect(unseal(key, bytes, `ad${i}`)?.toString()).toBe(`m${i}`);
  });
});

describe('blob IDs over parts', () => {
  const key = randomBytes(32);

  it('equal the ID of the joined bytes, zero runs of any length included', () => {
    const a = randomBytes(1000);
    const b = randomBytes(70_000);
    for (const run of [0, 1, 65_535, 65_536, 65_537, 300_001]) {
      const joined = Buffer.concat([a, Buffer.alloc(run), b, Buffer.alloc(7)]);
      expect(computeBlobIdOfParts(key, [a, run, b.subarray(0, 5), b.subarray(5), 7])).toBe(
        computeBlobId(key, joined),
      );
    }
    expect(computeBlobIdOfParts(key, [a])).not.toBe(computeBlobIdOfParts(randomBytes(32), [a]));
  });
});
