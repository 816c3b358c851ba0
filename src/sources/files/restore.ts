/**
 * Restore of a files snapshot into a target directory.
 *
 * Safety rules (the repository is not trusted):
 * - every name is checked (not empty, `.`, `..`, no `/` or NUL, unique among
 *   its siblings) before anything is created for it;
 * - every directory on the way is created by us with mkdir (never recursive)
 *   or, when it already exists, checked with lstat to be a real directory: a
 *   path never passes through a symlink;
 * - files are opened with O_CREAT | O_EXCL | O_NOFOLLOW; replacing an existing
 *   entry writes a new temp file next to it and renames it over the entry, so
 *   neither a symlink nor another hardlink of the old file is written through;
 * - symlinks are only created as leaves, and hardlinks only to files this
 *   restore created.
 * Directory modes and mtimes are applied after their contents. File contents
 * are restored in batches grouped by pack (restorePlan.ts): every chunk is
 * verified by the repository and every file against its recorded SHA-256; a
 * failure is an error entry naming the file and the rest still restores.
 */
import {
  chmodSync,
  constants as fsConstants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { InterruptedError, IntegrityError, isErrnoException } from '../../errors.js';
import { monotonicMs } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { redact } from '../../platform/redact.js';
import type { Repo, SealedBlob } from '../../repository/api.js';
import type { SmallFileWritten } from '../../repository/workerPool.js';
import type { BlobId, Tree, TreeNode } from '../../repository/tree.js';
import { loadAccounts, type Accounts } from './accounts.js';
import { RestoreTargetError } from './errors.js';
import { MAX_SIZE as SMALL_WRITE_MAX, SmallFileWrites } from './smallFileWrites.js';
import { recordedDigest, hashFileLike, type ContentDigest } from './contentDigest.js';
import { ContentFile } from './fileWriter.js';
import { isUtf8, joinRaw, nameBytes } from './names.js';
import { createPathFilter, type PathFilter } from './pathFilter.js';
import { ContentPipeline } from './restorePlan.js';
import { restoreHash, type RestoreHash } from './restoreHash.js';
import { makeDevice, makeFifo } from './specialNodes.js';
import { duplicateNames, nameKey, nameProblem, nodeProblem } from './treeValidation.js';
import type { FilesProgress } from './types.js';
import { writeXattrs } from './xattrs.js';

export type OverwriteMode = 'never' | 'if-changed' | 'always';

export interface RestoreOptions {
  /** Gitignore-style patterns on the path in the snapshot (e.g. `srv/www/*.html`); empty or absent: everything. */
  include?: string[];
  /** never: the target must be empty. if-changed: replace entries that differ. always: replace everything. */
  overwrite: OverwriteMode;
  /** Only list what would be restored (`planned`); nothing is written. */
  dryRun: boolean;
  onProgress?: (p: FilesProgress) => void;
  signal?: AbortSignal;
  logger: Logger;
}

export interface RestoreIssue {
  /** Path in the snapshot. */
  path: string;
  message: string;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  symlinks: number;
  /** fifos and device nodes */
  specials: number;
  /** Content bytes written (holes and hardlinks not counted). */
  bytes: number;
  /** Entries left as they were (unchanged with if-changed, sockets). */
  skipped: number;
  errors: RestoreIssue[];
  /** Dry run only: paths in the snapshot that would be restored. */
  planned?: string[];
}

interface Frame {
  abs: Buffer;
  rel: string;
  nodes: TreeNode[];
  next: number;
  /** The directory's node; absent for the target itself. */
  node?: TreeNode;
  /** pending: not created yet (include rules create it lazily); ready; failed (error already recorded). */
  state: 'pending' | 'ready' | 'failed';
  included: boolean;
  /** Created empty by this restore: nothing can exist in it yet, so no lstat before creating. */
  fresh: boolean;
  dups: Set<string>;
  /** Work that must end before the directory's own metadata is set (never rejects). */
  pending: Promise<void>[];
  xattrs: { path: Buffer; attrs: Record<string, string> }[];
}

/** A file whose content is being restored, with what is needed to finish it. */
class RestoringFile extends ContentFile {
  /** Settles when the file is restored or its error recorded; never rejects. */
  readonly done: Promise<void>;
  settle!: () => void;
  /** What the content is checked against once written (none for a node without one). */
  readonly digest: ContentDigest | undefined;

  constructor(
    readonly parent: Frame,
    readonly node: TreeNode,
    readonly abs: Buffer,
    readonly rel: string,
    dest: Buffer,
    lengthOf: (id: BlobId) => number | undefined,
    /** Hardlink bookkeeping: told the path once this copy exists (undefined when it failed). */
    readonly firstOf: ((path: Buffer | undefined) => void) | undefined,
    hash: RestoreHash,
  ) {
    const digest = recordedDigest(node);
    super(dest, node.content ?? [], CREATE_FLAGS, lengthOf, { hash, hashZeros: !digest?.dataOnly });
    this.digest = digest;
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  /** fileWritten (or the small-file writer) compares the content with the recorded digest. */
  get checksContent(): boolean {
    return this.digest !== undefined;
  }
}

/**
 * A file of one chunk written whole by a worker (smallFileWrites.ts): nothing
 * is created until its chunk has arrived; the pipeline then finishes it, and
 * Restorer.wholeFileWritten hands it over.
 */
class WholeFile extends RestoringFile {
  private data: Buffer | undefined;
  /** Set when `data` is the chunk's stored record (the writing worker opens and checks it). */
  private sealed: SealedBlob | undefined;
  readonly takesSealed = true;

  constructor(
    parent: Frame,
    node: TreeNode,
    abs: Buffer,
    rel: string,
    dest: Buffer,
    lengthOf: (id: BlobId) => number | undefined,
    firstOf: ((path: Buffer | undefined) => void) | undefined,
    hash: RestoreHash,
    private readonly writes: SmallFileWrites,
  ) {
    super(parent, node, abs, rel, dest, lengthOf, firstOf, hash);
  }

  override get complete(): boolean {
    return this.data !== undefined;
  }

  override get ready(): boolean {
    return true;
  }

  override start(): Promise<void> {
    return Promise.resolve();
  }

  /** Keep the chunk (verified, or sealed); the reader waits while too much is queued for the workers. */
  override write(
    _index: number,
    data: Uint8Array,
    _give?: boolean,
    sealed?: SealedBlob,
  ): Promise<void> | undefined {
    this.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.sealed = sealed;
    return this.writes.backlog();
  }

  /** The chunk, once: the file no longer holds it (the batch that writes it does, until sent). */
  takeData(): { data: Buffer; sealed: SealedBlob | undefined } {
    const data = this.data;
    if (!data) throw new Error(`${this.dest.toString()} has no content yet`);
    this.data = Buffer.alloc(0);
    return { data, sealed: this.sealed };
  }
}

/** A worker's verdict on a file it could not write, as the error the calling thread would have met. */
function writeFailure(failure: NonNullable<SmallFileWritten['error']>): Error {
  if (failure.stage === 'verify') {
    return new IntegrityError(
      'restored content does not match the SHA-256 recorded at backup; the file was removed',
    );
  }
  const err: NodeJS.ErrnoException = new Error(failure.message);
  if (failure.code !== undefined) err.code = failure.code;
  return err;
}

// Read-write: a chunk that arrived ahead of its turn may be read back for the SHA-256 (fileWriter.ts).
const CREATE_FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
const PROGRESS_EVERY_MS = 100;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Seconds since the epoch from a decimal nanosecond string (utimes takes seconds as a double). */
export function mtimeSeconds(mtimeNs: string): number {
  const ns = BigInt(mtimeNs);
  const sec = ns / 1_000_000_000n;
  return Number(sec) + Number(ns - sec * 1_000_000_000n) / 1e9;
}

async function lstatOrUndefined(path: Buffer): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A fresh name next to `abs` for write-then-rename replacement. */
function tempSibling(abs: Buffer): Buffer {
  const slash = abs.lastIndexOf(0x2f);
  return Buffer.concat([
    abs.subarray(0, slash + 1),
    Buffer.from(`.lifeboat-restore-${randomBytes(6).toString('hex')}`),
  ]);
}

/** Errors of the target itself, not of one entry: the restore stops (see stopIfTargetUnusable). */
const TARGET_UNUSABLE = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

/** Restore `treeId` into `targetDir` (see file comment); never throws for a single bad entry. */
export async function restoreTree(
  repo: Repo,
  treeId: BlobId,
  targetDir: string,
  opts: RestoreOptions,
): Promise<RestoreResult> {
  const restorer = new Restorer(repo, opts, await loadAccounts());
  return restorer.run(treeId, resolve(targetDir));
}

class Restorer {
  private readonly result: RestoreResult;
  private readonly filter: PathFilter;
  private readonly content: ContentPipeline<RestoringFile>;
  private readonly isRoot = process.getuid?.() === 0;
  /** hardlinkKey → path of the file this restore created for it (undefined if that failed). */
  private readonly links = new Map<string, Promise<Buffer | undefined>>();
  /** Hardlinks not yet linked nor handed to the content pipeline (their first copy is pending). */
  private readonly undecidedLinks = new Set<Promise<void>>();
  private fatal: { err: unknown } | undefined;
  /** The target directory (for the message when it cannot take more). */
  private target = '';
  private lastProgress = 0;
  private currentPath = '';
  /** Files of one small chunk go whole to the repository's workers (when it has them). */
  private readonly smallWrites: SmallFileWrites | undefined;
  /** Plaintext length of a chunk, from the repository's index. */
  private readonly lengthOf = (id: BlobId) => this.repo.blobLength?.(id);

  constructor(
    private readonly repo: Repo,
    private readonly o: RestoreOptions,
    private readonly accounts: Accounts,
  ) {
    this.filter = createPathFilter(o.include ?? [], []);
    const writeFiles = o.dryRun ? undefined : repo.smallFileWriter?.();
    this.smallWrites = writeFiles && new SmallFileWrites(writeFiles);
    this.content = new ContentPipeline<RestoringFile>(repo, {
      done: (file) => void this.fileWritten(file),
      failed: (file, err) => this.fileFailed(file, err),
      checkAbort: () => this.checkAbort(),
      onBytes: (n) => {
        this.result.bytes += n;
        this.progress();
      },
    });
    this.result = { files: 0, dirs: 0, symlinks: 0, specials: 0, bytes: 0, skipped: 0, errors: [] };
    if (o.dryRun) this.result.planned = [];
  }

  async run(treeId: BlobId, target: string): Promise<RestoreResult> {
    this.target = target;
    // Load the root first: a wrong ID or a damaged root fails before anything is created.
    const root = await this.repo.loadTree(treeId);
    if (!Array.isArray(root?.nodes))
      throw new IntegrityError(`tree ${treeId} is malformed: it has no entry list`);
    await this.prepareTarget(target);
    const top = this.frame(Buffer.from(target), '', root, undefined, 'ready', !this.filter.hasIncludes);
    // prepareTarget checked that the target is empty (or made it) when overwriting is not allowed.
    top.fresh = this.o.overwrite === 'never';
    const stack: Frame[] = [top];
    let finished: Promise<void> = Promise.resolve();
    try {
      while (stack.length > 0) {
        this.checkAbort();
        this.checkFatal();
        const frame = stack[stack.length - 1]!;
        const node = frame.nodes[frame.next];
        if (node !== undefined) {
          frame.next++;
          const child = await this.visit(stack, frame, node);
          if (child) stack.push(child);
          continue;
        }
        stack.pop();
        // The directory's files may still wait in a content batch: its metadata is set once they are done.
        const done = this.finishDirAfter(frame);
        if (stack.length > 0) stack[stack.length - 1]!.pending.push(done);
        else finished = done;
      }
      await this.drainContent();
      await finished;
      this.checkFatal();
    } catch (err) {
      await this.content.abandon(err);
      throw err;
    } finally {
      await Promise.allSettled([finished, ...stack.flatMap((f) => f.pending)]);
    }
    this.o.onProgress?.({
      files: this.result.files,
      bytes: this.result.bytes,
      currentPath: this.currentPath,
    });
    return this.result;
  }

  private async prepareTarget(target: string): Promise<void> {
    let st: Stats | undefined;
    try {
      st = await stat(target);
    } catch (err) {
      if (!(isErrnoException(err) && err.code === 'ENOENT')) {
        throw new RestoreTargetError(`cannot use restore target ${target}: ${message(err)}`, { cause: err });
      }
    }
    if (st && !st.isDirectory()) {
      throw new RestoreTargetError(`restore target ${target} exists and is not a directory`, {
        hint: 'Name a new or empty directory to restore into.',
      });
    }
    if (st && this.o.overwrite === 'never' && (await readdir(target)).length > 0) {
      throw new RestoreTargetError(`restore target ${target} is not empty`, {
        hint: 'Restore into a new or empty directory, or allow replacing files with --overwrite if-changed|always.',
      });
    }
    if (!st && !this.o.dryRun) await mkdir(target, { recursive: true, mode: 0o700 });
  }

  private frame(
    abs: Buffer,
    rel: string,
    tree: Tree,
    node: TreeNode | undefined,
    state: Frame['state'],
    included: boolean,
  ): Frame {
    return {
      abs,
      rel,
      nodes: tree.nodes,
      next: 0,
      node,
      state,
      included,
      fresh: false,
      dups: duplicateNames(tree.nodes),
      pending: [],
      xattrs: [],
    };
  }

  private async visit(stack: Frame[], parent: Frame, node: TreeNode): Promise<Frame | undefined> {
    const shownName = typeof node?.name === 'string' ? node.name : '?';
    const rel = parent.rel === '' ? shownName : `${parent.rel}/${shownName}`;
    this.currentPath = rel;
    const problem =
      nodeProblem(node) ??
      nameProblem(node) ??
      (parent.dups.has(nameKey(node)) ? 'another entry in the same directory has the same name' : undefined);
    if (problem) {
      const where = parent.rel === '' ? '(top level)' : parent.rel;
      this.error(rel, `refusing entry ${JSON.stringify(shownName)} in ${where}: ${problem}`);
      return undefined;
    }
    const isDir = node.type === 'dir';
    const included = parent.included || this.filter.included(rel, isDir);
    if (!included && !isDir) return undefined;
    const abs = joinRaw(parent.abs, nameBytes(node));
    if (isDir) return this.enterDir(stack, node, abs, rel, included);
    if (!this.materialize(stack)) return undefined;
    if (this.o.dryRun) {
      await this.plan(node, abs, rel);
      return undefined;
    }
    switch (node.type) {
      case 'file':
        await this.startFile(parent, node, abs, rel);
        break;
      case 'symlink':
        await this.guard(rel, () => this.restoreSymlink(parent, node, abs, rel));
        break;
      case 'socket':
        this.result.skipped++;
        this.o.logger.info(`${rel} is a socket; not restored`);
        break;
      default:
        await this.guard(rel, () => this.restoreSpecial(parent, node, abs, rel));
    }
    return undefined;
  }

  private async enterDir(
    stack: Frame[],
    node: TreeNode,
    abs: Buffer,
    rel: string,
    included: boolean,
  ): Promise<Frame | undefined> {
    let tree: Tree;
    try {
      tree = await this.repo.loadTree(node.subtree!);
      if (!Array.isArray(tree?.nodes)) throw new IntegrityError(`tree ${node.subtree} has no entry list`);
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      this.error(rel, `cannot read the directory listing from the repository: ${message(err)}`);
      return undefined;
    }
    const frame = this.frame(abs, rel, tree, node, 'pending', included);
    if (included && !this.materialize([...stack, frame])) return undefined;
    return frame;
  }

  /** Create (or check) every not-yet-created directory on the stack, outermost first. */
  private materialize(stack: Frame[]): boolean {
    for (const frame of stack) {
      if (frame.state === 'failed') return false;
      if (frame.state === 'ready') continue;
      frame.state = this.createDir(frame) ? 'ready' : 'failed';
      if (frame.state === 'failed') return false;
    }
    return true;
  }

  /** Synchronous, as every directory call of the walk: a thread-pool round trip costs more than mkdir. */
  private createDir(frame: Frame): boolean {
    this.result.dirs++;
    if (this.o.dryRun) {
      this.result.planned!.push(frame.rel);
      return true;
    }
    try {
      mkdirSync(frame.abs, 0o700);
      frame.fresh = true;
      return true;
    } catch (err) {
      if (!(isErrnoException(err) && err.code === 'EEXIST')) {
        this.result.dirs--;
        this.error(frame.rel, `cannot create directory: ${message(err)}`);
        return false;
      }
    }
    const st = lstatSync(frame.abs);
    if (st.isDirectory()) return true;
    if (this.o.overwrite === 'always') {
      // Replace the entry itself (unlink never follows a symlink), then create the directory.
      unlinkSync(frame.abs);
      mkdirSync(frame.abs, 0o700);
      return true;
    }
    this.result.dirs--;
    this.error(
      frame.rel,
      st.isSymbolicLink()
        ? 'a symlink exists in the target where the snapshot has a directory; refusing to restore through it'
        : 'an entry that is not a directory exists in the target where the snapshot has a directory',
    );
    return false;
  }

  /** finishDir once everything in the directory is done (never rejects: a fatal error is recorded). */
  private async finishDirAfter(frame: Frame): Promise<void> {
    frame.nodes = []; // the listing is not needed any more
    await Promise.all(frame.pending);
    frame.pending = [];
    if (this.fatal) return;
    try {
      await this.finishDir(frame);
    } catch (err) {
      this.fatal ??= { err };
    }
  }

  /** Restore every planned file, including hardlinks whose first copy failed (they get their own content). */
  private async drainContent(): Promise<void> {
    await this.content.drain();
    while (this.undecidedLinks.size > 0) {
      await Promise.all([...this.undecidedLinks]);
      await this.content.drain();
    }
  }

  private async finishDir(frame: Frame): Promise<void> {
    if (this.o.dryRun || frame.state !== 'ready') return;
    const node = frame.node;
    if (node?.xattrs) frame.xattrs.push({ path: frame.abs, attrs: node.xattrs });
    if (frame.xattrs.length > 0) {
      for (const e of await writeXattrs(frame.xattrs))
        this.error(frame.rel || '.', `cannot set xattrs: ${e}`);
    }
    if (!node) return;
    await this.guard(frame.rel, async () => {
      // The directory was checked to be a real directory when it was created or entered.
      this.chownPath(frame.abs, node);
      chmodSync(frame.abs, node.mode);
      const t = mtimeSeconds(node.mtimeNs);
      lutimesSync(frame.abs, t, t);
    });
  }

  private async plan(node: TreeNode, abs: Buffer, rel: string): Promise<void> {
    if (node.type === 'socket') return;
    if (this.o.overwrite === 'if-changed' && node.type === 'file') {
      const st = await lstatOrUndefined(abs).catch(() => undefined);
      if (st?.isFile() && st.size === (node.size ?? 0) && this.sameMtime(st, node)) {
        this.result.skipped++;
        return;
      }
    }
    this.result.planned!.push(rel);
    if (node.type === 'file') {
      this.result.files++;
      this.result.bytes += node.size ?? 0;
    } else if (node.type === 'symlink') this.result.symlinks++;
    else this.result.specials++;
  }

  /**
   * Check what is in the way, then hand the file to the content pipeline (or
   * link it to its first copy). Returns once planned; the file is finished
   * later, when its batch is restored (parent.pending tracks it).
   */
  private async startFile(parent: Frame, node: TreeNode, abs: Buffer, rel: string): Promise<void> {
    let firstOf: ((path: Buffer | undefined) => void) | undefined;
    let linkTo: Promise<Buffer | undefined> | undefined;
    if (node.hardlinkKey !== undefined) {
      linkTo = this.links.get(node.hardlinkKey);
      if (!linkTo) this.links.set(node.hardlinkKey, new Promise((r) => (firstOf = r)));
    }
    let existing: Stats | undefined;
    try {
      existing = parent.fresh ? undefined : await lstatOrUndefined(abs);
      if (existing) {
        if (!this.mayReplace(existing, rel)) {
          firstOf?.(undefined);
          return;
        }
        if (
          this.o.overwrite === 'if-changed' &&
          existing.isFile() &&
          (await this.unchanged(abs, existing, node))
        ) {
          this.result.skipped++;
          firstOf?.(undefined);
          return;
        }
      }
    } catch (err) {
      firstOf?.(undefined);
      if (err instanceof InterruptedError) throw err;
      this.error(rel, message(err));
      return;
    }
    const replace = existing !== undefined;
    if (linkTo) {
      parent.pending.push(this.startLink(parent, node, abs, rel, replace, linkTo));
      return;
    }
    const file = this.restoringFile(parent, node, abs, rel, replace, firstOf);
    parent.pending.push(file.done);
    await this.content.add(file);
  }

  /** A further hardlink: link it to the first copy, or restore its content when that copy failed. */
  private startLink(
    parent: Frame,
    node: TreeNode,
    abs: Buffer,
    rel: string,
    replace: boolean,
    linkTo: Promise<Buffer | undefined>,
  ): Promise<void> {
    let decide!: () => void;
    const decided = new Promise<void>((resolve) => (decide = resolve));
    this.undecidedLinks.add(decided);
    void decided.then(() => this.undecidedLinks.delete(decided));
    return (async () => {
      try {
        const first = await linkTo;
        if (first) {
          decide();
          await this.placeLink(first, abs, replace);
          this.result.files++;
          this.progress();
          return;
        }
        // The first copy could not be restored: write this one on its own.
        const file = this.restoringFile(parent, node, abs, rel, replace, undefined);
        await this.content.add(file);
        decide();
        await file.done;
      } catch (err) {
        if (err instanceof InterruptedError || this.o.signal?.aborted) this.fatal ??= { err };
        else if (!this.stopIfTargetUnusable(err)) this.error(rel, message(err));
      } finally {
        decide();
      }
    })();
  }

  private restoringFile(
    parent: Frame,
    node: TreeNode,
    abs: Buffer,
    rel: string,
    replace: boolean,
    firstOf: ((path: Buffer | undefined) => void) | undefined,
  ): RestoringFile {
    const hash = restoreHash(node.size ?? 0, this.repo.contentHasher?.bind(this.repo));
    const dest = replace ? tempSibling(abs) : abs;
    const content = node.content ?? [];
    const size = node.size ?? 0;
    if (
      this.smallWrites &&
      content.length === 1 &&
      typeof content[0] === 'string' &&
      size < SMALL_WRITE_MAX
    ) {
      return new WholeFile(parent, node, abs, rel, dest, this.lengthOf, firstOf, hash, this.smallWrites);
    }
    return new RestoringFile(parent, node, abs, rel, dest, this.lengthOf, firstOf, hash);
  }

  /**
   * Every chunk is written: check the content, set the metadata, move it into
   * place (sync calls: see fileWriter.ts; only the digest of a large file is awaited).
   * Never rejects.
   */
  private async fileWritten(file: RestoringFile): Promise<void> {
    if (file instanceof WholeFile) return this.wholeFileWritten(file);
    const node = file.node;
    try {
      const written = await file.finish();
      if (written.size !== (node.size ?? 0)) {
        throw new IntegrityError(
          `content is ${written.size} bytes but the snapshot records ${node.size ?? 0}`,
        );
      }
      if (file.digest !== undefined && written.sha256 !== file.digest.hex) {
        throw new IntegrityError(
          'restored content does not match the SHA-256 recorded at backup; the file was removed',
        );
      }
      const fd = file.descriptor;
      if (this.isRoot) {
        const owner = this.owner(node);
        fchownSync(fd, owner.uid, owner.gid);
      }
      fchmodSync(fd, node.mode);
      const t = mtimeSeconds(node.mtimeNs);
      futimesSync(fd, t, t);
      file.close();
      if (file.dest !== file.abs) renameSync(file.dest, file.abs);
    } catch (err) {
      this.fileFailed(file, err);
      return;
    }
    this.fileInPlace(file);
  }

  /** fileWritten for a WholeFile: the same checks and metadata, by a worker. Never rejects. */
  private async wholeFileWritten(file: WholeFile): Promise<void> {
    const node = file.node;
    try {
      const { data, sealed } = file.takeData();
      const size = sealed?.rawLength ?? data.length;
      if (size !== (node.size ?? 0)) {
        throw new IntegrityError(`content is ${size} bytes but the snapshot records ${node.size ?? 0}`);
      }
      const owner = this.isRoot ? this.owner(node) : { uid: -1, gid: -1 };
      const written = await this.smallWrites!.write({
        dest: file.dest,
        ...(file.dest !== file.abs ? { final: file.abs } : {}),
        data,
        flags: CREATE_FLAGS,
        uid: owner.uid,
        gid: owner.gid,
        mode: node.mode,
        mtime: mtimeSeconds(node.mtimeNs),
        // One data chunk, no zero runs: either kind of digest is the SHA-256 of the whole content.
        ...(file.digest === undefined ? {} : { sha256: file.digest.hex }),
        ...(sealed
          ? {
              sealed: {
                aad: sealed.associatedData,
                id: sealed.id,
                compressed: sealed.compressed,
                rawLength: sealed.rawLength,
              },
            }
          : {}),
      });
      if (written.error?.failure && sealed) throw sealed.problem(written.error.failure);
      if (written.error) throw writeFailure(written.error);
    } catch (err) {
      this.fileFailed(file, err);
      return;
    }
    this.fileInPlace(file);
  }

  /** A file is restored: count it, queue its xattrs, let its hardlinks follow. */
  private fileInPlace(file: RestoringFile): void {
    const node = file.node;
    if (node.xattrs) file.parent.xattrs.push({ path: file.abs, attrs: node.xattrs });
    this.result.files++;
    this.progress();
    file.firstOf?.(file.abs);
    file.settle();
  }

  /** The file cannot be restored: remove what was written and record why (no half-written file is left). */
  private fileFailed(file: RestoringFile, err: unknown): void {
    file.discard();
    file.firstOf?.(undefined);
    if (err instanceof InterruptedError || this.o.signal?.aborted) this.fatal ??= { err };
    else if (!this.stopIfTargetUnusable(err)) this.error(file.rel, message(err));
    file.settle();
  }

  /**
   * A full, over-quota or read-only target fails every entry after this one: stop the restore with
   * one error that says so, instead of one per remaining file. True when it stopped.
   */
  private stopIfTargetUnusable(err: unknown): boolean {
    if (!isErrnoException(err) || !TARGET_UNUSABLE.has(err.code ?? '')) return false;
    this.fatal ??= {
      err: new RestoreTargetError(`cannot write to ${this.target}: ${message(err)}`, {
        hint:
          err.code === 'EROFS'
            ? 'The target file system is read-only: restore somewhere writable.'
            : 'Free space on the target file system (or raise the quota), or restore into another --target; ' +
              'files restored so far are complete and verified.',
        cause: err,
      }),
    };
    return true;
  }

  private async placeLink(first: Buffer, abs: Buffer, replace: boolean): Promise<void> {
    if (!replace) {
      await link(first, abs);
      return;
    }
    const temp = tempSibling(abs);
    await link(first, temp);
    try {
      await rename(temp, abs);
    } finally {
      await unlink(temp).catch(() => {});
    }
  }

  private async restoreSymlink(parent: Frame, node: TreeNode, abs: Buffer, rel: string): Promise<void> {
    const target =
      node.linkTargetRaw !== undefined ? Buffer.from(node.linkTargetRaw, 'base64') : node.linkTarget!;
    const existing = parent.fresh ? undefined : await lstatOrUndefined(abs);
    if (existing) {
      if (!this.mayReplace(existing, rel)) return;
      if (this.o.overwrite === 'if-changed' && existing.isSymbolicLink()) {
        const current = readlinkSync(abs, { encoding: 'buffer' });
        if (current.equals(Buffer.isBuffer(target) ? target : Buffer.from(target))) {
          this.result.skipped++;
          return;
        }
      }
      const temp = tempSibling(abs);
      symlinkSync(target, temp);
      renameSync(temp, abs);
    } else {
      symlinkSync(target, abs);
    }
    if (this.isRoot) {
      const owner = this.owner(node);
      lchownSync(abs, owner.uid, owner.gid);
    }
    const t = mtimeSeconds(node.mtimeNs);
    lutimesSync(abs, t, t);
    if (node.xattrs) parent.xattrs.push({ path: abs, attrs: node.xattrs });
    this.result.symlinks++;
  }

  private async restoreSpecial(parent: Frame, node: TreeNode, abs: Buffer, rel: string): Promise<void> {
    if (!isUtf8(abs)) {
      this.error(rel, `cannot create a ${node.type} whose path is not UTF-8`);
      return;
    }
    if ((node.type === 'chardev' || node.type === 'blockdev') && !this.isRoot) {
      this.error(rel, `cannot create a device node without root privileges`);
      return;
    }
    const existing = parent.fresh ? undefined : await lstatOrUndefined(abs);
    if (existing) {
      if (!this.mayReplace(existing, rel)) return;
      await unlink(abs);
    }
    const path = abs.toString('utf8');
    if (node.type === 'fifo') await makeFifo(path, node.mode);
    else await makeDevice(path, node.type as 'chardev' | 'blockdev', node.mode, node.rdev ?? 0);
    // Just created by us and checked above: not a symlink.
    if (this.isRoot) {
      const owner = this.owner(node);
      await lchown(abs, owner.uid, owner.gid);
      await chmod(abs, node.mode);
    }
    const t = mtimeSeconds(node.mtimeNs);
    await lutimes(abs, t, t);
    if (node.xattrs) parent.xattrs.push({ path: abs, attrs: node.xattrs });
    this.result.specials++;
  }

  /** May an existing target entry be replaced? Records an error when not. */
  private mayReplace(existing: Stats, rel: string): boolean {
    if (existing.isDirectory()) {
      this.error(rel, 'a directory exists in the target where the snapshot has no directory; not replaced');
      return false;
    }
    if (this.o.overwrite === 'never') {
      this.error(rel, 'already exists in the target; not overwritten (overwrite: never)');
      return false;
    }
    return true;
  }

  /** if-changed: same size and (same mtime or same content). */
  private async unchanged(abs: Buffer, st: Stats, node: TreeNode): Promise<boolean> {
    if (st.size !== (node.size ?? 0)) return false;
    if (this.sameMtime(st, node)) return true;
    const digest = recordedDigest(node);
    if (digest === undefined) return false;
    return (await hashFileLike(abs, node.content ?? [], digest, this.lengthOf, READ_FLAGS)) === digest.hex;
  }

  private sameMtime(st: Stats, node: TreeNode): boolean {
    // utimes works in (double) seconds: a restored file matches its record to about a microsecond.
    return Math.abs(st.mtimeMs / 1000 - mtimeSeconds(node.mtimeNs)) < 2e-6;
  }

  private chownPath(abs: Buffer, node: TreeNode): void {
    if (!this.isRoot) return;
    const owner = this.owner(node);
    lchownSync(abs, owner.uid, owner.gid);
  }

  /** Owner by name when the name exists on this host (as tar does), else by number. */
  private owner(node: TreeNode): { uid: number; gid: number } {
    const uid = (node.user !== undefined ? this.accounts.uidOf(node.user) : undefined) ?? node.uid;
    const gid = (node.group !== undefined ? this.accounts.gidOf(node.group) : undefined) ?? node.gid;
    return { uid, gid };
  }

  private async guard(rel: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      if (!this.stopIfTargetUnusable(err)) this.error(rel, message(err));
    }
  }

  private error(path: string, text: string): void {
    const safe = redact(text);
    this.result.errors.push({ path, message: safe });
    this.o.logger.error(`${path}: ${safe}`);
  }

  private progress(): void {
    if (!this.o.onProgress) return;
    const now = monotonicMs();
    if (now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    this.o.onProgress({ files: this.result.files, bytes: this.result.bytes, currentPath: this.currentPath });
  }

  private checkAbort(): void {
    const signal = this.o.signal;
    if (!signal?.aborted) return;
    const reason: unknown = signal.reason;
    throw reason instanceof Error && reason.name !== 'AbortError'
      ? reason
      : new InterruptedError(typeof reason === 'string' ? reason : 'abort');
  }

  private checkFatal(): void {
    if (this.fatal) throw this.fatal.err;
  }
}
