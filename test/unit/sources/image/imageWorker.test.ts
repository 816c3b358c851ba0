/**
 * The image worker on real files: the reader hashes exactly what it hands
 * over and skips the holes it is told about; the read-back hasher reads what
 * was written and hashes holes as zeros.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntegrityError } from '../../../../src/errors.js';
import { ImageReader, ReadBackHasher, type ImageBlock } from '../../../../src/sources/image/imageWorker.js';

const BS = 64 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-image-worker-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(reader: ImageReader): Promise<{ blocks: ImageBlock[]; bytes: Buffer[] }> {
  const blocks: ImageBlock[] = [];
  const bytes: Buffer[] = [];
  for await (const b of reader.blocks()) {
    blocks.push(b);
    if (!b.zero) {
      bytes.push(Buffer.from(b.bytes));
      reader.release(b.slot);
    }
  }
  return { blocks, bytes };
}

describe('ImageReader', () => {
  it('hands over data blocks, recognizes zero blocks, and hashes the whole image', async () => {
    const data = Buffer.concat([randomBytes(BS), Buffer.alloc(BS), randomBytes(BS), randomBytes(100)]);
    const path = join(dir, 'disk.img');
    await writeFile(path, data);
    const reader = await ImageReader.open(path, data.length, BS, 1);
    try {
      const { blocks, bytes } = await readAll(reader);
      expect(blocks.map((b) => (b.zero ? `z${b.length}x${b.count}` : `d${b.length}`))).toEqual([
        `d${BS}`,
        `z${BS}x1`,
        `d${BS}`,
        'd100',
      ]);
      expect(Buffer.concat(bytes).equals(Buffer.concat([data.subarray(0, BS), data.subarray(2 * BS)]))).toBe(
        true,
      );
      expect(reader.sha256).toBe(sha(data));
    } finally {
      await reader.close();
    }
  });

  it('does not read blocks outside the data ranges: they count, and hash, as zeros', async () => {
    // Random bytes where the map claims a hole prove the block was not read.
    const data = randomBytes(4 * BS);
    const path = join(dir, 'disk.img');
    await writeFile(path, data);
    const reader = await ImageReader.open(path, data.length, BS, 2, [[BS + 10, BS + 20]]);
    try {
      const { blocks, bytes } = await readAll(reader);
      // Consecutive zero blocks come as one run.
      expect(blocks.map((b) => (b.zero ? `z${b.length}x${b.count}` : `d${b.length}`))).toEqual([
        `z${BS}x1`,
        `d${BS}`,
        `z${2 * BS}x2`,
      ]);
      expect(bytes[0]?.equals(data.subarray(BS, 2 * BS))).toBe(true);
      expect(reader.sha256).toBe(
        sha(Buffer.concat([Buffer.alloc(BS), data.subarray(BS, 2 * BS), Buffer.alloc(2 * BS)])),
      );
    } finally {
      await reader.close();
    }
  });

  it('fails with E_IMAGE_SHORT_READ when the source is shorter than announced', async () => {
    const path = join(dir, 'disk.img');
    await writeFile(path, randomBytes(BS));
    const reader = await ImageReader.open(path, 3 * BS, BS, 2);
    try {
      await expect(readAll(reader)).rejects.toMatchObject({ code: 'E_IMAGE_SHORT_READ' });
    } finally {
      await reader.close();
    }
  });
});

describe('ReadBackHasher', () => {
  it('hashes written ranges as read and holes as zeros, in order', async () => {
    // The "hole" holds ones on disk: the hasher must not read it.
    const file = Buffer.concat([randomBytes(BS), Buffer.alloc(2 * BS, 1), randomBytes(50)]);
    const path = join(dir, 'out.img');
    await writeFile(path, file);
    const hasher = await ReadBackHasher.open(path, BS);
    try {
      hasher.advance(BS);
      hasher.zeros(2 * BS);
      const digest = await hasher.finish(file.length);
      expect(digest).toBe(
        sha(Buffer.concat([file.subarray(0, BS), Buffer.alloc(2 * BS), file.subarray(3 * BS)])),
      );
    } finally {
      await hasher.close();
    }
  });

  it('fails with an IntegrityError when the target is shorter than the image', async () => {
    const path = join(dir, 'out.img');
    await writeFile(path, randomBytes(BS));
    const hasher = await ReadBackHasher.open(path, BS);
    try {
      await expect(hasher.finish(2 * BS)).rejects.toBeInstanceOf(IntegrityError);
    } finally {
      await hasher.close();
    }
  });
});
