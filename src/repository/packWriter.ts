/**
 * Collects sealed blobs into packs (one open pack per blob type), closes a
 * pack when it reaches the target size and uploads it under the SHA-256 of
 * its bytes. At most `maxUploads` packs are uploading at once; adding to a
 * full pack waits for a slot, which is what pushes back on the producer.
 *
 * A pack is built in one buffer that each sealed blob is copied into as it
 * arrives (no concatenation of the whole pack at the end), and that buffer is
 * reused for a later pack once its upload is done: its pages are already
 * mapped, so filling it again costs a memcpy and no page faults.
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
  /**
   * Hex SHA-256 of a finished pack (may run on a worker). Gets a view from
   * offset 0 of a buffer it may take whole; returns a view of the same bytes.
   */
  sha256: (pack: Buffer) => Promise<{ hex: string; data: Buffer }>;
}

interface OpenPack {
  buf: Buffer;
  entries: PackEntry[];
  bytes: number;
}

/** First size of a tree pack's buffer; it doubles as needed (tree packs are usually small). */
const INITIAL_TREE_BUFFER = 1024 * 1024;
/** Room past the target size for the blob that fills a data pack (a chunk is at most 4 MiB by default). */
const DATA_HEADROOM = 4 * 1024 * 1024 + 64 * 1024;
/** Pack buffers kept for reuse after their upload. */
const SPARE_BUFFERS = 1;

export class PackWriter {
  private readonly open: Record<BlobType, OpenPack | undefined> = { data: undefined, tree: undefined };
  private readonly uploads = new Set<Promise<void>>();
  private readonly spare: Buffer[] = [];
  private failure: unknown;

  constructor(private readonly opts: PackWriterOptions) {}

  /** Append one sealed blob (as the parts of sealParts); uploads the pack when it is full. */
  async add(
    type: BlobType,
    blob: { id: string; compression: PackEntry['compression']; rawLength: number },
    sealed: readonly Buffer[],
  ): Promise<void> {
    this.throwIfFailed();
    const pack = (this.open[type] ??= { buf: this.takeBuffer(type), entries: [], bytes: 0 });
    const length = sealed.reduce((n, part) => n + part.length, 0);
    pack.entries.push({ ...blob, type, offset: pack.bytes, length });
    this.append(pack, sealed);
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
    this.append(pack, [buildPackTrailer(this.opts.encryptionKey, pack.entries)]);
    const size = pack.bytes;
    // Hashing happens inside the upload promise so the next pack can fill meanwhile.
    const upload = this.opts
      .sha256(pack.buf.subarray(0, size))
      .then(async ({ hex: id, data: bytes }) => {
        await this.opts.storage.put(packKey(id), bytes, { size });
        // Stored (the storage keeps no reference to the body): the buffer can take another data pack.
        const whole = Buffer.from(bytes.buffer, 0, bytes.buffer.byteLength);
        if (type === 'data' && this.spare.length < SPARE_BUFFERS && whole.length >= this.opts.packSize) {
          this.spare.push(whole);
        }
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

  /** Copy `parts` to the end of the pack, growing its buffer when they do not fit. */
  private append(pack: OpenPack, parts: readonly Uint8Array[]): void {
    const length = parts.reduce((n, part) => n + part.length, 0);
    if (pack.bytes + length > pack.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(pack.bytes + length, 2 * pack.buf.length));
      pack.buf.copy(grown, 0, 0, pack.bytes);
      pack.buf = grown;
    }
    for (const part of parts) {
      pack.buf.set(part, pack.bytes);
      pack.bytes += part.length;
    }
  }

  /**
   * A buffer for a new pack, owning its ArrayBuffer: a spare one for data, or
   * a new one. Only the pages written to take memory, so a data pack's buffer
   * is allocated at its full size (no growing copies).
   */
  private takeBuffer(type: BlobType): Buffer {
    if (type === 'tree') return Buffer.allocUnsafeSlow(INITIAL_TREE_BUFFER);
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.opts.packSize + DATA_HEADROOM);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
