/**
 * Restoring from a local restore point through the files restore: a Repo
 * that hands out the repository's trees unchanged (so metadata, names,
 * hardlinks, include rules and every safety rule of restoreTree apply as
 * for a repository restore) but serves file data from the local snapshot.
 *
 * As trees are loaded it learns where each data chunk lies in the snapshot
 * (file, offset, length from the repository index). loadBlob reads the chunk
 * there and returns it only when its keyed ID matches, exactly the check the
 * repository applies to its own chunks; otherwise (file changed, gone,
 * unreadable, location forgotten) the chunk comes from the repository. So
 * the restored bytes are the repository's in every case, and the local
 * snapshot only saves the reading, decrypting and decompressing of packs.
 *
 * Memory: locations are dropped once served; the table is capped, and a
 * chunk whose location was dropped is simply read from the repository.
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from '../../platform/logger.js';
import type { Repo } from '../../repository/api.js';
import type { BlobId, Tree, TreeNode } from '../../repository/tree.js';
import { joinRaw, nameBytes } from '../files/names.js';

/** Receives each blob of a batch load once (the shape of Repo.loadBlobs). */
export type BlobConsumer = (
  id: BlobId,
  result: { ok: true; data: Buffer } | { ok: false; error: unknown },
) => void | Promise<void>;

/** The repository with the lookup this needs (plaintext lengths of blobs) and, when it has it, batch loading. */
export type RepoWithLengths = Repo & {
  blobLength(id: BlobId): number | undefined;
  loadBlobs?(ids: Iterable<BlobId>, consume: BlobConsumer): Promise<void>;
};

const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/** Chunk locations remembered at most (~150 bytes each). */
const MAX_LOCATIONS = 200_000;
/** Local chunk reads in flight in a batch load. */
const READ_AHEAD = 4;
/** Paths named in `differing` at most. */
const MAX_NAMED = 20;

interface Location {
  file: Buffer;
  offset: number;
  length: number;
  /** Times the chunk is still expected to be loaded. */
  uses: number;
}

/** Where a tree directory is: on the way to the source (components matched so far), or in the snapshot. */
type Place = { matched: number } | { local: Buffer };

export interface LocalReadStats {
  /** Chunks (and their bytes) read from the local snapshot. */
  localChunks: number;
  localBytes: number;
  /** Chunks read from the repository: not found, not readable or different in the snapshot. */
  repositoryChunks: number;
  repositoryBytes: number;
  /** Files whose chunk in the snapshot did not match (first few). */
  differing: string[];
}

export class LocalFirstRepo implements Repo {
  readonly stats: LocalReadStats = {
    localChunks: 0,
    localBytes: 0,
    repositoryChunks: 0,
    repositoryBytes: 0,
    differing: [],
  };
  private readonly sourceParts: string[];
  private readonly places = new Map<BlobId, { place: Place; uses: number }>();
  private readonly chunks = new Map<BlobId, Location>();

  /**
   * @param root where the local snapshot's files are
   * @param source the path the snapshot stands for, as recorded in the trees
   */
  constructor(
    private readonly repo: RepoWithLengths,
    rootTree: BlobId,
    private readonly root: string,
    source: string,
    private readonly logger: Logger,
  ) {
    this.sourceParts = source.split('/').filter(Boolean);
    this.places.set(rootTree, {
      place: this.sourceParts.length === 0 ? { local: Buffer.from(root) } : { matched: 0 },
      uses: 1,
    });
  }

  get id(): string {
    return this.repo.id;
  }
  get url(): string {
    return this.repo.url;
  }
  chunker() {
    return this.repo.chunker();
  }
  blobId(data: Uint8Array): BlobId {
    return this.repo.blobId(data);
  }
  hasBlob(id: BlobId): boolean {
    return this.repo.hasBlob(id);
  }
  saveBlob(...args: Parameters<Repo['saveBlob']>) {
    return this.repo.saveBlob(...args);
  }
  saveTree(tree: Tree): Promise<BlobId> {
    return this.repo.saveTree(tree);
  }
  flush(): Promise<void> {
    return this.repo.flush();
  }
  saveSnapshot(...args: Parameters<Repo['saveSnapshot']>) {
    return this.repo.saveSnapshot(...args);
  }
  listSnapshots() {
    return this.repo.listSnapshots();
  }
  findSnapshot(ref: string, job?: string) {
    return this.repo.findSnapshot(ref, job);
  }
  /** The repository stays open: its owner closes it. */
  async close(): Promise<void> {}

  async loadTree(id: BlobId): Promise<Tree> {
    const tree = await this.repo.loadTree(id);
    const entry = this.places.get(id);
    if (entry) {
      if (--entry.uses === 0) this.places.delete(id);
      this.learn(tree, entry.place);
    }
    return tree;
  }

  blobLength(id: BlobId): number | undefined {
    return this.repo.blobLength(id);
  }

