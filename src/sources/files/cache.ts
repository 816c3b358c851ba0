/**
 * The per-job incremental cache: for each file backed up, its identity
 * (size, mtime, ctime, inode) and the content refs + digest that were
 * stored. A file whose identity is unchanged is not read again.
 *
 * Its memory does not grow with the number of files: the cache file is laid
 * out as the directory tree, one section per directory, and the walker holds
 * only the sections of the directories it is in (as it holds their trees).
 *
 * File format: sections, one JSON line each,
 * `{"files":[[name, size, mtimeNs, ctimeNs, ino, digest, content], …],
 *   "dirs":[[name, offset, length, hash], …]}`
 * where a dir entry points at the section of that subdirectory, written
 * earlier (a directory's section is written when the directory is done, after
 * those of its subdirectories). The last line is the trailer
 * `{"format":"lifeboat-files-cache","v":3,"repo":ID,"tops":[[path, offset, length, hash], …]}`
 * with one section per configured path (holding that path's own entry).
 * `hash` is the SHA-256 (first 32 hex digits) of the section's bytes.
 * `digest` is the file's content digest (contentDigest.ts): its hex for a
 * `sha256`, `data:` + hex for a `dataSha256`. Version 2 (before `dataSha256`)
 * is read too: its digests are all `sha256`; older lifeboats ignore version 3. Names
 * that are not UTF-8 are written as NUL + base64 (a name never holds NUL).
 * Anything unexpected (wrong hash, other repository, bad line) makes the
 * directories concerned, or the whole cache, count as empty: a damaged cache
 * costs speed, never correctness. The caller additionally checks every blob
 * with repo.hasBlob() before reusing an entry.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isErrnoException } from '../../errors.js';
import { fsyncDirectory, tempNameFor } from '../../platform/atomicWrite.js';
import type { Logger } from '../../platform/logger.js';
import type { ContentRef } from '../../repository/tree.js';
import type { ContentDigest } from './contentDigest.js';

const FORMAT = 'lifeboat-files-cache';
const VERSION = 3;
/** Versions read: 2 differs only in having no `data:` digests. */
const READ_VERSIONS = new Set<unknown>([2, 3]);
const DATA_DIGEST = 'data:';
/** The trailer is looked for in this many bytes at the end of the file. */
const TRAILER_MAX = 1024 * 1024;
/** Sections are written in batches of about this many bytes. */
const WRITE_BATCH = 256 * 1024;

/** What identifies an unchanged file (from lstat with bigint: true). */
export interface FileIdentity {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

export interface CachedContent {
  content: ContentRef[];
  digest: ContentDigest;
}

type FileLine = [string, string, string, string, string, string, ContentRef[]];
/** Where a section is: offset, length and hash of its bytes. */
type SectionRef = [number, number, string];
type DirLine = [string, number, number, string];

/** The previous run's entries of one directory. */
export class CachedDir {
  static readonly empty = new CachedDir(new Map(), new Map());
  constructor(
    readonly files: ReadonlyMap<string, FileLine>,
    readonly dirs: ReadonlyMap<string, SectionRef>,
  ) {}
}

/** What this run records for one directory; becomes its section. */
export class DirRecord {
  readonly files: FileLine[] = [];
  readonly dirs: DirLine[] = [];
}

/** The cache key of a name: itself when UTF-8 (`utf8` given), else NUL + base64 of the bytes. */
export function cacheName(raw: Buffer, utf8: string | undefined): string {
  return utf8 ?? `\0${raw.toString('base64')}`;
}

function encodeDigest(digest: ContentDigest): string {
  return digest.dataOnly ? DATA_DIGEST + digest.hex : digest.hex;
}

function decodeDigest(field: string): ContentDigest {
  const dataOnly = field.startsWith(DATA_DIGEST);
  return { hex: dataOnly ? field.slice(DATA_DIGEST.length) : field, dataOnly };
}

function identityFields(id: FileIdentity): [string, string, string, string] {
  return [id.size.toString(), id.mtimeNs.toString(), id.ctimeNs.toString(), id.ino.toString()];
}

const sectionHash = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 32);

function isContentRef(value: unknown): value is ContentRef {
  if (typeof value === 'string') return /^[0-9a-f]{16,128}$/.test(value);
  return (
    typeof value === 'object' &&
    value !== null &&
    Number.isSafeInteger((value as { zero?: unknown }).zero) &&
    (value as { zero: number }).zero > 0
  );
}

