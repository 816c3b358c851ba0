import { link, mkdir, open, opendir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AccessDeniedError, LifeboatError, UsageError, isErrnoException } from '../errors.js';
import { fsyncDirectory, tempNameFor } from '../platform/atomicWrite.js';
import { redact } from '../platform/redact.js';
import {
  StorageConflictError,
  StorageIoError,
  StorageNotFoundError,
  StorageUnsupportedError,
} from './errors.js';
import { isTempName, keyProblem, validateKey, validatePrefix, validateRange } from './keys.js';
import type { ObjectInfo, PutOptions, Storage, StorageCapabilities } from './types.js';

export interface LocalStorageOptions {
  /** Mode of new object files (before umask). Default 0o600: repositories hold backups. */
  fileMode?: number;
  /** Mode of new directories (before umask). Default 0o700. */
  dirMode?: number;
}

/** Errno codes that mean "the file system cannot hard-link here", where ifNoneMatch falls back. */
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Object storage on a local (or mounted) file system, for `file:///abs/path`.
 *
 * Each object is one file under the root; the key `data/ab/abcd` is the file
 * `<root>/data/ab/abcd`. Guarantees:
 * - put() streams the body into a temp file next to the target
 *   (`.<name>.tmp-<hex>`), fsyncs it, renames it into place and fsyncs the
 *   directory, so an object is either absent or complete, even after a crash.
 *   Memory stays bounded: the body is written chunk by chunk.
 * - put() with ifNoneMatch publishes with link(), which fails atomically when
 *   the key exists (conditionalCreate). On file systems without hard links
 *   (vfat, some network shares) it falls back to check-then-rename, which is
 *   still never torn but races with a concurrent writer of the same key.
 * - list() never shows temp files or directories; it yields only regular
 *   files whose names are valid keys, and does not follow symlinked
 *   directories (no loops, nothing outside the root).
 * - delete() removes the file only; fan-out directories are kept, because
 *   removing them would race with a concurrent put() into the same directory
 *   and they cost nothing.
 * - put() creates missing directories below the root but never the root
 *   itself: a missing root usually means an unmounted disk, and writing into
 *   the bare mount point would hide that. Use {@link LocalStorage.create} for
 *   `repo init`.
 * - Keys `a` and `a/b` cannot both exist (a file is not a directory); the
 *   repository layout never needs that.
 */
export class LocalStorage implements Storage {
  readonly url: string;
  readonly capabilities: StorageCapabilities = {
    objectLock: false,
    conditionalCreate: true,
    maxConnections: 8,
    packUploads: 2,
  };
  private readonly fileMode: number;
  private readonly dirMode: number;
  private linkUnsupported = false;

  /** `root` must be an absolute path; nothing is checked or created here. */
  constructor(
    readonly root: string,
    opts: LocalStorageOptions = {},
  ) {
    if (!isAbsolute(root)) {
      throw new UsageError(`storage root ${redact(root)} is not an absolute path`, {
        hint: 'Give the repository as an absolute path or a file:///abs/path URL.',
      });
    }
    this.root = normalize(root).replace(/(.)\/+$/, '$1');
    this.url = redact(pathToFileURL(this.root).href);
    this.fileMode = opts.fileMode ?? 0o600;
    this.dirMode = opts.dirMode ?? 0o700;
  }

  /** Open the storage at a `file://` URL or an absolute path without touching the disk. */
  static fromUrl(url: string, opts?: LocalStorageOptions): LocalStorage {
    return new LocalStorage(localPathFromUrl(url), opts);
  }

  /** Create the root directory (and parents) if needed, then open it: for `repo init`. */
  static async create(url: string, opts?: LocalStorageOptions): Promise<LocalStorage> {
    const storage = LocalStorage.fromUrl(url, opts);
    await storage.fs('create', storage.root, async () => {
      try {
        const first = await mkdir(storage.root, { recursive: true, mode: storage.dirMode });
        if (first !== undefined) await fsyncDirectory(dirname(first));
      } catch (err) {
        if (!isErrnoException(err) || (err.code !== 'EEXIST' && err.code !== 'ENOTDIR')) throw err;
      }
      if (!(await stat(storage.root)).isDirectory()) {
        throw new UsageError(
          `cannot create storage at ${storage.url}: ${storage.root} exists and is not a directory`,
          {
            hint: 'Choose a directory path for the repository.',
          },
        );
      }
    });
    return storage;
  }

