import { describe, expect, it } from 'vitest';
import { ChunkBuffers } from '../../../src/repository/chunkBuffers.js';

const MiB = 1024 * 1024;

describe('ChunkBuffers', () => {
  it('hands out views from offset 0 of buffers in 512 KiB steps, and knows them', () => {
    const buffers = new ChunkBuffers();
    const a = buffers.take(300_000);
    expect(a.length).toBe(300_000);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(MiB / 2);
    expect(buffers.take(MiB + 1).buffer.byteLength).toBe(1.5 * MiB);
    expect(buffers.owns(a.buffer)).toBe(true);
    expect(buffers.owns(Buffer.allocUnsafeSlow(10).buffer)).toBe(false);
    expect(buffers.owns(new SharedArrayBuffer(8))).toBe(false);
  });

  it('reuses a buffer given back, the smallest one that fits', () => {
    const buffers = new ChunkBuffers();
    const small = buffers.take(MiB).buffer as ArrayBuffer;
    const large = buffers.take(3 * MiB).buffer as ArrayBuffer;
    buffers.give(large);
    buffers.give(small);
    expect(buffers.take(700_000).buffer).toBe(small);
    expect(buffers.take(700_000).buffer).toBe(large);
    // Nothing left that fits: a new one.
    const fresh = buffers.take(700_000).buffer;
    expect(fresh).not.toBe(small);
    expect(fresh).not.toBe(large);
  });

  it('takes back buffers it did not issue (a worker hands a moved buffer back as a new object)', () => {
    const buffers = new ChunkBuffers();
    const returned = new ArrayBuffer(2 * MiB);
    buffers.give(returned);
    expect(buffers.owns(returned)).toBe(true);
    expect(buffers.take(2 * MiB).buffer).toBe(returned);
  });

  it('keeps at most 40 MiB for reuse and ignores detached buffers', () => {
    const buffers = new ChunkBuffers();
    const given = Array.from({ length: 12 }, () => new ArrayBuffer(4 * MiB));
    for (const b of given) buffers.give(b);
    const detached = new ArrayBuffer(MiB);
    structuredClone(detached, { transfer: [detached] });
    buffers.give(detached);
    const reused = new Set<ArrayBufferLike>();
    for (let i = 0; i < 12; i++) reused.add(buffers.take(4 * MiB).buffer);
    expect(given.filter((b) => reused.has(b))).toHaveLength(10);
  });
});