function isFileLine(value: unknown): value is FileLine {
  return (
    Array.isArray(value) &&
    value.length === 7 &&
    value.slice(0, 6).every((v) => typeof v === 'string') &&
    /^(data:)?[0-9a-f]{64}$/.test(value[5] as string) &&
    Array.isArray(value[6]) &&
    (value[6] as unknown[]).every(isContentRef)
  );
}

function isDirLine(value: unknown): value is DirLine {
  return (
    Array.isArray(value) &&
    value.length === 4 &&
    typeof value[0] === 'string' &&
    Number.isSafeInteger(value[1]) &&
    Number.isSafeInteger(value[2]) &&
    (value[1] as number) >= 0 &&
    (value[2] as number) > 0 &&
    typeof value[3] === 'string'
  );
}

function parseSection(bytes: Buffer): CachedDir {
  const raw = JSON.parse(bytes.toString('utf8')) as { files?: unknown; dirs?: unknown };
  if (!Array.isArray(raw.files) || !Array.isArray(raw.dirs)) throw new Error('malformed section');
  const files = new Map<string, FileLine>();
  for (const f of raw.files as unknown[]) {
    if (!isFileLine(f)) throw new Error('malformed entry');
    files.set(f[0], f);
  }
  const dirs = new Map<string, SectionRef>();
  for (const d of raw.dirs as unknown[]) {
    if (!isDirLine(d)) throw new Error('malformed entry');
    dirs.set(d[0], [d[1], d[2], d[3]]);
  }
  return new CachedDir(files, dirs);
}

interface Trailer {
  tops: Map<string, SectionRef>;
}

async function readTrailer(fh: FileHandle, repoId: string): Promise<Trailer> {
  const { size } = await fh.stat();
  const tailLength = Math.min(size, TRAILER_MAX);
  const tail = Buffer.alloc(tailLength);
  await fh.read(tail, 0, tailLength, size - tailLength);
  const end = tail.length > 0 && tail[tail.length - 1] === 0x0a ? tail.length - 1 : tail.length;
  const start = tail.lastIndexOf(0x0a, end - 1) + 1;
  if (start === 0 && tailLength < size) throw new Error('no trailer');
  const trailer = JSON.parse(tail.subarray(start, end).toString('utf8')) as {
    format?: unknown;
    v?: unknown;
    repo?: unknown;
    tops?: unknown;
  };
  if (trailer.format !== FORMAT || !READ_VERSIONS.has(trailer.v)) throw new Error('unknown format');
  if (trailer.repo !== repoId) throw new Error('written for another repository');
  if (!Array.isArray(trailer.tops)) throw new Error('malformed trailer');
  const tops = new Map<string, SectionRef>();
  for (const t of trailer.tops as unknown[]) {
    if (!isDirLine(t)) throw new Error('malformed trailer');
    tops.set(t[0], [t[1], t[2], t[3]]);
  }
  return { tops };
}

/** Incremental cache of one job (see file comment): the previous run's file, and this run's. */
export class FileCache {
  private hitCount = 0;
  private damaged = false;
  private readonly tops: DirLine[] = [];
  private out: { handle: FileHandle; tmp: string } | undefined;
  /** Bytes of this run's file so far (written or batched). */
  private written = 0;
  /** Bytes of this run's file on disk. */
  private flushed = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;

  private constructor(
    readonly path: string,
    private readonly repoId: string,
    private readonly logger: Logger,
    private previous: { handle: FileHandle; trailer: Trailer } | undefined,
  ) {}