  /** Absolute file path of a (validated) key. */
  pathFor(key: string): string {
    validateKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Uint8Array | Readable, opts: PutOptions = {}): Promise<void> {
    const path = this.pathFor(key);
    if (opts.retainUntil !== undefined) {
      throw new StorageUnsupportedError(
        `${this.url} cannot lock objects (retainUntil was requested for ${key})`,
        {
          hint: 'Object Lock needs S3 storage with Object Lock enabled; local directories cannot enforce it.',
        },
      );
    }
    const dir = dirname(path);
    const tmp = tempNameFor(path);
    const handle = await this.openTemp(key, tmp, dir);
    try {
      const written = await writeBody(handle, body, (err) => this.fsError(err, 'write', tmp));
      if (opts.size !== undefined && written !== opts.size) {
        throw new StorageIoError(
          `body of ${key} had ${written} bytes but ${opts.size} were announced; nothing was stored`,
          false,
        );
      }
      await this.fs('fsync', tmp, () => handle.sync());
    } catch (err) {
      await handle.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    try {
      await handle.close();
      if (opts.ifNoneMatch) await this.publishExclusive(key, tmp, path);
      else await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      if (err instanceof StorageConflictError) throw err;
      throw this.fsError(err, 'publish', path);
    }
    await this.fs('fsync', dir, () => fsyncDirectory(dir));
  }

  async get(key: string, range?: { offset: number; length: number }): Promise<Readable> {
    const path = this.pathFor(key);
    validateRange(range);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isMissing(err)) throw new StorageNotFoundError(this.url, key, { cause: err });
      throw this.fsError(err, 'read', path);
    }
    let size: number;
    try {
      const info = await handle.stat();
      // open() succeeds on a directory; a directory is not an object.
      if (!info.isFile()) throw new StorageNotFoundError(this.url, key);
      size = info.size;
    } catch (err) {
      await handle.close().catch(() => {});
      if (err instanceof StorageNotFoundError) throw err;
      throw this.fsError(err, 'read', path);
    }
    const start = range?.offset ?? 0;
    const end = range ? Math.min(size, start + range.length) : size;
    if (end <= start) {
      await handle.close();
      return Readable.from([], { objectMode: false });
    }
    // createReadStream's `end` is inclusive; the stream closes the handle when done or destroyed.
    // Reads of up to 1 MiB (not the default 64 KiB): each read is a thread-pool round trip. A range (a
    // restore's few blobs) of up to 4 MiB comes in one read: then the reader (readObject) needs no
    // concatenation, and its buffer owns its memory and can move to a worker thread without a copy.
    // A whole object streams in 1 MiB pieces, so a check's memory does not grow with the pack size.
    const piece = range ? 4 * 1024 * 1024 : 1024 * 1024;
    const highWaterMark = Math.min(Math.max(end - start, 64 * 1024), piece);
    return handle.createReadStream({ start, end: end - 1, highWaterMark });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathFor(key);
    try {
      const info = await stat(path);
      return info.isFile() ? { key, size: info.size, mtimeMs: info.mtimeMs } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.fsError(err, 'stat', path);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    // Only the directory the prefix points into is opened, then only matching entries are descended.
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(dirKey, prefix.slice(slash + 1));
  }

  async delete(key: string): Promise<void> {
    const path = this.pathFor(key);
    try {
      await unlink(path);
    } catch (err) {
      // EISDIR: a directory is not an object, so there is nothing to delete.
      if (isMissing(err) || (isErrnoException(err) && err.code === 'EISDIR')) return;
      throw this.fsError(err, 'delete', path);
    }
    await this.fs('fsync', dirname(path), () => fsyncDirectory(dirname(path)));
  }

  private async *walk(dirKey: string, namePrefix: string): AsyncGenerator<ObjectInfo> {
    const dirPath = dirKey === '' ? this.root : join(this.root, ...dirKey.split('/'));
    let dir;
    try {
      dir = await opendir(dirPath);
    } catch (err) {
      if (isMissing(err)) return;
      throw this.fsError(err, 'list', dirPath);
    }
    // for-await closes the directory handle however the loop ends.
    for await (const entry of dir) {
      if (!entry.name.startsWith(namePrefix) || isTempName(entry.name)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (keyProblem(key) !== undefined) continue; // not something put() could have written
      if (entry.isDirectory()) {
        yield* this.walk(key, '');
      } else if (entry.isFile()) {
        const path = join(dirPath, entry.name);
        try {
          const info = await stat(path);
          yield { key, size: info.size, mtimeMs: info.mtimeMs };
        } catch (err) {
          if (isMissing(err)) continue; // deleted while listing
          throw this.fsError(err, 'list', path);
        }
      }
    }
  }

  /** Create the temp file, making missing directories below (never including) the root. */
  private async openTemp(key: string, tmp: string, dir: string): Promise<FileHandle> {
    try {
      return await open(tmp, 'wx', this.fileMode);
    } catch (err) {
      if (!isErrnoException(err) || err.code !== 'ENOENT') throw this.fsError(err, 'create', tmp);
    }
    await this.assertRootExists(key);
    return this.fs('create', tmp, async () => {
      const first = await mkdir(dir, { recursive: true, mode: this.dirMode });
      // Each new directory is an entry in its parent: make those entries durable too.
      if (first !== undefined) {
        for (let d = dir; d.length >= first.length && d !== dirname(d); d = dirname(d)) {
          await fsyncDirectory(dirname(d));
        }
      }
      return open(tmp, 'wx', this.fileMode);
    });
  }

  private async assertRootExists(key: string): Promise<void> {
    try {
      if ((await stat(this.root)).isDirectory()) return;
    } catch (err) {
      if (!isMissing(err)) throw this.fsError(err, 'open', this.root);
    }
    throw new StorageNotFoundError(this.url, key, {
      hint: `The storage directory ${this.root} does not exist. Check that the disk is mounted, or create the repository with "lifeboat repo init".`,
    });
  }

  /** Link the finished temp file to its key; fails with StorageConflictError if the key exists. */
  private async publishExclusive(key: string, tmp: string, path: string): Promise<void> {
    if (!this.linkUnsupported) {
      try {
        await link(tmp, path);
        await unlink(tmp);
        return;
      } catch (err) {
        if (isErrnoException(err) && err.code === 'EEXIST') throw new StorageConflictError(this.url, key);
        if (!isErrnoException(err) || !LINK_UNSUPPORTED.has(err.code ?? '')) throw err;
        this.linkUnsupported = true;
      }
    }
    // Without hard links: never torn, but not atomic against a concurrent writer of the same key.
    if ((await this.stat(key)) !== undefined) throw new StorageConflictError(this.url, key);
    await rename(tmp, path);
  }

  /** Run one file system step, mapping its failure through fsError(). */
  private async fs<T>(action: string, path: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      throw this.fsError(err, action, path);
    }
  }

