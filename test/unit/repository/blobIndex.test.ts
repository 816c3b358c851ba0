import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobIndex, type BlobLocation } from '../../../src/repository/blobIndex.js';
import type { IndexedBlob, IndexedPack } from '../../../src/repository/indexFile.js';

const hexId = (seed: string) => createHash('sha256').update(seed).digest('hex');

function pack(id: string, type: 'data' | 'tree', blobs: IndexedBlob[]): IndexedPack {
  return { id: hexId(id), type, size: blobs.reduce((n, b) => n + b.length, 0) + 100, blobs };
}

function blob(seed: string, offset: number, compression: 'zstd' | 'none' = 'zstd'): IndexedBlob {
  return { id: hexId(seed), offset, length: 100 + (offset % 7), rawLength: 300 + offset, compression };
}

describe('BlobIndex', () => {
  it('agrees with a plain Map model over thousands of blobs, first location winning', () => {
    const index = new BlobIndex();
    const model = new Map<string, BlobLocation>();
    // 40 packs of 150 blobs (past the first growth of the entry arrays and of the hash table);
    // every 10th blob of a pack repeats one of the previous pack (a copy).
    for (let p = 0; p < 40; p++) {
      const blobs: IndexedBlob[] = [];
      for (let b = 0; b < 150; b++) {
        const seed = b % 10 === 0 && p > 0 ? `blob-${p - 1}-${b + 1}` : `blob-${p}-${b}`;
        blobs.push(blob(seed, b * 1000, b % 3 === 0 ? 'none' : 'zstd'));
      }
      const listed = pack(`pack-${p}`, p % 4 === 0 ? 'tree' : 'data', blobs);
      index.addPack(listed);
      for (const b of blobs) {
        if (model.has(b.id)) continue;
        const { id: _id, ...rest } = b;
        model.set(b.id, { packId: listed.id, type: listed.type, ...rest });
      }
    }
    expect(index.blobCount).toBe(model.size);
    for (const [id, loc] of model) {
      expect(index.has(id)).toBe(true);
      expect(index.get(id)).toEqual(loc);
    }
    // entries(): every distinct ID once, at its first location, in the order added.
    expect([...index.entries()]).toEqual([...model.entries()]);
    expect(index.get(hexId('never stored'))).toBeUndefined();
    expect(index.has(hexId('never stored'))).toBe(false);
  });

  it('keeps each pack’s full listing, copies included', () => {
    const index = new BlobIndex();
    const shared = blob('shared', 0);
    const first = pack('first', 'data', [shared, blob('a', 200)]);
    const second = pack('second', 'data', [blob('b', 0), { ...shared, offset: 500 }]);
    index.addPack(first);
    index.addPack(second);
    expect(index.get(shared.id)?.packId).toBe(first.id);
    expect(index.packBlobs(second.id)).toEqual(second.blobs);
    // The copy in the second pack, found by a scan of that pack's listing.
    expect(index.blobIn(second.id, shared.id)).toEqual({ ...shared, offset: 500 });
    expect(index.blobIn(first.id, hexId('b'))).toBeUndefined();
    expect(index.blobIn(hexId('no such pack'), shared.id)).toBeUndefined();
    const packs = index.indexedPacks();
    expect(packs.size).toBe(2);
    expect([...packs.keys()]).toEqual([first.id, second.id]);
    expect(packs.get(first.id)).toEqual(first);
    expect(packs.has(second.id)).toBe(true);
    expect(packs.get(hexId('nope'))).toBeUndefined();
    expect(index.pack(second.id)).toEqual({ type: 'data', size: second.size, blobs: 2 });
    expect([...index.packEntries()].map(([id]) => id)).toEqual([first.id, second.id]);
  });

  it('a pack listed again adds only the blobs its first listing lacked', () => {
    const index = new BlobIndex();
    const listed = pack('p', 'tree', [blob('x', 0)]);
    index.addPack(listed);
    index.addPack({ ...listed, blobs: [blob('x', 0), blob('y', 300)] });
    expect(index.blobCount).toBe(2);
    expect(index.get(hexId('y'))).toMatchObject({ packId: listed.id, type: 'tree', offset: 300 });
    expect(index.packBlobs(listed.id)).toEqual(listed.blobs);
  });

  it('finds nothing for strings that are not IDs, and refuses to index them', () => {
    const index = new BlobIndex();
    index.addPack(pack('p', 'data', [blob('x', 0)]));
    const id = hexId('x');
    for (const bad of ['', id.slice(0, 63), `${id}0`, `${id.slice(0, 62)}zz`, 'not hex at all']) {
      expect(index.has(bad)).toBe(false);
      expect(index.get(bad)).toBeUndefined();
    }
    expect(() => index.addPack(pack('q', 'data', [{ ...blob('y', 0), id: 'zz' }]))).toThrow(
      /invalid blob ID/,
    );
    expect(() => index.addPack(pack('r', 'data', [blob('z', 2 ** 32)]))).toThrow(/beyond 4 GiB/);
  });
});
