/**
 * The contract between the repository engine and its users (sources, app use
 * cases). Sources never see packs, keys or storage: they chunk streams, save
 * blobs, build trees and commit one snapshot.
 */
import type { SmallFileStore } from './smallFiles.js';
import type { OpenFailure, WriteFiles } from './workerPool.js';
import type { Readable } from 'node:stream';
import type { BlobId, Tree } from './tree.js';

export type BlobType = 'data' | 'tree';

/** What a snapshot records (docs/repository-format.md §Snapshots). */
export interface SnapshotRecord {
  /** Format version of this record. */
  v: 1;
  job: string;
  /** Job kind: files | postgres | mysql | snapshot | image. */
  kind: string;
  host: string;
  /** ISO-8601 start and end of the backup run. */
  startedAt: string;
  endedAt: string;
  /** Root tree of the backed-up content. */
  tree: BlobId;
  /** The paths or sources that were backed up, as the user named them. */
  paths: string[];
  tags: string[];
  /** True when some entries were skipped (unreadable, changed while read): exit code 3. */
  partial: boolean;
  /** Warnings that made the snapshot partial (redacted). */
  warnings?: string[];
  /** Snapshot this one was based on (for incremental bookkeeping), if any. */
  parent?: string;
  /** Set on copies (`lifeboat copy`): the repository ID and snapshot ID of the original. */
  copiedFrom?: { repository: string; snapshot: string };
  /** Source fingerprint: counts, bytes, per-table row counts, image SHA-256 … (kind-specific). */
  fingerprint: Record<string, unknown>;
  stats: {
    files: number;
    dirs: number;
    bytes: number;
    addedBytes: number;
    storedBytes: number;
    blobs: number;
  };
  toolVersion: string;
}

/** A snapshot as listed: its ID (content-derived, hex) and record. */
export interface SnapshotEntry extends SnapshotRecord {
  id: string;
}

