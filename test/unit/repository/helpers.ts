/**
 * Shared fixtures for repository tests: cheap scrypt parameters (the real
 * ones cost ~0.4 s per derivation), a fixed clock, deterministic data.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { FakeClock } from '../../../src/platform/clock.js';
import type { SnapshotRecord } from '../../../src/repository/api.js';
import type { InitOptions } from '../../../src/repository/repository.js';

export const CHEAP_KDF = { N: 1024, r: 8, p: 1 };
export const T0 = Date.parse('2025-01-31T12:00:00.000Z');

export function testOptions(overrides: Partial<InitOptions> = {}): InitOptions {
  return {
    clock: new FakeClock(T0),
    host: 'test-host',
    user: 'tester',
    kdf: CHEAP_KDF,
    compressionWorkers: 1,
    ...overrides,
  };
}

/** Deterministic pseudo-random bytes (AES-CTR keystream of a seed string): incompressible, never all zero. */
export function pseudoRandom(length: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

/** Compressible text-like bytes. */
export function textLike(length: number, seed: string): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'lifeboat', 'backup', 'restore', 'drill', '\n'];
  const rnd = pseudoRandom(length, seed);
  const out = Buffer.alloc(length);
  let at = 0;
  for (let i = 0; at < length; i++) {
    const w = words[rnd[i % rnd.length]! % words.length]! + ' ';
    at += out.write(w, at);
  }
  return out;
}

/** A minimal valid snapshot record for `tree`. */
export function snapshotRecord(tree: string, overrides: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    v: 1,
    job: 'web',
    kind: 'files',
    host: 'test-host',
    startedAt: '2025-01-31T12:00:00.000Z',
    endedAt: '2025-01-31T12:01:00.000Z',
    tree,
    paths: ['/srv/web'],
    tags: [],
    partial: false,
    fingerprint: { files: 1 },
    stats: { files: 1, dirs: 1, bytes: 100, addedBytes: 100, storedBytes: 80, blobs: 2 },
    toolVersion: '0.1.0',
    ...overrides,
  };
}

/** Split `data` into pieces of the given sizes, cycling through them. */
export function splitInto(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(Buffer.from(c));
  return out;
}

export async function* iterate(pieces: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of pieces) yield p;
}

/** Flip bits of one byte in place (simulated disk damage or tampering). */
export function flipByte(buf: Uint8Array, at: number, mask = 0x01): void {
  buf[at] = buf[at]! ^ mask;
}
