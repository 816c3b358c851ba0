/**
 * The in-memory index: blob ID → location, merged from every index file at
 * open and extended as this process uploads packs. Duplicates are fine: the
 * first location seen wins (any copy of a blob is as good as another).
 */
import type { BlobType } from './api.js';
import type { IndexedPack } from './indexFile.js';
import type { Compression } from './pack.js';

export interface BlobLocation {
  packId: string;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
  compression: Compression;
}

export interface PackSummary {
  type: BlobType;
  size: number;
  blobs: number;
}

export class BlobIndex {
  private readonly blobs = new Map<string, BlobLocation>();
  private readonly packs = new Map<string, PackSummary>();

  /** Record every blob of a pack (keeps earlier locations of blobs already known). */
  addPack(pack: IndexedPack): void {
    if (!this.packs.has(pack.id))
      this.packs.set(pack.id, { type: pack.type, size: pack.size, blobs: pack.blobs.length });
    for (const b of pack.blobs) {
      if (this.blobs.has(b.id)) continue;
      this.blobs.set(b.id, {
        packId: pack.id,
        type: pack.type,
        offset: b.offset,
        length: b.length,
        rawLength: b.rawLength,
        compression: b.compression,
      });
    }
  }

  get(id: string): BlobLocation | undefined {
    return this.blobs.get(id);
  }

  has(id: string): boolean {
    return this.blobs.has(id);
  }

  get blobCount(): number {
    return this.blobs.size;
  }

  /** Every known blob and where it is. */
  entries(): IterableIterator<[string, BlobLocation]> {
    return this.blobs.entries();
  }

  /** Every pack some index file lists. */
  packEntries(): IterableIterator<[string, PackSummary]> {
    return this.packs.entries();
  }

  hasPack(id: string): boolean {
    return this.packs.has(id);
  }
}