  /** Turn a file system error into a LifeboatError that names the path and what to do. */
  private fsError(err: unknown, action: string, path: string): Error {
    if (err instanceof LifeboatError) return err;
    const code = isErrnoException(err) ? err.code : undefined;
    const detail = err instanceof Error ? err.message : String(err);
    switch (code) {
      case 'EACCES':
      case 'EPERM':
        return new AccessDeniedError(`permission denied: cannot ${action} ${path} in ${this.url}`, {
          cause: err,
          hint: `Check that the user running lifeboat (uid ${process.getuid?.() ?? '?'}) may read and write ${this.root} and everything below it (ls -ld ${path}).`,
        });
      case 'EROFS':
        return new StorageIoError(`cannot ${action} ${path}: the file system is read-only`, false, {
          cause: err,
          hint: `Remount ${this.root} read-write, or use a read-only command.`,
        });
      case 'ENOSPC':
      case 'EDQUOT':
        return new StorageIoError(`cannot ${action} ${path}: no space left (${code})`, false, {
          cause: err,
          hint: `Free space on the file system holding ${this.root}, or prune old restore points.`,
        });
      case 'ENOTDIR':
      case 'EEXIST':
      case 'EISDIR':
        return new StorageIoError(
          `cannot ${action} ${path}: a file and a directory collide (${code}); the key clashes with another object`,
          false,
          { cause: err },
        );
      case 'EMFILE':
      case 'ENFILE':
      case 'EAGAIN':
      case 'EBUSY':
        return new StorageIoError(`cannot ${action} ${path}: ${detail}`, true, { cause: err });
      default:
        return new StorageIoError(`cannot ${action} ${path}: ${detail}`, false, { cause: err });
    }
  }
}

/** Resolve a `file://` URL or an absolute path to an absolute path; anything else is a UsageError. */
export function localPathFromUrl(url: string): string {
  if (url.startsWith('/')) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new UsageError(`invalid storage URL ${redact(url)}`, {
      cause: err,
      hint: 'Use file:///absolute/path or an absolute path.',
    });
  }
  if (parsed.protocol !== 'file:') {
    throw new UsageError(`${redact(url)} is not a file:// URL`, { hint: 'Use file:///absolute/path.' });
  }
  if (parsed.host !== '' && parsed.host !== 'localhost') {
    throw new UsageError(
      `file URL ${redact(url)} names host "${parsed.host}"; only local paths are supported`,
      {
        hint: 'A file URL needs three slashes and an absolute path: file:///srv/backups/repo.',
      },
    );
  }
  return fileURLToPath(parsed);
}

function isMissing(err: unknown): boolean {
  return isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR');
}

/**
 * Write `body` to `handle` one chunk at a time (bounded memory) and return the
 * byte count. Errors of the body stream propagate unchanged; file system
 * errors go through `mapError`.
 */
async function writeBody(
  handle: FileHandle,
  body: Uint8Array | Readable,
  mapError: (err: unknown) => Error,
): Promise<number> {
  const writeAll = async (chunk: Uint8Array): Promise<void> => {
    let done = 0;
    try {
      while (done < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.length - done);
        done += bytesWritten;
      }
    } catch (err) {
      throw mapError(err);
    }
  };
  if (body instanceof Uint8Array) {
    await writeAll(body);
    return body.length;
  }
  let total = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
    await writeAll(bytes);
    total += bytes.length;
  }
  return total;
}
