/**
 * TEST DOUBLE of the `Repo` interface (src/repository/api.ts) for unit tests of
 * sources: blobs live in memory, IDs are plain SHA-256 (not keyed), the chunker
 * cuts fixed-size pieces, nothing is compressed or encrypted. It is not the
 * repository engine and must never be used outside tests. It does verify every
 * blob on load, so tests can corrupt a blob and expect an IntegrityError.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { IntegrityError } from '../../src/errors.js';
import type {
  BlobType,
  Chunker,
  Repo,
  SaveBlobResult,
  SnapshotEntry,
  SnapshotRecord,
} from '../../src/repository/api.js';
import type { BlobId, Tree } from '../../src/repository/tree.js';

/** Fixed-size chunker: every chunk is `size` bytes except the last. */
export function fixedSizeChunker(size: number): Chunker {
  return {
    async *chunks(input: Readable | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
      let pending: Buffer[] = [];
      let pendingLength = 0;
      for await (const piece of input as AsyncIterable<Uint8Array>) {
        let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        while (pendingLength + buf.length >= size) {
          const take = size - pendingLength;
          pending.push(buf.subarray(0, take));
          yield Buffer.concat(pending);
          pending = [];
          pendingLength = 0;
          buf = buf.subarray(take);
        }
        if (buf.length > 0) {
          // Copy: the producer may reuse its buffer.
          pending.push(Buffer.from(buf));
          pendingLength += buf.length;
        }
      }
      if (pendingLength > 0) yield Buffer.concat(pending);
    },
  };
}

export interface FakeRepoOptions {
  chunkSize?: number;
  /** Artificial latency of saveBlob in ms (to exercise concurrency). */
  saveDelayMs?: number;
}

/** In-memory stand-in for a repository (see file comment). */
export class FakeRepo implements Repo {
  readonly id = 'fake-repo';
  readonly url = 'memory://fake';
  readonly blobs = new Map<BlobId, { type: BlobType; data: Buffer }>();
  readonly snapshots: SnapshotEntry[] = [];
  saveCalls = 0;
  maxInFlight = 0;
  private inFlight = 0;
  private readonly chunkSize: number;
  private readonly saveDelayMs: number;

  constructor(opts: FakeRepoOptions = {}) {
    this.chunkSize = opts.chunkSize ?? 64 * 1024;
    this.saveDelayMs = opts.saveDelayMs ?? 0;
  }

  chunker(): Chunker {
    return fixedSizeChunker(this.chunkSize);
  }

  blobId(data: Uint8Array): BlobId {
    return createHash('sha256').update(data).digest('hex');
  }

  hasBlob(id: BlobId): boolean {
    return this.blobs.has(id);
  }

  async saveBlob(type: BlobType, data: Uint8Array): Promise<SaveBlobResult> {
    this.saveCalls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.saveDelayMs > 0) await new Promise((r) => setTimeout(r, this.saveDelayMs));
      const id = this.blobId(data);
      if (this.blobs.has(id)) return { id, stored: false, length: data.length };
      this.blobs.set(id, { type, data: Buffer.from(data) });
      return { id, stored: true, length: data.length };
    } finally {
      this.inFlight--;
    }
  }

  async loadBlob(id: BlobId): Promise<Uint8Array> {
    const blob = this.blobs.get(id);
    if (!blob) throw new IntegrityError(`blob ${id} is missing from the fake repository`);
    if (this.blobId(blob.data) !== id) throw new IntegrityError(`blob ${id} does not match its ID`);
    return Buffer.from(blob.data);
  }

  async saveTree(tree: Tree): Promise<BlobId> {
    return (await this.saveBlob('tree', Buffer.from(JSON.stringify(tree)))).id;
  }

  async loadTree(id: BlobId): Promise<Tree> {
    return JSON.parse(Buffer.from(await this.loadBlob(id)).toString('utf8')) as Tree;
  }

  /** Flip one byte of a stored blob so that loading it fails verification. */
  corrupt(id: BlobId): void {
    const blob = this.blobs.get(id);
    if (!blob) throw new Error(`no blob ${id}`);
    blob.data[0] = (blob.data[0] ?? 0) ^ 0xff;
  }

  /** Forget a blob, as if a pack had been pruned. */
  forget(id: BlobId): void {
    this.blobs.delete(id);
  }

  async flush(): Promise<void> {}

  async saveSnapshot(record: SnapshotRecord): Promise<string> {
    const id = createHash('sha256').update(JSON.stringify(record)).digest('hex');
    this.snapshots.push({ ...record, id });
    return id;
  }

  async listSnapshots(): Promise<SnapshotEntry[]> {
    return [...this.snapshots];
  }

  async findSnapshot(ref: string): Promise<SnapshotEntry> {
    const found = ref === 'latest' ? this.snapshots.at(-1) : this.snapshots.find((s) => s.id.startsWith(ref));
    if (!found) throw new Error(`no snapshot ${ref}`);
    return found;
  }

  async close(): Promise<void> {}
}
