/**
 * The contract between the repository engine and its users (sources, app use
 * cases). Sources never see packs, keys or storage: they chunk streams, save
 * blobs, build trees and commit one snapshot.
 */
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
}

export interface SaveBlobResult {
  id: BlobId;
  /** False when the blob was already in the repository (dedup). */
  stored: boolean;
  /** Plaintext length. */
  length: number;
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
  saveBlob(type: BlobType, data: Uint8Array): Promise<SaveBlobResult>;
  /** Read, decrypt and verify a blob; throws IntegrityError on any mismatch. */
  loadBlob(id: BlobId): Promise<Uint8Array>;
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