/** Streaming content-defined chunker keyed by the repository. */
export interface Chunker {
  /** Cut a stream into chunks (~1 MiB average); the last chunk may be short. */
  chunks(input: Readable | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
  /** Optional fast path: a synchronous cutter that also takes zero runs by length (chunker.ts ChunkCutter). */
  cutter?(): ChunkSink;
  /**
   * Optional: the same cutter, emitting each chunk as the parts it was cut
   * from instead of a copy, for Repo.saveChunkParts (which copies only the
   * chunks it has to store).
   */
  partsCutter?(): ChunkSink<ChunkParts>;
}

/** A chunk of zero bytes only, cut from zero runs given by length: nothing to store. */
export interface ZeroChunk {
  zero: number;
}

/**
 * A chunk as the parts it was cut from, in order: views of the pieces pushed
 * (still the caller's memory) and lengths of zero runs. Valid only until the
 * caller reuses those pieces.
 */
export interface ChunkParts {
  readonly parts: readonly (Uint8Array | number)[];
  /** Total bytes: the chunk's length. */
  readonly length: number;
}

/**
 * Synchronous content-defined chunking of one stream, fed piece by piece.
 * Chunks (by default own ArrayBuffers, transferable; ChunkParts from a parts
 * cutter) or zero chunks are appended to `out`; the boundaries do not depend
 * on how the input is split, nor on whether zeros come as bytes or as
 * pushZeros lengths.
 */
export interface ChunkSink<C = Uint8Array> {
  pushInto(piece: Uint8Array, out: (C | ZeroChunk)[]): void;
  pushZeros(length: number, out: (C | ZeroChunk)[]): void;
  /** The last, short chunk (if any bytes are left). */
  endChunk(): C | ZeroChunk | undefined;
  /** Bytes of the chunk in progress: at most these last bytes pushed are still referenced. */
  readonly pendingBytes: number;
}

export interface SaveBlobOptions {
  /**
   * The caller gives `data` away: the repository may move its memory to a
   * worker thread (it becomes detached, length 0) instead of copying it. Only
   * a buffer that owns its whole ArrayBuffer can be moved; others are copied.
   */
  transfer?: boolean;
  /**
   * zstd level for this blob instead of the repository's (database dumps use
   * a faster one, see dumpStream.ts). A hint: small blobs (under 16 KiB) use
   * the repository's. Readers need not know it: a zstd frame decodes the same
   * whatever level made it.
   */
  compressionLevel?: number;
  /**
   * Compress at a fast level first and at compressionLevel only when the
   * fast try shrinks the data a lot (workerPool.ts FAST_FIRST_LEVEL): for
   * dumps of text that compresses moderately, like MySQL rows of random
   * digits. A hint, as compressionLevel.
   */
  fastFirst?: boolean;
}

/** A SHA-256 computed off the calling thread (see WorkerPool.hashStream). */
export interface ContentHasher {
  /**
   * Hash `data` next; resolves once it was read (SharedArrayBuffer views are
   * read in place, others copied). With `give`, the caller is done with
   * `data`: a buffer spanning its whole ArrayBuffer moves to the worker
   * instead of being copied (and is detached here).
   */
  update(data: Uint8Array, give?: boolean): Promise<void>;
  digest(): Promise<string>;
}

export interface SaveBlobResult {
  id: BlobId;
  /** False when the blob was already in the repository (dedup). */
  stored: boolean;
  /** Plaintext length. */
  length: number;
}

/**
 * A blob handed over still sealed (LoadBlobsOptions.keepSealed): `data` is
 * its stored record, to be opened by a worker job that checks it against
 * these (see WorkerPool's writeFiles).
 */
export interface SealedBlob {
  id: BlobId;
  associatedData: string;
  compressed: boolean;
  rawLength: number;
  /** The error to report when the record fails a check. */
  problem(failure: OpenFailure): Error;
}

export interface LoadBlobsOptions {
  /** Blobs to hand over sealed (when the repository can): their consumer opens them elsewhere. */
  keepSealed?(id: BlobId): boolean;
  /**
   * Blobs whose every use checks the plaintext against a content hash of its own (restored files with a
   * recorded SHA-256): opened without recomputing the keyed ID (OpenRequest.contentChecked). A consumer of
   * sealed blobs decides that for itself.
   */
  contentChecked?(id: BlobId): boolean;
}

/** A repository opened with a key. */
export interface Repo {
  readonly id: string;
  readonly url: string;
  chunker(): Chunker;
  /** Compute the ID of plaintext without storing it. */
  blobId(data: Uint8Array): BlobId;
  hasBlob(id: BlobId): boolean;
  /** Save a blob unless already present; compression, encryption and packing happen inside. */
  saveBlob(type: BlobType, data: Uint8Array, opts?: SaveBlobOptions): Promise<SaveBlobResult>;
  /**
   * Optional: saveBlob('data', …) of a chunk given as its parts. The ID is
   * computed over the parts and the bytes are copied only when the blob is
   * new; the caller may reuse the parts' memory as soon as this returns (its
   * promise may still be pending).
   */
  saveChunkParts?(chunk: ChunkParts, opts?: SaveBlobOptions): Promise<SaveBlobResult>;
  /** Optional: a SHA-256 computed on a worker thread (whole-file hashes of large files). */
  contentHasher?(): ContentHasher;
  /**
   * Optional: small files read, hashed and sealed by the repository's workers
   * in batches (smallFiles.ts); undefined when it cannot for this repository.
   */
  smallFileStore?(openFlags: number): SmallFileStore | undefined;
  /** Optional: restored small files written by the repository's workers in batches (restore.ts). */
  smallFileWriter?(): WriteFiles | undefined;
  /** Read, decrypt and verify a blob; throws IntegrityError on any mismatch. */
  loadBlob(id: BlobId): Promise<Uint8Array>;
  /** Plaintext length of a stored blob, when known without reading it (optional: batch restore). */
  blobLength?(id: BlobId): number | undefined;
  /**
   * Load many blobs with few storage reads (optional: batch restore). `consume`
   * gets every distinct ID once with its plaintext or the error loadBlob would throw.
   */
  loadBlobs?(
    ids: Iterable<BlobId>,
    consume: (
      id: BlobId,
      result: { ok: true; data: Buffer; sealed?: SealedBlob } | { ok: false; error: unknown },
    ) => void | Promise<void>,
    opts?: LoadBlobsOptions,
  ): Promise<void>;
  saveTree(tree: Tree): Promise<BlobId>;
  loadTree(id: BlobId): Promise<Tree>;
  /** Write all pending packs and the index. Must be called before saveSnapshot. */
  flush(): Promise<void>;
  /** The commit point: flushes, then writes the snapshot object. Returns its ID. */
  saveSnapshot(record: SnapshotRecord): Promise<string>;
  listSnapshots(): Promise<SnapshotEntry[]>;
  /** Resolve a full ID, a unique prefix (>= 4 chars) or `latest` (optionally for a job). */
  findSnapshot(ref: string, job?: string): Promise<SnapshotEntry>;
  close(): Promise<void>;
}
