/**
 * The backup walker: turns a directory hierarchy into repository trees.
 *
 * It is iterative (an explicit stack of directory frames, so a tree thousands
 * of levels deep cannot overflow the call stack) and holds only the frames of
 * the current path: a directory's entries and the nodes built for it so far.
 * A directory's tree is saved when its last entry is done, and the frame is
 * dropped. File contents are read by a bounded pool of tasks so reading,
 * chunking and saving overlap; the walker waits for a free slot before it
 * starts another file, so it can never run far ahead of the readers.
 */
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  type BigIntStats,
} from 'node:fs';
import { lstat, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { InterruptedError, isErrnoException } from '../../errors.js';
import { monotonicMs } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { redact } from '../../platform/redact.js';
import type { Chunker, Repo } from '../../repository/api.js';
import { SmallFileStore } from '../../repository/smallFiles.js';
import type { NodeType, TreeNode } from '../../repository/tree.js';
import type { Accounts } from './accounts.js';
import { CachedDir, cacheName, DirRecord, type FileCache, type FileIdentity } from './cache.js';
import { digestField, type ContentDigest } from './contentDigest.js';
import {
  SMALL_FILE,
  SourceReadError,
  storeFileContent,
  storeSmallFile,
  SYNC_READ_MAX,
  type StoredContent,
  type StoreContentOptions,
} from './fileContent.js';
import { decodeName, isUtf8, joinRaw, nameBytes, showPath, uniqueDisplayNames } from './names.js';
import { nodeTypeOf } from './nodeType.js';
import type { PathFilter } from './pathFilter.js';
import { Semaphore } from './semaphore.js';
import type { BackupHooks, BackupStats, FilesProgress } from './types.js';
import { readXattrs } from './xattrs.js';

export interface WalkerOptions {
  repo: Repo;
  filter: PathFilter;
  accounts: Accounts;
  oneFileSystem: boolean;
  xattrs: boolean;
  logger: Logger;
  cache?: FileCache;
  /**
   * Files whose ctime or mtime is at or after this instant (ns) are not put in
   * the cache: a change within the same timestamp tick as our read would be
   * invisible next time (the "racy git" problem).
   */
  cacheCutoffNs: bigint;
  signal?: AbortSignal;
  onProgress?: (p: FilesProgress) => void;
  hooks?: BackupHooks;
  /** Files read at once (default 4). */
  fileConcurrency?: number;
  /**
   * Small files in flight at once when the repository's workers read them in
   * batches (default 256; see smallFiles.ts).
   */
  smallFileConcurrency?: number;
  /** saveBlob calls in flight across all files (default 8). */
  blobConcurrency?: number;
  /**
   * Read the source from another place than where it is recorded (snapshot
   * jobs read a filesystem snapshot but record the live path). Cache keys use
   * the recorded path, so the incremental cache works across snapshots.
   */
  readFrom?: { physical: string; logical: string };
}

interface Frame {
  /** Absolute path of the directory, as bytes. */
  abs: Buffer;
  /** Path in the snapshot (no leading `/`), for filters and messages. */
  rel: string;
  names: Buffer[];
  next: number;
  nodes: TreeNode[];
  /** The directory's own node (without subtree); absent for a holder frame. */
  self?: TreeNode;
  /** Device of the top-level path this frame belongs to (one-file-system). */
  dev: bigint;
  /** An include rule matched this directory or a parent. */
  included: boolean;
  /** A top-level path: kept even when include rules leave it empty. */
  top: boolean;
  /** Holder frames only collect the nodes of top-level paths; they are never saved as trees. */
  holder: boolean;
  /** Holder frames of a mapped path: the name to record for the one child (see readFrom). */
  recordAs?: string;
  pending: Promise<void>[];
  /** The directory's name in the incremental cache (see cacheName). */
  cacheName: string;
  /** The previous run's cache entries of this directory. */
  cached: CachedDir;
  /** This run's cache entries of this directory. */
  record: DirRecord;
}

interface FileInfo {
  content: NonNullable<TreeNode['content']>;
  digest: ContentDigest;
  size: number;
}

/** What the checks after a read use of a file's status. */
type FileStatus = Pick<BigIntStats, 'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs' | 'isFile'>;

const OPEN_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
const PROGRESS_EVERY_MS = 100;
/** Directories closed beside the walk at most (see drain). */
const MAX_CLOSING_DIRS = 32;
const SMALL_FILE_N = BigInt(SMALL_FILE);
const SYNC_READ_MAX_N = BigInt(SYNC_READ_MAX);

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Where a configured (recorded) path is read from, given a readFrom mapping. */
export function physicalPath(
  map: { physical: string; logical: string } | undefined,
  logical: string,
): string {
  if (!map) return logical;
  if (logical === map.logical) return map.physical;
  if (logical.startsWith(`${map.logical}/`)) return map.physical + logical.slice(map.logical.length);
  return logical;
}

/** Byte order of names, so tree blobs of equal directories are identical. */
export function compareNodes(a: TreeNode, b: TreeNode): number {
  return Buffer.compare(nameBytes(a), nameBytes(b));
}

export function emptyStats(): BackupStats {
  return {
    files: 0,
    dirs: 0,
    symlinks: 0,
    specials: 0,
    bytes: 0,
    readBytes: 0,
    addedBytes: 0,
    newBlobs: 0,
    cachedFiles: 0,
    excluded: 0,
    skippedSockets: 0,
  };
}

/** Walks source paths into trees; one instance per backup run (see file comment). */
export class TreeWalker {
  readonly stats: BackupStats = emptyStats();
  readonly warnings: string[] = [];
  private readonly fileSlots: Semaphore;
  private readonly blobSlots: Semaphore;
  private readonly chunker: Chunker;
  /** The repository's batched small-file reader, and the slots of the small files waiting on it. */
  private readonly smallFiles: SmallFileStore | undefined;
  private readonly smallFileSlots: Semaphore;
  /** First occurrence of each multiply-linked inode in this run, so its content is stored once. */
  private readonly hardlinks = new Map<string, Promise<FileInfo | undefined>>();
  private fatal: { err: unknown } | undefined;
  private lastProgress = 0;
  private currentPath = '';
  /** Bytes of file content handled so far (read, cached or hardlinked), for progress. */
  private progressBytes = 0;

  constructor(private readonly o: WalkerOptions) {
    this.fileSlots = new Semaphore(o.fileConcurrency ?? 4);
    this.blobSlots = new Semaphore(o.blobConcurrency ?? 8);
    this.chunker = o.repo.chunker();
    // The read hooks (tests) need the reads on this thread, between the read and the fstat after it.
    this.smallFiles = o.hooks ? undefined : o.repo.smallFileStore?.(OPEN_FLAGS);
    this.smallFileSlots = new Semaphore(o.smallFileConcurrency ?? 256);
  }

  /** Back up one top-level path `parent/name`; returns its node, or undefined if it was left out. */
  async backupPath(parentAbs: string, parentRel: string, name: string): Promise<TreeNode | undefined> {
    const logical = parentAbs === '/' ? `/${name}` : `${parentAbs}/${name}`;
    const physical = physicalPath(this.o.readFrom, logical);
    if (physical !== logical) {
      // Read the mapped directory, record it under the configured name.
      const physicalParent = dirname(physical);
      const parentDev = (await lstat(physicalParent, { bigint: true })).dev;
      const holder = await this.holderFrame(
        logical,
        Buffer.from(physicalParent),
        parentRel,
        [Buffer.from(basename(physical))],
        parentDev,
        true,
      );
      holder.recordAs = name;
      await this.drain(holder);
      return holder.nodes[0];
    }
    const parentDev = (await lstat(parentAbs, { bigint: true })).dev;
    const holder = await this.holderFrame(
      logical,
      Buffer.from(parentAbs),
      parentRel,
      [Buffer.from(name)],
      parentDev,
      true,
    );
    await this.drain(holder);
    return holder.nodes[0];
  }

  /** Back up `/` itself: returns the nodes of the root directory. */
  async backupRoot(): Promise<TreeNode[]> {
    const st = await lstat('/', { bigint: true });
    const names = await readdir('/', { encoding: 'buffer' });
    const holder = await this.holderFrame('/', Buffer.from('/'), '', names, st.dev, false);
    await this.drain(holder);
    return holder.nodes;
  }

  /** Metadata node for a directory on the way to a top-level path (e.g. `srv` for `/srv/www`). */
  async prefixNode(abs: string, name: string, subtree: string): Promise<TreeNode> {
    // stat, not lstat: the source path was reached through this component.
    const st = await stat(abs, { bigint: true });
    const node: TreeNode = { ...this.baseNode({ name }, 'dir', st), subtree };
    if (this.o.xattrs) await this.attachXattrs([{ abs: Buffer.from(abs), node }]);
    this.stats.dirs++;
    return node;
  }

  /** Report progress now (end of run). */
  finalProgress(): void {
    this.o.onProgress?.({ files: this.stats.files, bytes: this.stats.bytes, currentPath: this.currentPath });
  }

  /** The frame above a configured path (`top`, as recorded), holding that path's own node. */
  private async holderFrame(
    top: string,
    abs: Buffer,
    rel: string,
    names: Buffer[],
    dev: bigint,
    topChildren: boolean,
  ): Promise<Frame> {
    return {
      cacheName: top,
      cached: this.o.cache ? await this.o.cache.top(top) : CachedDir.empty,
      record: new DirRecord(),
      abs,
      rel,
      names,
      next: 0,
      nodes: [],
      dev,
      included: false,
      top: topChildren,
      holder: true,
      pending: [],
    };
  }

  /** Run the walk until the holder frame has visited all its names. */
  private async drain(holder: Frame): Promise<void> {
    const stack: Frame[] = [holder];
    /** Directories whose closing runs beside the walk, oldest first. */
    const closingDirs: Promise<void>[] = [];
    try {
      while (stack.length > 0) {
        this.checkAbort();
        this.checkFatal();
        const frame = stack[stack.length - 1]!;
        const raw = frame.names[frame.next];
        if (raw !== undefined) {
          frame.next++;
          const child = await this.visit(frame, raw);
          if (child) stack.push(child);
          continue;
        }
        stack.pop();
        if (frame.holder) {
          await Promise.all(frame.pending);
          this.checkFatal();
          if (this.o.xattrs) await this.attachChildXattrs(frame);
          await this.o.cache?.closeTop(frame.cacheName, frame.record);
          continue;
        }
        // The walk goes on while this directory's last files are stored (small files go in batches to
        // the workers: waiting here would stall the walk once per directory); its parent waits for it.
        // At most MAX_CLOSING_DIRS wait so: unbounded, an unchanged re-run of /usr/share left 2,500 of
        // its 3,300 directories in memory (+60 MiB).
        const parent = stack[stack.length - 1]!;
        const closing = this.finishDir(frame, parent).catch((err: unknown) => {
          this.fatal ??= { err };
        });
        parent.pending.push(closing);
        closingDirs.push(closing);
        if (closingDirs.length > MAX_CLOSING_DIRS) await closingDirs.shift();
      }
    } finally {
      // On failure, let started reads finish before the caller tears things down.
      await Promise.allSettled(stack.flatMap((f) => f.pending));
    }
  }

  /** Once a directory's files (and subdirectories) are done: store its tree, add its node to `parent`. */
  private async finishDir(frame: Frame, parent: Frame): Promise<void> {
    await Promise.all(frame.pending);
    this.checkFatal();
    if (this.o.xattrs) await this.attachChildXattrs(frame);
    const node = await this.closeDir(frame);
    if (!node) return;
    parent.nodes.push(node);
    await this.o.cache?.closeDir(frame.record, frame.cacheName, parent.record);
  }

  private async closeDir(frame: Frame): Promise<TreeNode | undefined> {
    if (this.o.filter.hasIncludes && !frame.included && !frame.top && frame.nodes.length === 0)
      return undefined;
    frame.nodes.sort(compareNodes);
    uniqueDisplayNames(frame.nodes);
    const subtree = await this.o.repo.saveTree({ nodes: frame.nodes });
    this.stats.dirs++;
    return { ...frame.self!, subtree };
  }

  private async visit(parent: Frame, raw: Buffer): Promise<Frame | undefined> {
    const abs = joinRaw(parent.abs, raw);
    const nameInfo = parent.recordAs === undefined ? decodeName(raw) : { name: parent.recordAs };
    const key = cacheName(raw, nameInfo.nameRaw === undefined ? nameInfo.name : undefined);
    const rel = parent.rel === '' ? nameInfo.name : `${parent.rel}/${nameInfo.name}`;
    const shown = showPath(abs);
    this.currentPath = shown;
    let st: BigIntStats;
    try {
      // Synchronous: the walk waits for each entry's metadata anyway, and a thread-pool round trip
      // per entry costs more main-thread time than the lstat itself (many small files).
      st = lstatSync(abs, { bigint: true });
    } catch (err) {
      this.unreadable(shown, 'cannot stat', err);
      return undefined;
    }
    const type = nodeTypeOf(st);
    if (!type) {
      this.warn(`unknown file type of ${shown} (mode ${st.mode.toString(8)}); skipped`);
      return undefined;
    }
    const isDir = type === 'dir';
    const top = parent.holder && parent.top;
    if (!top && this.o.filter.excluded(rel, isDir)) {
      this.stats.excluded++;
      return undefined;
    }
    const included = parent.included || this.o.filter.included(rel, isDir);
    if (!included && !isDir) {
      this.stats.excluded++;
      return undefined;
    }
    const base = this.baseNode(nameInfo, type, st);
    switch (type) {
      case 'dir':
        return this.openDir(parent, key, abs, rel, base, st, included, top);
      case 'file':
        await this.startFile(parent, key, abs, base, st);
        return undefined;
      case 'symlink':
        if (top)
          this.o.logger.warn(`${shown} is a symlink: only the link itself is backed up, not its target`);
        return this.addSymlink(parent, abs, base);
      case 'socket':
        this.stats.skippedSockets++;
        this.o.logger.warn(`${shown} is a socket; sockets cannot be backed up and are skipped`);
        return undefined;
      default:
        if (type === 'chardev' || type === 'blockdev') base.rdev = Number(st.rdev);
        this.stats.specials++;
        parent.nodes.push(base);
        return undefined;
    }
  }

  private baseNode(nameInfo: { name: string; nameRaw?: string }, type: NodeType, st: BigIntStats): TreeNode {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const node: TreeNode = {
      name: nameInfo.name,
      type,
      mode: Number(st.mode & 0o7777n),
      uid,
      gid,
      mtimeNs: st.mtimeNs.toString(),
    };
    if (nameInfo.nameRaw !== undefined) node.nameRaw = nameInfo.nameRaw;
    const user = this.o.accounts.userName(uid);
    const group = this.o.accounts.groupName(gid);
    if (user !== undefined) node.user = user;
    if (group !== undefined) node.group = group;
    return node;
  }

  private async openDir(
    parent: Frame,
    key: string,
    abs: Buffer,
    rel: string,
    self: TreeNode,
    st: BigIntStats,
    included: boolean,
    top: boolean,
  ): Promise<Frame> {
    const dev = top ? st.dev : parent.dev;
    let names: Buffer[] = [];
    if (this.o.oneFileSystem && st.dev !== dev) {
      // A mount point: keep the directory itself, not the other filesystem's content.
      this.o.logger.info(`${showPath(abs)} is on another filesystem; its contents are not backed up`);
    } else {
      try {
        // Synchronous, like lstat in visit(): the walk cannot go on before it has the names.
        names = readdirSync(abs, { encoding: 'buffer' });
      } catch (err) {
        this.unreadable(showPath(abs), 'cannot read directory', err);
      }
    }
    return {
      abs,
      rel,
      names,
      next: 0,
      nodes: [],
      self,
      dev,
      included,
      top,
      holder: false,
      pending: [],
      cacheName: key,
      cached: this.o.cache ? await this.o.cache.child(parent.cached, key) : CachedDir.empty,
      record: new DirRecord(),
    };
  }

  private addSymlink(parent: Frame, abs: Buffer, node: TreeNode): undefined {
    try {
      // Synchronous, like lstat in visit(): a thread-pool round trip per link cost ~90 µs of the walk
      // (0.35 s for the 3,957 links of /usr/share), readlink itself a few.
      const target = readlinkSync(abs, { encoding: 'buffer' });
      const decoded = decodeName(target);
      node.linkTarget = decoded.name;
      if (decoded.nameRaw !== undefined) node.linkTargetRaw = decoded.nameRaw;
    } catch (err) {
      this.unreadable(showPath(abs), 'cannot read symlink', err);
      return undefined;
    }
    this.stats.symlinks++;
    parent.nodes.push(node);
    return undefined;
  }

  private async startFile(
    parent: Frame,
    key: string,
    abs: Buffer,
    node: TreeNode,
    st: BigIntStats,
  ): Promise<void> {
    const batched = this.smallFiles !== undefined && st.size < SmallFileStore.MAX_SIZE;
    const release = await (batched ? this.smallFileSlots : this.fileSlots).acquire();
    const task = this.backupFile(parent, key, abs, node, st)
      .then(
        (done) => {
          if (done) parent.nodes.push(done);
        },
        (err: unknown) => {
          this.fatal ??= { err };
        },
      )
      .finally(release);
    parent.pending.push(task);
  }

  private async backupFile(
    parent: Frame,
    key: string,
    abs: Buffer,
    node: TreeNode,
    st: BigIntStats,
  ): Promise<TreeNode | undefined> {
    let settleLink: ((info: FileInfo | undefined) => void) | undefined;
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      node.hardlinkKey = key;
      const first = this.hardlinks.get(key);
      if (first) {
        const info = await first;
        if (info) {
          this.progress(info.size);
          return this.fileDone(node, info);
        }
        // The first occurrence could not be read; try this one on its own.
      } else {
        this.hardlinks.set(key, new Promise((resolve) => (settleLink = resolve)));
      }
    }
    try {
      const info = await this.fileContent(parent, key, abs, st);
      settleLink?.(info);
      return info ? this.fileDone(node, info) : undefined;
    } catch (err) {
      settleLink?.(undefined);
      throw err;
    }
  }

  private fileDone(node: TreeNode, info: FileInfo): TreeNode {
    node.size = info.size;
    node.content = info.content;
    Object.assign(node, digestField(info.digest));
    this.stats.files++;
    this.stats.bytes += info.size;
    this.progress(0);
    return node;
  }

  /** Content of file `key` of directory `dir`: from the cache when unchanged, else read and stored. */
  private async fileContent(
    dir: Frame,
    key: string,
    abs: Buffer,
    st: BigIntStats,
  ): Promise<FileInfo | undefined> {
    const shown = showPath(abs);
    const identity: FileIdentity = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino };
    const cached = this.o.cache?.lookup(dir.cached, key, identity);
    if (cached && cached.content.every((ref) => typeof ref !== 'string' || this.o.repo.hasBlob(ref))) {
      this.stats.cachedFiles++;
      this.progress(Number(st.size));
      this.o.cache?.record(dir.record, key, identity, cached);
      return { ...cached, size: Number(st.size) };
    }
    if (st.size < SYNC_READ_MAX_N) return this.smallFileContent(dir, key, abs, st, identity);
    let fh: FileHandle;
    try {
      fh = await open(abs, OPEN_FLAGS);
    } catch (err) {
      this.unreadable(shown, 'cannot open', err);
      return undefined;
    }
    try {
      // Large files are read until EOF: make sure first that this is still the regular file we
      // listed (not a device or fifo swapped in). Small files are read with one bounded read and
      // checked afterwards, saving a syscall per file.
      if (st.size >= SMALL_FILE_N && !this.sameFile(await fh.stat({ bigint: true }), st)) {
        this.warn(`${shown} was replaced while being backed up; skipped`);
        return undefined;
      }
      return await this.readAndRecord(
        dir,
        key,
        identity,
        st,
        shown,
        () => storeFileContent(this.o.repo, fh, Number(st.size), this.contentOptions()),
        () => fh.stat({ bigint: true }),
      );
    } finally {
      await fh.close();
    }
  }

  /**
   * The part both read paths share: store the content, turn a read error into a warning (the file is
   * skipped, the snapshot partial), then check the file against its listing and record it.
   */
  private async readAndRecord(
    dir: Frame,
    key: string,
    identity: FileIdentity,
    st: BigIntStats,
    shown: string,
    store: () => Promise<StoredContent>,
    restat: () => BigIntStats | Promise<BigIntStats>,
  ): Promise<FileInfo | undefined> {
    this.o.hooks?.onRead?.(shown);
    let stored: StoredContent;
    try {
      stored = await store();
    } catch (err) {
      if (err instanceof SourceReadError) {
        this.warn(`cannot read ${shown} (${err.message}); skipped`);
        return undefined;
      }
      throw err;
    }
    await this.o.hooks?.afterRead?.(shown);
    return this.afterRead(dir, key, identity, st, await restat(), stored, shown);
  }

  /**
   * fileContent for a file listed with fewer than SYNC_READ_MAX bytes: open, read, fstat and
   * close run synchronously on this thread (see storeSmallFile); the same checks as for large files.
   */
  private async smallFileContent(
    dir: Frame,
    key: string,
    abs: Buffer,
    st: BigIntStats,
    identity: FileIdentity,
  ): Promise<FileInfo | undefined> {
    if (this.smallFiles && st.size < SmallFileStore.MAX_SIZE) {
      return this.batchedSmallFile(this.smallFiles, dir, key, abs, st, identity);
    }
    const shown = showPath(abs);
    let fd: number;
    try {
      fd = openSync(abs, OPEN_FLAGS);
    } catch (err) {
      this.unreadable(shown, 'cannot open', err);
      return undefined;
    }
    try {
      return await this.readAndRecord(
        dir,
        key,
        identity,
        st,
        shown,
        () => storeSmallFile(this.o.repo, fd, Number(st.size), this.contentOptions()),
        () => fstatSync(fd, { bigint: true }),
      );
    } finally {
      closeSync(fd);
    }
  }

  /** smallFileContent by the repository's workers: the same warnings and checks, from their verdict. */
  private async batchedSmallFile(
    store: SmallFileStore,
    dir: Frame,
    key: string,
    abs: Buffer,
    st: BigIntStats,
    identity: FileIdentity,
  ): Promise<FileInfo | undefined> {
    this.checkAbort();
    const read = await store.store(abs, Number(st.size));
    const shown = showPath(abs);
    if (!read.ok) {
      if (read.stage === 'open') this.unreadable(shown, 'cannot open', read.error);
      else this.warn(`cannot read ${shown} (${read.error.message}); skipped`);
      return undefined;
    }
    this.stats.readBytes += read.size;
    this.progress(read.size);
    const after: FileStatus = {
      ...read.stat,
      isFile: () => (read.stat.mode & BigInt(fsConstants.S_IFMT)) === BigInt(fsConstants.S_IFREG),
    };
    const stored: StoredContent = {
      content: read.content,
      digest: { hex: read.sha256, dataOnly: false },
      size: read.size,
      addedBytes: read.stored ? read.size : 0,
      newBlobs: read.stored ? 1 : 0,
    };
    return this.afterRead(dir, key, identity, st, after, stored, shown);
  }

  private contentOptions(): StoreContentOptions {
    return {
      chunker: this.chunker,
      blobSlots: this.blobSlots,
      checkAbort: () => this.checkAbort(),
      onBytes: (n) => {
        this.stats.readBytes += n;
        this.progress(n);
      },
    };
  }

  /** After a file was read and stored: warn if it was replaced or changed meanwhile, else cache it. */
  private afterRead(
    dir: Frame,
    key: string,
    identity: FileIdentity,
    st: BigIntStats,
    after: FileStatus,
    stored: StoredContent,
    shown: string,
  ): FileInfo | undefined {
    if (!this.sameFile(after, st)) {
      this.warn(`${shown} was replaced while being backed up; skipped`);
      return undefined;
    }
    this.stats.addedBytes += stored.addedBytes;
    this.stats.newBlobs += stored.newBlobs;
    const changed =
      after.size !== st.size ||
      after.mtimeNs !== st.mtimeNs ||
      after.ctimeNs !== st.ctimeNs ||
      BigInt(stored.size) !== st.size;
    if (changed) {
      this.warn(
        `${shown} changed while being read (size ${st.size} → ${after.size}); ` +
          `the snapshot holds the ${stored.size} bytes that were read`,
      );
    } else if (st.ctimeNs < this.o.cacheCutoffNs && st.mtimeNs < this.o.cacheCutoffNs) {
      this.o.cache?.record(dir.record, key, identity, { content: stored.content, digest: stored.digest });
    }
    return { content: stored.content, digest: stored.digest, size: stored.size };
  }

  private sameFile(opened: FileStatus, listed: BigIntStats): boolean {
    return opened.isFile() && opened.ino === listed.ino && opened.dev === listed.dev;
  }

  /** Read xattrs of a closed frame's non-directory children and of the directory itself. */
  private async attachChildXattrs(frame: Frame): Promise<void> {
    // Directories read their own attributes when their frame closes.
    const items = frame.nodes
      .filter((n) => n.type !== 'dir')
      .map((node) => ({ abs: joinRaw(frame.abs, nameBytes(node)), node }));
    if (frame.self && !frame.holder) items.push({ abs: frame.abs, node: frame.self });
    await this.attachXattrs(items);
  }

  private async attachXattrs(items: { abs: Buffer; node: TreeNode }[]): Promise<void> {
    const byPath = new Map<string, TreeNode>();
    for (const { abs, node } of items) {
      if (isUtf8(abs)) byPath.set(abs.toString('utf8'), node);
      else this.o.logger.warn(`${showPath(abs)}: name is not UTF-8, its xattrs are not recorded`);
    }
    if (byPath.size === 0) return;
    const { attrs, errors } = await readXattrs([...byPath.keys()]);
    for (const [path, values] of attrs) {
      const node = byPath.get(path);
      if (node) node.xattrs = values;
    }
    for (const e of errors) this.warn(`cannot read xattrs: ${e}`);
  }

  private unreadable(shown: string, what: string, err: unknown): void {
    if (isErrnoException(err) && err.code === 'ENOENT') {
      // Deleted between listing and reading: the snapshot simply does not have it.
      this.o.logger.info(`${shown} vanished while the backup ran; skipped`);
      return;
    }
    // No "path:" form: redact() would take a file named e.g. `token` for a key=value secret.
    this.warn(`${what} ${shown} (${message(err)}); skipped`);
  }

  private warn(text: string): void {
    const safe = redact(text);
    this.warnings.push(safe);
    this.o.logger.warn(safe);
  }

  /** Count `moreBytes` of handled content and report progress if due. */
  private progress(moreBytes: number): void {
    this.progressBytes += moreBytes;
    if (!this.o.onProgress) return;
    const now = monotonicMs();
    if (now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    this.o.onProgress({ files: this.stats.files, bytes: this.progressBytes, currentPath: this.currentPath });
  }

  private checkAbort(): void {
    const signal = this.o.signal;
    if (!signal?.aborted) return;
    const reason: unknown = signal.reason;
    throw reason instanceof Error && !(reason.name === 'AbortError')
      ? reason
      : new InterruptedError(typeof reason === 'string' ? reason : 'abort');
  }

  private checkFatal(): void {
    if (this.fatal) throw this.fatal.err;
  }
}
