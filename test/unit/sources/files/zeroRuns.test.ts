import { describe, expect, it } from 'vitest';
import type { ContentRef } from '../../../../src/repository/tree.js';
import { isAllZero, pushZero } from '../../../../src/sources/files/zeroRuns.js';

describe('zero runs', () => {
  it('detects all-zero buffers of any size', () => {
    expect(isAllZero(Buffer.alloc(0))).toBe(true);
    expect(isAllZero(Buffer.alloc(10))).toBe(true);
    expect(isAllZero(Buffer.alloc(3 * 1024 * 1024 + 5))).toBe(true);
  });

  it('finds a single non-zero byte anywhere', () => {
    for (const at of [0, 1, 1024 * 1024 - 1, 1024 * 1024, 2 * 1024 * 1024 + 3, 3 * 1024 * 1024 + 4]) {
      const b = Buffer.alloc(3 * 1024 * 1024 + 5);
      b[at] = 1;
      expect(isAllZero(b)).toBe(false);
    }
  });

  it('works on views into larger buffers', () => {
    const b = Buffer.alloc(100);
    b[10] = 7;
    expect(isAllZero(b.subarray(11, 90))).toBe(true);
    expect(isAllZero(new Uint8Array(b.buffer, b.byteOffset + 5, 10))).toBe(false);
  });

  it('merges consecutive zero runs', () => {
    const refs: ContentRef[] = ['a'];
    pushZero(refs, 10);
    pushZero(refs, 5);
    refs.push('b');
    pushZero(refs, 1);
    expect(refs).toEqual(['a', { zero: 15 }, 'b', { zero: 1 }]);
  });
});
