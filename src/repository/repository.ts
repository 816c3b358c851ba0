/**
 * The repository engine: `initRepository` / `openRepository` return a
 * Repository implementing the Repo contract of api.ts, plus the journal,
 * locks, key slots and statistics. Format: docs/repository-format.md.
 *
 * Write path of a blob (saveBlob):
 *   calling thread: HMAC → dedup check → (wait for byte budget) → one worker
 *   job per blob: zstd + AES-GCM seal, the blob's buffer moved, not copied
 *   (workerPool.ts) → [in submission order] pack writer → pack upload
 *   (≤ 4 at once) → in-memory index → index file (every 32 packs and at
 *   flush). saveBlob returns as soon as the blob is accepted; errors of the
 *   background steps surface at the next saveBlob, flush or saveSnapshot.
 */
import { IntegrityError, RepositoryMissingError } from '../errors.js';
import type { Clock } from '../platform/clock.js';
import { silentLogger, type Logger } from '../platform/logger.js';
import { StorageConflictError, StorageNotFoundError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { VERSION } from '../version.js';
import type {
  BlobType,
  ChunkParts,
  LoadBlobsOptions,
  SealedBlob,
  Chunker,
  ContentHasher,
  Repo,
  SaveBlobOptions,
  SaveBlobResult,
  SnapshotEntry,
  SnapshotRecord,
} from './api.js';
import { BlobIndex, type BlobLocation } from './blobIndex.js';
import { openRequestFor, openStoredBlob, storedBlobError } from './blobReader.js';
import { PackWindows } from './packWindows.js';
import {
  planPackReads,
  readPackRanges,
  type BlobConsumer,
  type BlobPlace,
  type PackRange,
} from './packReadPlan.js';
import { ByteBudget } from './byteBudget.js';
import { SmallFileStore } from './smallFiles.js';
import {
  DEFAULT_CHUNKER_PARAMS,
  deriveGearTable,
  FastCdcChunker,
  joinParts,
  type ChunkerParams,
} from './chunker.js';
import { WorkerPool, type SmallFileRead, type WriteFiles } from './workerPool.js';
import {
  associatedData,
  computeBlobId,
  computeBlobIdOfParts,
  generateMasterKey,
  randomHex,
  type MasterKey,
} from './crypto.js';
import { InvalidRepositoryInputError, RepositoryExistsError, SnapshotNotFoundError } from './errors.js';
import { readIndexFile, writeIndexFile, type IndexedPack } from './indexFile.js';
import {
  appendJournal,
  listJournal,
  type JournalInput,
  type JournalProblem,
  type JournalRecord,
  type ListJournalOptions,
} from './journal.js';
import {
  addKey,
  createKeyFile,
  listKeys,
  removeKey,
  unlockMasterKey,
  writeKeyFile,
  type DamagedKeyFile,
  type KeyInfo,
  type KeySlotContext,
  type ScryptParams,
} from './keys.js';
import {
  CONFIG_KEY,
  INDEX_PREFIX,
  keyFileKey,
  packKey,
  parseIndexKey,
  parseSnapshotKey,
  snapshotKey,
  SNAPSHOTS_PREFIX,
} from './layout.js';
import {
  acquireLock,
  listLocks,
  removeLocks,
  type AcquireLockOptions,
  type LockContext,
  type LockInfo,
  type RepositoryLock,
} from './locks.js';
import { PackWriter } from './packWriter.js';
import {
  buildConfig,
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_PACK_SIZE,
  openParameters,
  parseConfigFile,
  serializeConfig,
  type ConfigFile,
  type RepositoryParameters,
} from './repoConfig.js';
import {
  compareSnapshots,
  encodeSnapshot,
  readSnapshot,
  resolveSnapshotRef,
  validateSnapshotRecord,
} from './snapshots.js';
import { listKeys as listStorageKeys, mapLimit, readObject } from './storageIo.js';
import { decodeTree, encodeTree } from './trees.js';
import type { BlobId, Tree } from './tree.js';

/** Options for opening (and creating) a repository. */
export interface RepositoryOptions {
  clock: Clock;
  /** This host's name, recorded in locks, journal records and new key slots. */
  host: string;
  /** The OS user, recorded in locks and new key slots. */
  user?: string;
  /** Recorded in locks; defaults to this process. */
  pid?: number;
  /** Receives warnings about damaged index files and snapshots. */
  logger?: Logger;
  /** Target pack size for this writer; defaults to the repository's (16 MiB). */
  packSize?: number;
  /** Compression worker threads; default one per core (at most 4); 0 compresses on the calling thread. */
  compressionWorkers?: number;
  /** Bytes of accepted blobs that may wait for compression and packing (default 64 MiB). */
  maxInFlightBytes?: number;
  /** Try this key slot first. */
  keyId?: string;
  /** Recorded in journal records; defaults to the lifeboat version. */
  toolVersion?: string;
}

export interface InitOptions extends RepositoryOptions {
  /** scrypt parameters for the first key slot (tests use cheap ones). */
  kdf?: ScryptParams;
  chunker?: ChunkerParams;
  compressionLevel?: number;
}

/** Figures for `repo stats`. */
export interface RepositoryStats {
  snapshots: number;
  packs: number;
  dataPacks: number;
  treePacks: number;
  blobs: number;
  dataBlobs: number;
  treeBlobs: number;
  indexFiles: number;
  /** Bytes of all indexed pack objects. */
  storedBytes: number;
  /** Plaintext bytes of all unique blobs. */
  rawBytes: number;
  /** Sum of the logical sizes of all snapshots (what a restore of each would write). */
  logicalBytes: number;
  /** logicalBytes / rawBytes: how much deduplication saves (1 = nothing). */
  dedupRatio: number;
  /** rawBytes / storedBytes: how much compression saves, including encryption overhead. */
  compressionRatio: number;
}

/** What this session has written so far (for SnapshotRecord.stats; exact after flush). */
export interface WriteStats {
  /** New blobs accepted (deduplicated ones not counted). */
  blobs: number;
  /** Plaintext bytes of those blobs. */
  rawBytes: number;
  /** Bytes they take in packs after compression and encryption (blobs packed so far). */
  storedBytes: number;
  /** Packs uploaded. */
  packs: number;
}

/** An object that could not be used, by name, and why (index files, snapshots). */
export interface ObjectProblem {
  key: string;
  reason: string;
}

/**
 * Everything check and prune need that ordinary users must not touch. Only
 * src/repository/maintenance.ts should call Repository.internals().
 */
export interface RepositoryInternals {
  storage: Storage;
  master: MasterKey;
  pool: WorkerPool;
  index: BlobIndex;
  /** IDs of the index files merged into `index`. */
  indexFiles: ReadonlySet<string>;
  indexProblems: readonly ObjectProblem[];
  parameters: RepositoryParameters;
  clock: Clock;
  logger: Logger;
}

const INDEX_EVERY_PACKS = 32;
/** Packs uploading at once (fewer where the storage says so); with 16 MiB packs, at most 64 MiB in uploads. */
const MAX_UPLOADS = 4;
/**
 * Bytes accepted but not yet sealed into a pack. 16 MiB still keeps the workers busy (they seal ~1 MiB
 * chunks); 64 MiB only raised the peak RSS (measured on a 512 MiB file: 318–354 → 255–261 MiB with 2 local
 * uploads), and 32 MiB peaked ~20 MiB higher than 16 at the same wall and CPU time (a copy of /usr/share:
 * 381–390 → 363–369 MiB; a 1 GiB file: 269–275 → 238–265 MiB; docs/performance.md).
 */
const DEFAULT_IN_FLIGHT_BYTES = 16 * 1024 * 1024;

const iso = (clock: Clock) => new Date(clock.now()).toISOString();

/** Read and parse `config`; RepositoryMissingError when there is none. */
async function readConfig(storage: Storage): Promise<ConfigFile> {
  let bytes: Buffer;
  try {
    bytes = await readObject(storage, CONFIG_KEY);
  } catch (err) {
    if (err instanceof StorageNotFoundError) {
      throw new RepositoryMissingError(
        `no lifeboat repository at ${storage.url}; create one with \`lifeboat repo init\``,
        {
          hint: 'Check the repository URL in the configuration, or create the repository with `lifeboat repo init`.',
        },
      );
    }
    throw err;
  }
  return parseConfigFile(bytes, storage.url);
}

/** The error for a blob whose pack is gone (read side: loadBlobs, loadTree). */
function missingPack(url: string, key: string, blob: string, cause: unknown, more = ''): IntegrityError {
  return new IntegrityError(`pack ${key} holding blob ${blob}${more} is missing from ${url}`, {
    hint: 'Run `lifeboat check`; restore the pack from another copy of the repository.',
    details: { blob, pack: key },
    cause,
  });
}

/** Create a new repository in an empty location and open it. */
export async function initRepository(
  storage: Storage,
  password: string,
  opts: InitOptions,
): Promise<Repository> {
  if (await storage.stat(CONFIG_KEY)) throw new RepositoryExistsError(storage.url);
  const master = generateMasterKey();
  const id = randomHex(32);
  const createdAt = iso(opts.clock);
  const keyFile = await createKeyFile(master, password, {
    repositoryId: id,
    host: opts.host,
    user: opts.user ?? '',
    createdAt,
    ...(opts.kdf ? { kdf: opts.kdf } : {}),
  });
  const { file, parameters } = buildConfig(master, {
    id,
    createdAt,
    chunker: opts.chunker ?? DEFAULT_CHUNKER_PARAMS,
    packSize: opts.packSize ?? DEFAULT_PACK_SIZE,
    compressionLevel: opts.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL,
  });
  // The key slot first, then config: config is the commit point of init. A
  // crash in between leaves a key file for an id no config names (ignored).
  await writeKeyFile(storage, keyFile);
  try {
    await storage.put(CONFIG_KEY, serializeConfig(file), { ifNoneMatch: true });
  } catch (err) {
    await storage.delete(keyFileKey(keyFile.id));
    if (err instanceof StorageConflictError) throw new RepositoryExistsError(storage.url, { cause: err });
    throw err;
  }
  const repo = new Repository(storage, file, parameters, master, keyFile.id, opts);
  return repo;
}

/** Open an existing repository with a password. */
export async function openRepository(
  storage: Storage,
  password: string,
  opts: RepositoryOptions,
): Promise<Repository> {
  const config = await readConfig(storage);
  const { master, keyId } = await unlockMasterKey(storage, config.id, password, opts.keyId);
  const parameters = openParameters(master, config, storage.url);
  const repo = new Repository(storage, config, parameters, master, keyId, opts);
  await repo.reloadIndex();
  return repo;
}

/** An open repository. Create with initRepository or openRepository. */
export class Repository implements Repo {
  readonly id: string;
  readonly url: string;
  /** The key slot this session was opened with. */
  readonly keyId: string;

  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly host: string;
  private readonly user: string | undefined;
  private readonly pid: number;
  private readonly toolVersion: string;

  private readonly index = new BlobIndex();
  private readonly indexFiles = new Set<string>();
  private indexProblems: ObjectProblem[] = [];
  /** Blobs accepted by saveBlob but not yet in an uploaded pack. */
  private readonly pending = new Set<string>();
  /** Uploaded packs not yet listed in an index file. */
  private unindexed: IndexedPack[] = [];
  private readonly indexWrites = new Set<Promise<void>>();
  /** Appends to packs happen in submission order along this chain. */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private closed = false;
  private readonly written: WriteStats = { blobs: 0, rawBytes: 0, storedBytes: 0, packs: 0 };

  private readonly pool: WorkerPool;
  private readonly budget: ByteBudget;
  private readonly packs: PackWriter;
  private gear: Int32Array | undefined;

  private readonly snapshotCache = new Map<string, SnapshotEntry>();
  private readonly treeWindows = new PackWindows((packId, offset, length) =>
    readObject(this.storage, packKey(packId), { offset, length }),
  );
  private snapshotProblems: (ObjectProblem & { error: IntegrityError })[] = [];
  private readonly heldLocks = new Set<RepositoryLock>();

  /** Use initRepository / openRepository. */
  constructor(
    private readonly storage: Storage,
    readonly config: ConfigFile,
    readonly parameters: RepositoryParameters,
    private readonly master: MasterKey,
    keyId: string,
    opts: RepositoryOptions,
  ) {
    this.id = config.id;
    this.url = storage.url;
    this.keyId = keyId;
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    this.host = opts.host;
    this.user = opts.user;
    this.pid = opts.pid ?? process.pid;
    this.toolVersion = opts.toolVersion ?? VERSION;
    this.pool = new WorkerPool({
      level: parameters.compression.level,
      sealKey: master.encryption,
      blobIdKey: master.blobId,
      ...(opts.compressionWorkers === undefined ? {} : { workers: opts.compressionWorkers }),
    });
    this.budget = new ByteBudget(opts.maxInFlightBytes ?? DEFAULT_IN_FLIGHT_BYTES);
    this.packs = new PackWriter({
      storage,
      encryptionKey: master.encryption,
      packSize: opts.packSize ?? parameters.packSize,
      maxUploads: Math.max(
        1,
        Math.min(storage.capabilities.packUploads ?? MAX_UPLOADS, storage.capabilities.maxConnections),
      ),
      onPackStored: (pack) => this.packStored(pack),
      onFailure: (err) => this.fail(err),
      sha256: (pack) => this.pool.sha256(pack, true),
    });
  }

  // ── Blobs ────────────────────────────────────────────────────────────

  /** The repository's content-defined chunker (secret gear table). */
  chunker(): Chunker {
    this.gear ??= deriveGearTable(this.master.chunkerSeed);
    return new FastCdcChunker(this.gear, this.parameters.chunker, (length) =>
      this.pool.chunkBuffers.take(length),
    );
  }

  /** Keyed blob ID of `data` (nothing is stored). */
  blobId(data: Uint8Array): BlobId {
    return computeBlobId(this.master.blobId, data);
  }

  /** True when the blob is in the repository or accepted by this session. */
  hasBlob(id: BlobId): boolean {
    return this.index.has(id) || this.pending.has(id);
  }

  /** A SHA-256 computed on a worker thread, for whole-file hashes. */
  contentHasher(): ContentHasher {
    return this.pool.hashStream();
  }

  /**
   * A store that has the workers read, hash and seal small files in batches
   * (smallFiles.ts), opening them with `openFlags`; undefined when this
   * repository cannot: no workers, or a chunker whose minimum size would cut
   * a file below SmallFileStore.MAX_SIZE (then it would not be one chunk).
   */
  smallFileStore(openFlags: number): SmallFileStore | undefined {
    this.throwIfUnusable();
    if (this.pool.workerCount === 0 || this.parameters.chunker.minSize < SmallFileStore.MAX_SIZE)
      return undefined;
    return new SmallFileStore(this.pool, associatedData.blob('data', ''), openFlags, (files, records) =>
      this.acceptSealedFiles(files, records),
    );
  }

  /**
   * Restored small files written by the workers (WorkerPool.writeFiles), for
   * a restore that has many; undefined without workers.
   */
  smallFileWriter(): WriteFiles | undefined {
    if (this.pool.workerCount === 0) return undefined;
    return (writes, contents, names) => this.pool.writeFiles(writes, contents, names);
  }

  /**
   * Pack the records of a readFiles batch whose blobs are new (marked pending
   * at once, so a blob read twice is stored once); the others are dropped.
   * Returns, per file, whether its blob was new. The records count against
   * the in-flight budget until packed.
   */
  private async acceptSealedFiles(files: readonly SmallFileRead[], records: Buffer): Promise<boolean[]> {
    this.throwIfUnusable();
    const stored: boolean[] = [];
    const fresh: { id: BlobId; rawLength: number; record: Buffer; compressed: boolean }[] = [];
    let offset = 0;
    for (const file of files) {
      if (file.error || file.id === undefined) {
        stored.push(false);
        continue;
      }
      const record = records.subarray(offset, offset + file.recordLength!);
      offset += record.length;
      const isNew = !this.index.has(file.id) && !this.pending.has(file.id);
      stored.push(isNew);
      if (!isNew) continue;
      this.pending.add(file.id);
      fresh.push({ id: file.id, rawLength: file.size, record, compressed: file.compressed === true });
    }
    if (fresh.length === 0) return stored;
    const bytes = fresh.reduce((n, blob) => n + blob.record.length, 0);
    try {
      await this.budget.acquire(bytes);
    } catch (err) {
      for (const blob of fresh) this.pending.delete(blob.id);
      throw err;
    }
    for (const blob of fresh) {
      this.written.blobs++;
      this.written.rawBytes += blob.rawLength;
      this.written.storedBytes += blob.record.length;
    }
    this.tail = this.tail.then(async () => {
      try {
        for (const { id, rawLength, record, compressed } of fresh) {
          if (this.failure !== undefined) return;
          await this.packs.add('data', { id, compression: compressed ? 'zstd' : 'none', rawLength }, [
            record,
          ]);
        }
      } catch (err) {
        this.fail(err);
      } finally {
        this.budget.release(bytes);
      }
    });
    return stored;
  }

  /**
   * Accept a blob for storage unless it is already there; returns once
   * accepted (see flush). Without `transfer` the caller may reuse `data` as
   * soon as this returns (it is copied first); with it, `data` is given away.
   */
  async saveBlob(type: BlobType, data: Uint8Array, opts: SaveBlobOptions = {}): Promise<SaveBlobResult> {
    this.throwIfUnusable();
    if (type !== 'data' && type !== 'tree')
      throw new InvalidRepositoryInputError(`unknown blob type ${String(type)}`);
    const id = computeBlobId(this.master.blobId, data);
    const length = data.length;
    if (this.index.has(id) || this.pending.has(id)) {
      // A chunk given away in one of the chunk buffers: the buffer can take the next chunk.
      if (opts.transfer === true && data.byteOffset === 0 && this.pool.chunkBuffers.owns(data.buffer))
        this.pool.chunkBuffers.give(data.buffer as ArrayBuffer);
      return { id, stored: false, length };
    }
    // Marked before any await, so concurrent saves of the same content store it once.
    this.pending.add(id);
    // Unless given away, our own copy: the caller may reuse its buffer, and the copy can move to a worker.
    let owned = data;
    if (opts.transfer !== true) {
      owned = Buffer.allocUnsafeSlow(length); // own ArrayBuffer, no zero-fill: transferable as is
      owned.set(data);
    }
    return this.storeNewBlob(type, id, owned, opts);
  }

  /**
   * saveBlob('data', …) of a chunk given as its parts: the ID is computed over
   * the parts, and only a new blob is copied out of them (an unchanged stretch
   * of a changed file costs the HMAC, not a copy). Everything that reads the
   * parts happens before the first await.
   */
  async saveChunkParts(chunk: ChunkParts, opts: SaveBlobOptions = {}): Promise<SaveBlobResult> {
    this.throwIfUnusable();
    const id = computeBlobIdOfParts(this.master.blobId, chunk.parts);
    if (this.index.has(id) || this.pending.has(id)) return { id, stored: false, length: chunk.length };
    this.pending.add(id);
    const owned = joinParts(chunk.parts, chunk.length, this.pool.chunkBuffers.take(chunk.length));
    return this.storeNewBlob('data', id, owned, opts);
  }

  /** Seal and pack a blob marked pending under `id`; `owned` is ours (it may move to a worker). */
  private async storeNewBlob(
    type: BlobType,
    id: BlobId,
    owned: Uint8Array,
    opts: SaveBlobOptions,
  ): Promise<SaveBlobResult> {
    const length = owned.length;
    try {
      await this.budget.acquire(length);
    } catch (err) {
      this.pending.delete(id);
      throw err;
    }
    this.written.blobs++;
    this.written.rawBytes += length;
    const sealing = this.pool.seal(
      owned,
      associatedData.blob(type, id),
      true,
      opts.compressionLevel,
      opts.fastFirst,
    );
    sealing.catch(() => {}); // observed below, in order; avoid an unhandled rejection meanwhile
    this.tail = this.tail.then(async () => {
      if (this.failure !== undefined) return;
      try {
        const { sealed, length: storedLength, compressed } = await sealing;
        this.budget.release(length);
        this.written.storedBytes += storedLength;
        await this.packs.add(
          type,
          { id, compression: compressed ? 'zstd' : 'none', rawLength: length },
          sealed,
        );
      } catch (err) {
        this.fail(err);
      }
    });
    return { id, stored: true, length };
  }

  /** Read, decrypt and verify a blob; IntegrityError naming pack and blob on any mismatch. */
  async loadBlob(id: BlobId): Promise<Uint8Array> {
    let loc = this.index.get(id);
    if (!loc && this.pending.has(id)) {
      await this.flushPacks();
      loc = this.index.get(id);
    }
    if (!loc) {
      throw new IntegrityError(`blob ${id} is not in the index of ${this.url}`, {
        hint: 'A snapshot refers to data the repository does not have; run `lifeboat check`.',
        details: { blob: id },
      });
    }
    const key = packKey(loc.packId);
    let record: Buffer;
    try {
      record = await readObject(this.storage, key, { offset: loc.offset, length: loc.length });
    } catch (err) {
      if (err instanceof StorageNotFoundError) {
        throw new IntegrityError(`pack ${key} holding blob ${id} is missing from ${this.url}`, {
          hint: 'Run `lifeboat check`; restore the pack from another copy of the repository.',
          details: { blob: id, pack: key },
          cause: err,
        });
      }
      throw err;
    }
    // The record is ours alone: it may move to a worker thread rather than be copied.
    return openStoredBlob(this.master, this.pool, record, { id, ...loc }, key, this.url, true);
  }

  /** Plaintext length of a stored blob (from the index), or undefined when it is not indexed. */
  blobLength(id: BlobId): number | undefined {
    return this.index.get(id)?.rawLength;
  }

  /**
   * Load many blobs with few storage reads: grouped by pack, one ranged read
   * per run of nearby blobs (packReadPlan.ts). `consume` gets every distinct ID
   * once, roughly in the order given, with its plaintext or the error
   * loadBlob would throw; it may return a promise to hold back further blobs.
   * With `keepSealed`, the blobs it names come as their records (checked for
   * length only) with what opening them must give (SealedBlob), when this
   * repository has worker threads to open them.
   */
  async loadBlobs(ids: Iterable<BlobId>, consume: BlobConsumer, opts: LoadBlobsOptions = {}): Promise<void> {
    const wanted = [...new Set(ids)];
    if (wanted.some((id) => !this.index.has(id) && this.pending.has(id))) await this.flushPacks();
    const keepSealed = this.pool.workerCount > 0 ? opts.keepSealed : undefined;
    /** Blobs handed over sealed, until their consumer gets them. */
    const sealed = new Map<BlobId, SealedBlob>();
    const places: BlobPlace[] = [];
    const unindexed: BlobId[] = [];
    for (const id of wanted) {
      const loc = this.index.get(id);
      if (loc)
        places.push({
          id,
          packId: loc.packId,
          offset: loc.offset,
          length: loc.length,
          rawLength: loc.rawLength,
        });
      else unindexed.push(id);
    }
    await readPackRanges(
      {
        readRange: (range) => this.readPackRange(range),
        openBlob: (blob, record, owned) => {
          const loc = this.index.get(blob.id)!;
          const stored = { id: blob.id, ...loc };
          if (keepSealed?.(blob.id) && record.length === loc.length) {
            sealed.set(blob.id, {
              ...openRequestFor(stored, false),
              problem: (failure) => storedBlobError(stored, packKey(loc.packId), this.url, failure),
            });
            return Promise.resolve(record);
          }
          const key = packKey(loc.packId);
          const contentChecked = opts.contentChecked?.(blob.id) === true;
          return openStoredBlob(this.master, this.pool, record, stored, key, this.url, owned, contentChecked);
        },
      },
      planPackReads(places),
      (id, result) => {
        const blob = sealed.get(id);
        if (!blob || !result.ok) return consume(id, result);
        sealed.delete(id);
        return consume(id, { ...result, sealed: blob });
      },
    );
    // Not in the index: loadBlob produces the error (a snapshot refers to data the repository lacks).
    for (const id of unindexed) {
      await this.loadBlob(id).then(
        (data) => consume(id, { ok: true, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }),
        (error: unknown) => consume(id, { ok: false, error }),
      );
    }
  }

  /** One ranged read of a pack for loadBlobs; a missing pack is an IntegrityError naming it. */
  private async readPackRange(range: PackRange): Promise<Buffer> {
    const key = packKey(range.packId);
    try {
      return await readObject(this.storage, key, { offset: range.offset, length: range.length });
    } catch (err) {
      if (err instanceof StorageNotFoundError) {
        const more = range.blobs.length > 1 ? ` (and ${range.blobs.length - 1} more blobs)` : '';
        throw missingPack(this.url, key, range.blobs[0]!.id, err, more);
      }
      throw err;
    }
  }

  /** Store a directory listing as a tree blob (canonical JSON, so equal trees dedup). */
  async saveTree(tree: Tree): Promise<BlobId> {
    return (await this.saveBlob('tree', encodeTree(tree))).id;
  }

  /** Load and parse a tree blob. */
  async loadTree(id: BlobId): Promise<Tree> {
    const loc = this.index.get(id);
    if (loc && loc.type !== 'tree') {
      throw new IntegrityError(`blob ${id} in ${this.url} is a ${loc.type} blob, not a tree`, {
        details: { blob: id },
      });
    }
    return decodeTree(loc ? await this.loadTreeAt(id, loc) : await this.loadBlob(id), id);
  }

  /** A tree blob through the pack windows (packWindows.ts): one read serves the trees stored near it. */
  private async loadTreeAt(id: BlobId, loc: BlobLocation): Promise<Buffer> {
    const key = packKey(loc.packId);
    let record: Buffer;
    try {
      record = await this.treeWindows.get(loc.packId, loc.offset, loc.length);
    } catch (err) {
      if (err instanceof StorageNotFoundError) throw missingPack(this.url, key, id, err);
      throw err;
    }
    return openStoredBlob(this.master, this.pool, record, { id, ...loc }, key, this.url);
  }

  /** Upload every pending blob and write the index: after this, everything saved is durable. */
  async flush(): Promise<void> {
    this.throwIfUnusable();
    await this.flushPacks();
    while (this.indexWrites.size > 0) await Promise.allSettled([...this.indexWrites]);
    if (this.unindexed.length > 0) await this.writeUnindexed();
    this.throwIfFailed();
  }

  /** Counters of what this session stored (call after flush for exact storedBytes). */
  writeStats(): WriteStats {
    return { ...this.written };
  }

  // ── Snapshots ────────────────────────────────────────────────────────

  /** The commit point: flush, verify the root tree is indexed, write the snapshot object. */
  async saveSnapshot(record: SnapshotRecord): Promise<string> {
    const valid = validateSnapshotRecord(record);
    if (typeof valid === 'string') throw new InvalidRepositoryInputError(`invalid snapshot record: ${valid}`);
    await this.flush();
    const root = this.index.get(record.tree);
    if (!root || root.type !== 'tree') {
      throw new InvalidRepositoryInputError(
        `snapshot root ${record.tree} is not a tree stored in ${this.url}; refusing to commit a snapshot without its data`,
      );
    }
    const { id, bytes } = encodeSnapshot(this.master.encryption, record);
    await this.storage.put(snapshotKey(id), bytes, { size: bytes.length });
    this.snapshotCache.set(id, { ...record, id });
    return id;
  }

  /** Every readable snapshot, oldest first; damaged ones are skipped with a warning (see snapshotIssues). */
  async listSnapshots(): Promise<SnapshotEntry[]> {
    const ids = (await listStorageKeys(this.storage, SNAPSHOTS_PREFIX))
      .map((o) => parseSnapshotKey(o.key))
      .filter((id): id is string => id !== undefined);
    const problems: (ObjectProblem & { error: IntegrityError })[] = [];
    const entries = await mapLimit(ids, 8, async (id) => {
      const cached = this.snapshotCache.get(id);
      if (cached) return cached;
      try {
        const entry = await readSnapshot(this.storage, this.master.encryption, id);
        this.snapshotCache.set(id, entry);
        return entry;
      } catch (err) {
        if (err instanceof StorageNotFoundError) return undefined; // forgotten meanwhile
        if (!(err instanceof IntegrityError)) throw err;
        problems.push({ key: `${SNAPSHOTS_PREFIX}${id}`, reason: err.message, error: err });
        this.logger.warn(err.message);
        return undefined;
      }
    });
    this.snapshotProblems = problems;
    return entries.filter((e): e is SnapshotEntry => e !== undefined).sort(compareSnapshots);
  }

  /** Damaged snapshot objects met by the last listSnapshots. */
  snapshotIssues(): ObjectProblem[] {
    return this.snapshotProblems.map(({ key, reason }) => ({ key, reason }));
  }

  /** Resolve a full ID, a unique prefix (>= 4 hex) or `latest`, optionally within one job. */
  async findSnapshot(ref: string, job?: string): Promise<SnapshotEntry> {
    const snapshots = await this.listSnapshots();
    try {
      return resolveSnapshotRef(snapshots, ref.trim(), job, this.url);
    } catch (err) {
      // A damaged snapshot matching the reference is more useful to report than "not found".
      const damaged = this.snapshotProblems.find((p) =>
        p.key.slice(SNAPSHOTS_PREFIX.length).startsWith(ref.trim()),
      );
      if (err instanceof SnapshotNotFoundError && damaged && ref.trim() !== 'latest') throw damaged.error;
      throw err;
    }
  }

  // ── Journal ──────────────────────────────────────────────────────────

  /** Append one run record to the journal (one encrypted object per record). */
  appendJournal(record: JournalInput): Promise<JournalRecord> {
    return appendJournal(this.journalContext(), record);
  }

  /** Journal records (oldest first); damaged ones are listed in `problems`, not fatal. */
  listJournal(
    opts: ListJournalOptions = {},
  ): Promise<{ records: JournalRecord[]; problems: JournalProblem[] }> {
    return listJournal(this.journalContext(), opts);
  }

  // ── Locks ────────────────────────────────────────────────────────────

  /** Take a shared (backup, copy, drill) or exclusive (prune) lock; RepositoryLockedError on conflict. */
  async lock(opts: AcquireLockOptions): Promise<RepositoryLock> {
    const lock = await acquireLock(this.lockContext(), opts);
    // close() releases what is still held (release() is idempotent).
    this.heldLocks.add(lock);
    return lock;
  }

  /** All locks with age and staleness. */
  listLocks(): Promise<LockInfo[]> {
    return listLocks(this.lockContext());
  }

  /** Remove stale locks (every lock with `force`); returns what was removed. */
  unlock(opts: { force?: boolean } = {}): Promise<LockInfo[]> {
    return removeLocks(this.lockContext(), opts);
  }

  // ── Key slots ────────────────────────────────────────────────────────

  /** Add a key slot for another password. */
  addKey(
    password: string,
    opts: { host?: string; user?: string; kdf?: ScryptParams } = {},
  ): Promise<KeyInfo> {
    return addKey(this.keySlotContext(), password, {
      host: opts.host ?? this.host,
      user: opts.user ?? this.user ?? '',
      ...(opts.kdf ? { kdf: opts.kdf } : {}),
    });
  }

  /** The key slots (and key files that could not be read). */
  listKeys(): Promise<{ keys: KeyInfo[]; damaged: DamagedKeyFile[] }> {
    return listKeys(this.keySlotContext());
  }

  /** Remove a key slot by ID or unique prefix (not the last one, not the one in use). */
  removeKey(idOrPrefix: string): Promise<KeyInfo> {
    return removeKey(this.keySlotContext(), idOrPrefix);
  }

  // ── Index, stats, lifecycle ──────────────────────────────────────────

  /** Merge index files written since the last load (by other hosts, or by prune). */
  async reloadIndex(): Promise<void> {
    const ids = (await listStorageKeys(this.storage, INDEX_PREFIX))
      .map((o) => parseIndexKey(o.key))
      .filter((id): id is string => id !== undefined && !this.indexFiles.has(id));
    const problems: ObjectProblem[] = [];
    await mapLimit(ids, 8, async (id) => {
      try {
        const body = await readIndexFile(this.storage, this.master.encryption, id);
        for (const pack of body.packs) this.index.addPack(pack);
        this.indexFiles.add(id);
      } catch (err) {
        if (err instanceof StorageNotFoundError) return; // removed by prune meanwhile
        if (!(err instanceof IntegrityError)) throw err;
        problems.push({ key: `${INDEX_PREFIX}${id}`, reason: err.message });
        this.logger.warn(err.message);
      }
    });
    this.indexProblems = problems;
  }

  /** Sizes and counts for `repo stats`. */
  async stats(): Promise<RepositoryStats> {
    const snapshots = await this.listSnapshots();
    let dataPacks = 0;
    let treePacks = 0;
    let storedBytes = 0;
    for (const [, pack] of this.index.packEntries()) {
      if (pack.type === 'data') dataPacks++;
      else treePacks++;
      storedBytes += pack.size;
    }
    let dataBlobs = 0;
    let treeBlobs = 0;
    let rawBytes = 0;
    for (const [, loc] of this.index.entries()) {
      if (loc.type === 'data') dataBlobs++;
      else treeBlobs++;
      rawBytes += loc.rawLength;
    }
    const logicalBytes = snapshots.reduce((sum, s) => sum + s.stats.bytes, 0);
    return {
      snapshots: snapshots.length,
      packs: dataPacks + treePacks,
      dataPacks,
      treePacks,
      blobs: dataBlobs + treeBlobs,
      dataBlobs,
      treeBlobs,
      indexFiles: this.indexFiles.size,
      storedBytes,
      rawBytes,
      logicalBytes,
      dedupRatio: rawBytes > 0 ? logicalBytes / rawBytes : 1,
      compressionRatio: storedBytes > 0 ? rawBytes / storedBytes : 1,
    };
  }

  /** For src/repository/maintenance.ts only (check, prune). */
  internals(): RepositoryInternals {
    return {
      storage: this.storage,
      master: this.master,
      pool: this.pool,
      index: this.index,
      indexFiles: this.indexFiles,
      indexProblems: this.indexProblems,
      parameters: this.parameters,
      clock: this.clock,
      logger: this.logger,
    };
  }

  /**
   * Release resources: wait for uploads already started, stop the worker
   * threads, release locks still held. Commits nothing: blobs not yet flushed
   * are dropped (or left in unreferenced packs, which prune removes).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error(`repository ${this.url} is closed`)); // stops the append chain and wakes waiting saveBlob calls
    await this.tail;
    await this.packs.abandon();
    await Promise.allSettled([...this.indexWrites]);
    await this.pool.close();
    for (const lock of [...this.heldLocks]) await lock.release().catch(() => {});
  }

  // ── internals ────────────────────────────────────────────────────────

  private packStored(pack: IndexedPack): void {
    this.written.packs++;
    this.index.addPack(pack);
    for (const blob of pack.blobs) this.pending.delete(blob.id);
    this.unindexed.push(pack);
    if (this.unindexed.length >= INDEX_EVERY_PACKS) {
      const write = this.writeUnindexed()
        .catch((err: unknown) => this.fail(err))
        .finally(() => this.indexWrites.delete(write));
      this.indexWrites.add(write);
    }
  }

  private async writeUnindexed(): Promise<void> {
    const packs = this.unindexed;
    this.unindexed = [];
    const id = await writeIndexFile(this.storage, this.master.encryption, packs);
    this.indexFiles.add(id);
  }

  /** Wait for every accepted blob to be packed and every pack uploaded (no index file). */
  private async flushPacks(): Promise<void> {
    let seen: Promise<void> | undefined;
    while (seen !== this.tail) {
      seen = this.tail;
      await seen;
    }
    this.throwIfFailed();
    await this.packs.flush();
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.budget.fail(err);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private throwIfUnusable(): void {
    if (this.closed) throw new Error(`repository ${this.url} is closed`);
    this.throwIfFailed();
  }

  private journalContext() {
    return {
      storage: this.storage,
      encryptionKey: this.master.encryption,
      host: this.host,
      toolVersion: this.toolVersion,
    };
  }

  private lockContext(): LockContext {
    return {
      storage: this.storage,
      encryptionKey: this.master.encryption,
      clock: this.clock,
      host: this.host,
      pid: this.pid,
      ...(this.user === undefined ? {} : { user: this.user }),
    };
  }

  private keySlotContext(): KeySlotContext {
    return {
      storage: this.storage,
      master: this.master,
      repositoryId: this.id,
      currentKeyId: this.keyId,
      clock: this.clock,
    };
  }
}