  async loadBlob(id: BlobId): Promise<Uint8Array> {
    const local = await this.loadLocal(id);
    if (local) return local;
    const data = await this.repo.loadBlob(id);
    this.countRepository(data.length);
    return data;
  }

  /** Batch form (see Repo.loadBlobs): local chunks first, a few reads ahead, then the rest from the repository. */
  async loadBlobs(ids: Iterable<BlobId>, consume: BlobConsumer): Promise<void> {
    const wanted = [...new Set(ids)];
    const fromRepository: BlobId[] = [];
    const reads: Promise<Buffer | undefined>[] = [];
    for (let i = 0; i < Math.min(READ_AHEAD, wanted.length); i++) reads.push(this.loadLocal(wanted[i]!));
    for (let i = 0; i < wanted.length; i++) {
      if (i + READ_AHEAD < wanted.length) reads.push(this.loadLocal(wanted[i + READ_AHEAD]!));
      const data = await reads[i]!;
      reads[i] = Promise.resolve(undefined);
      if (data) await consume(wanted[i]!, { ok: true, data });
      else fromRepository.push(wanted[i]!);
    }
    if (fromRepository.length === 0) return;
    const counted: BlobConsumer = (id, result) => {
      if (result.ok) this.countRepository(result.data.length);
      return consume(id, result);
    };
    if (this.repo.loadBlobs) {
      await this.repo.loadBlobs(fromRepository, counted);
      return;
    }
    for (const id of fromRepository) {
      await this.repo.loadBlob(id).then(
        (data) => counted(id, { ok: true, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }),
        (error: unknown) => counted(id, { ok: false, error }),
      );
    }
  }

  /** The chunk from the local snapshot when its location is known and its ID matches; never throws. */
  private async loadLocal(id: BlobId): Promise<Buffer | undefined> {
    const loc = this.chunks.get(id);
    if (!loc) return undefined;
    if (--loc.uses === 0) this.chunks.delete(id);
    const data = await readChunk(loc).catch(() => undefined);
    if (data && this.repo.blobId(data) === id) {
      this.stats.localChunks++;
      this.stats.localBytes += data.length;
      return data;
    }
    this.noteDiffering(loc.file);
    return undefined;
  }

  private countRepository(bytes: number): void {
    this.stats.repositoryChunks++;
    this.stats.repositoryBytes += bytes;
  }

  /** Remember where the subdirectories and the chunks of the files of `tree` are. */
  private learn(tree: Tree, place: Place): void {
    for (const node of tree.nodes) {
      if (node.type === 'dir' && node.subtree) {
        const child = this.childPlace(place, node);
        if (!child) continue;
        const known = this.places.get(node.subtree);
        if (known) known.uses++;
        else this.places.set(node.subtree, { place: child, uses: 1 });
      } else if (node.type === 'file' && 'local' in place) {
        this.learnFile(joinRaw(place.local, nameBytes(node)), node);
      }
    }
  }

  private childPlace(place: Place, node: TreeNode): Place | undefined {
    if ('local' in place) return { local: joinRaw(place.local, nameBytes(node)) };
    if (node.name !== this.sourceParts[place.matched]) return undefined;
    const matched = place.matched + 1;
    return matched === this.sourceParts.length ? { local: Buffer.from(this.root) } : { matched };
  }

  private learnFile(file: Buffer, node: TreeNode): void {
    let offset = 0;
    for (const ref of node.content ?? []) {
      if (typeof ref !== 'string') {
        offset += ref.zero;
        continue;
      }
      const length = this.repo.blobLength(ref);
      // Without the length the following offsets are unknown: the rest of the file comes from the repository.
      if (length === undefined) return;
      const known = this.chunks.get(ref);
      if (known) known.uses++;
      else {
        if (this.chunks.size >= MAX_LOCATIONS) this.forgetOldest();
        this.chunks.set(ref, { file, offset, length, uses: 1 });
      }
      offset += length;
    }
  }

  private forgetOldest(): void {
    const oldest = this.chunks.keys().next();
    if (!oldest.done) this.chunks.delete(oldest.value);
  }

  private noteDiffering(file: Buffer): void {
    const shown = file.toString('utf8');
    if (this.stats.differing.length < MAX_NAMED && !this.stats.differing.includes(shown)) {
      this.stats.differing.push(shown);
      this.logger.warn(
        `${shown}: data in the local snapshot differs from the backup; read from the repository`,
      );
    }
  }
}

/**
 * Read one chunk; undefined when the file is shorter. No fstat: whatever is
 * read (a fifo returns nothing with O_NONBLOCK, a device returns other
 * bytes) is only used when its keyed ID matches.
 */
async function readChunk(loc: Location): Promise<Buffer | undefined> {
  const fh = await open(loc.file, READ_FLAGS);
  try {
    const buf = Buffer.allocUnsafe(loc.length);
    let got = 0;
    while (got < loc.length) {
      const { bytesRead } = await fh.read(buf, got, loc.length - got, loc.offset + got);
      if (bytesRead === 0) return undefined;
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
