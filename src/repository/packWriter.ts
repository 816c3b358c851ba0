/**
 * Collects sealed blobs into packs (one open pack per blob type), closes a
 * pack when it reaches the target size and uploads it under the SHA-256 of
 * its bytes. At most `maxUploads` packs are uploading at once; adding to a
 * full pack waits for a slot, which is what pushes back on the producer.
 */
import type { Storage } from '../storage/types.js';
import type { BlobType } from './api.js';
import type { IndexedPack } from './indexFile.js';
import { packKey } from './layout.js';
import { buildPackTrailer, type PackEntry } from './pack.js';

export interface PackWriterOptions {
  storage: Storage;
  encryptionKey: Uint8Array;
  /** Close a pack once its blobs reach this many bytes. */
  packSize: number;
  maxUploads: number;
  /** Called after a pack is stored, in upload-completion order. */
  onPackStored: (pack: IndexedPack) => void;
  /** Called once when an upload fails (later add/flush calls throw the same error). */
  onFailure: (err: unknown) => void;
  /** Hex SHA-256 of a finished pack (may run on a worker; takes ownership of the buffer). */
  sha256: (pack: Buffer) => Promise<{ hex: string; data: Buffer }>;
}

interface OpenPack {
  parts: Buffer[];
  entries: PackEntry[];
  bytes: number;
}

export class PackWriter {
  private readonly open: Record<BlobType, OpenPack | undefined> = { data: undefined, tree: undefined };
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly opts: PackWriterOptions) {}

  /** Append one sealed blob (as the parts of sealParts); uploads the pack when it is full. */
  async add(
    type: BlobType,
    blob: { id: string; compression: PackEntry['compression']; rawLength: number },
    sealed: readonly Buffer[],
  ): Promise<void> {
    this.throwIfFailed();
    const pack = (this.open[type] ??= { parts: [], entries: [], bytes: 0 });
    const length = sealed.reduce((n, part) => n + part.length, 0);
    pack.entries.push({ ...blob, type, offset: pack.bytes, length });
    pack.parts.push(...sealed);
    pack.bytes += length;
    if (pack.bytes >= this.opts.packSize) await this.close(type);
  }

  /** Upload the partly filled packs and wait for every upload. */
  async flush(): Promise<void> {
    await this.close('data');
    await this.close('tree');
    while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
    this.throwIfFailed();
  }

  /** Drop the open (partly filled) packs and wait for uploads already started (for close without commit). */
  async abandon(): Promise<void> {
    this.open.data = undefined;
    this.open.tree = undefined;
    while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
  }

  /** Packs held in memory: open ones and those uploading. */
  get bufferedPacks(): number {
    return this.uploads.size + (this.open.data ? 1 : 0) + (this.open.tree ? 1 : 0);
  }

  private async close(type: BlobType): Promise<void> {
    const pack = this.open[type];
    if (!pack || pack.entries.length === 0) return;
    this.open[type] = undefined;
    while (this.uploads.size >= this.opts.maxUploads) await Promise.race(this.uploads);
    this.throwIfFailed();
    pack.parts.push(buildPackTrailer(this.opts.encryptionKey, pack.entries));
    const size = pack.bytes + pack.parts.at(-1)!.length;
    const whole = Buffer.concat(pack.parts, size);
    pack.parts = []; // the pieces are not needed any more; let them go while this pack uploads
    // Hashing happens inside the upload promise so the next pack can fill meanwhile.
    const upload = this.opts
      .sha256(whole)
      .then(async ({ hex: id, data: bytes }) => {
        await this.opts.storage.put(packKey(id), bytes, { size });
        return id;
      })
      .then((id) =>
        this.opts.onPackStored({
          id,
          type,
          size,
          blobs: pack.entries.map((e) => ({
            id: e.id,
            offset: e.offset,
            length: e.length,
            rawLength: e.rawLength,
            compression: e.compression,
          })),
        }),
      )
      .catch((err: unknown) => {
        if (this.failure !== undefined) return;
        this.failure = err;
        this.opts.onFailure(err);
      })
      .finally(() => this.uploads.delete(upload));
    this.uploads.add(upload);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