  /** Open the cache at `path`; missing or invalid caches load as empty (with a log line saying why). */
  static async load(path: string, repoId: string, logger: Logger): Promise<FileCache> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (!(isErrnoException(err) && err.code === 'ENOENT')) {
        logger.warn(`cannot read the file cache ${path} (${String(err)}); every file will be read`);
      }
      return new FileCache(path, repoId, logger, undefined);
    }
    try {
      return new FileCache(path, repoId, logger, { handle, trailer: await readTrailer(handle, repoId) });
    } catch (err) {
      await handle.close();
      logger.warn(
        `ignoring the file cache ${path}: ${err instanceof Error ? err.message : String(err)}; every file will be read`,
      );
      return new FileCache(path, repoId, logger, undefined);
    }
  }

  /** Entries reused in this run. */
  get hits(): number {
    return this.hitCount;
  }

  /** The previous run's section of configured path `top` (holding the path's own entry). */
  top(top: string): Promise<CachedDir> {
    return this.section(this.previous?.trailer.tops.get(top));
  }

  /** The previous run's section of subdirectory `name` of `dir`. */
  child(dir: CachedDir, name: string): Promise<CachedDir> {
    return this.section(dir.dirs.get(name));
  }

  /** The stored content of file `name` in `dir` if its identity is unchanged. */
  lookup(dir: CachedDir, name: string, identity: FileIdentity): CachedContent | undefined {
    const line = dir.files.get(name);
    if (!line) return undefined;
    const fields = identityFields(identity);
    if (fields.some((f, i) => line[i + 1] !== f)) return undefined;
    this.hitCount++;
    return { content: line[6], digest: decodeDigest(line[5]) };
  }

  /** Remember what was stored for file `name` in this run. */
  record(dir: DirRecord, name: string, identity: FileIdentity, content: CachedContent): void {
    dir.files.push([name, ...identityFields(identity), encodeDigest(content.digest), content.content]);
  }

  /** Write the section of a finished directory and list it in its parent's record. */
  async closeDir(dir: DirRecord, name: string, parent: DirRecord): Promise<void> {
    const ref = await this.writeSection(dir);
    if (ref) parent.dirs.push([name, ...ref]);
  }

  /** Write the section of configured path `top` (the record of its holder). */
  async closeTop(top: string, holder: DirRecord): Promise<void> {
    const ref = await this.writeSection(holder);
    if (ref) this.tops.push([top, ...ref]);
  }

  /** Finish this run's file and put it in place atomically (temp file, fsync, rename). */
  async save(): Promise<void> {
    const trailer = JSON.stringify({ format: FORMAT, v: VERSION, repo: this.repoId, tops: this.tops });
    this.append(Buffer.from(`${trailer}\n`));
    const out = await this.output();
    await this.flush();
    this.out = undefined;
    try {
      await out.handle.sync();
    } finally {
      await out.handle.close();
    }
    await rename(out.tmp, this.path);
    await fsyncDirectory(dirname(this.path));
    await this.close();
  }

  /** Release the files; this run's file is dropped unless save() finished. Safe to call twice. */
  async close(): Promise<void> {
    const previous = this.previous;
    this.previous = undefined;
    await previous?.handle.close();
    const out = this.out;
    this.out = undefined;
    if (out) {
      await out.handle.close();
      await rm(out.tmp, { force: true });
    }
  }

  private async section(ref: SectionRef | undefined): Promise<CachedDir> {
    const previous = this.previous;
    if (!ref || !previous) return CachedDir.empty;
    const [offset, length, hash] = ref;
    try {
      const bytes = Buffer.alloc(length);
      // Synchronous: the walk waits for a directory's section before visiting its entries, and
      // a section is a few KiB of a file just read; a thread-pool round trip per directory costs more.
      const bytesRead = readSync(previous.handle.fd, bytes, 0, length, offset);
      if (bytesRead !== length || sectionHash(bytes) !== hash) throw new Error('checksum mismatch');
      return parseSection(bytes);
    } catch (err) {
      if (!this.damaged) {
        this.damaged = true;
        this.logger.warn(
          `the file cache ${this.path} is damaged (${err instanceof Error ? err.message : String(err)}); ` +
            'the files concerned will be read',
        );
      }
      return CachedDir.empty;
    }
  }

  private flushing: Promise<void> = Promise.resolve();

  private async writeSection(dir: DirRecord): Promise<SectionRef | undefined> {
    if (dir.files.length === 0 && dir.dirs.length === 0) return undefined;
    const bytes = Buffer.from(JSON.stringify({ files: dir.files, dirs: dir.dirs }));
    const ref: SectionRef = [this.written, bytes.length, sectionHash(bytes)];
    this.append(bytes);
    this.append(Buffer.from('\n'));
    if (this.batchBytes >= WRITE_BATCH) await this.flush();
    return ref;
  }

  private append(bytes: Buffer): void {
    this.batch.push(bytes);
    this.batchBytes += bytes.length;
    this.written += bytes.length;
  }

  /** Flushes run one after another: directories close concurrently (walk.ts), writes go in order. */
  private flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushNow(): Promise<void> {
    if (this.batchBytes === 0) return;
    const data = Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    const { handle } = await this.output();
    for (let done = 0; done < data.length;) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, this.flushed + done);
      done += bytesWritten;
    }
    this.flushed += data.length;
  }

  private async output(): Promise<{ handle: FileHandle; tmp: string }> {
    if (!this.out) {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = tempNameFor(this.path);
      this.out = { handle: await open(tmp, 'wx', 0o600), tmp };
    }
    return this.out;
  }
}
