/**
 * The per-job incremental cache: for each file backed up, its identity
 * (size, mtime, ctime, inode) and the content refs + SHA-256 that were
 * stored. A file whose identity is unchanged is not read again.
 *
 * File format (newline-delimited JSON): a header line
 * `{"format":"lifeboat-files-cache","v":1,"repo":ID}`, one line per file
 * `[path, size, mtimeNs, ctimeNs, ino, sha256, content]`, and a trailer
 * `{"sha256":HEX}` over every byte before it. Anything unexpected (wrong
 * checksum, other repository, bad line) discards the whole cache: a damaged
 * cache costs speed, never correctness. The caller additionally checks every
 * blob with repo.hasBlob() before reusing an entry.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isErrnoException } from '../../errors.js';
import { writeFileAtomic } from '../../platform/atomicWrite.js';
import type { Logger } from '../../platform/logger.js';
import type { ContentRef } from '../../repository/tree.js';

const FORMAT = 'lifeboat-files-cache';

/** What identifies an unchanged file (from lstat with bigint: true). */
export interface FileIdentity {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

export interface CachedContent {
  content: ContentRef[];
  sha256: string;
}

type Line = [string, string, string, string, string, string, ContentRef[]];

function identityFields(id: FileIdentity): [string, string, string, string] {
  return [id.size.toString(), id.mtimeNs.toString(), id.ctimeNs.toString(), id.ino.toString()];
}

function isContentRef(value: unknown): value is ContentRef {
  if (typeof value === 'string') return /^[0-9a-f]{16,128}$/.test(value);
  return (
    typeof value === 'object' &&
    value !== null &&
    Number.isSafeInteger((value as { zero?: unknown }).zero) &&
    (value as { zero: number }).zero > 0
  );
}

function isLine(value: unknown): value is Line {
  return (
    Array.isArray(value) &&
    value.length === 7 &&
    value.slice(0, 6).every((v) => typeof v === 'string') &&
    /^[0-9a-f]{64}$/.test(value[5] as string) &&
    Array.isArray(value[6]) &&
    (value[6] as unknown[]).every(isContentRef)
  );
}

function parse(text: string, repoId: string): Map<string, Line> {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const cut = body.lastIndexOf('\n');
  if (cut < 0) throw new Error('no trailer');
  const trailer = JSON.parse(body.slice(cut + 1)) as { sha256?: unknown };
  const covered = body.slice(0, cut + 1);
  if (trailer.sha256 !== createHash('sha256').update(covered).digest('hex'))
    throw new Error('checksum mismatch');
  const lines = covered.split('\n');
  const header = JSON.parse(lines[0] ?? '') as { format?: unknown; v?: unknown; repo?: unknown };
  if (header.format !== FORMAT || header.v !== 1) throw new Error('unknown format');
  if (header.repo !== repoId) throw new Error('written for another repository');
  const entries = new Map<string, Line>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const value: unknown = JSON.parse(line);
    if (!isLine(value)) throw new Error('malformed entry');
    entries.set(value[0], value);
  }
  return entries;
}

/** Incremental cache of one job (see file comment). */
export class FileCache {
  private readonly next: string[] = [];
  private hitCount = 0;

  private constructor(
    readonly path: string,
    private readonly repoId: string,
    private readonly previous: Map<string, Line>,
  ) {}

  /** Load the cache at `path`; missing or invalid caches load as empty (with a log line saying why). */
  static async load(path: string, repoId: string, logger: Logger): Promise<FileCache> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (!(isErrnoException(err) && err.code === 'ENOENT')) {
        logger.warn(`cannot read the file cache ${path} (${String(err)}); every file will be read`);
      }
      return new FileCache(path, repoId, new Map());
    }
    try {
      return new FileCache(path, repoId, parse(text, repoId));
    } catch (err) {
      logger.warn(
        `ignoring the file cache ${path}: ${err instanceof Error ? err.message : String(err)}; every file will be read`,
      );
      return new FileCache(path, repoId, new Map());
    }
  }

  /** Entries loaded from disk and not yet looked up. */
  get size(): number {
    return this.previous.size;
  }

  /** Entries reused in this run. */
  get hits(): number {
    return this.hitCount;
  }

  /** The stored content of `key` if its identity is unchanged. Each entry can be taken once. */
  lookup(key: string, identity: FileIdentity): CachedContent | undefined {
    const line = this.previous.get(key);
    if (!line) return undefined;
    this.previous.delete(key);
    const fields = identityFields(identity);
    if (fields.some((f, i) => line[i + 1] !== f)) return undefined;
    this.hitCount++;
    return { content: line[6], sha256: line[5] };
  }

  /** Remember what was stored for `key` in this run. */
  record(key: string, identity: FileIdentity, content: CachedContent): void {
    const line: Line = [key, ...identityFields(identity), content.sha256, content.content];
    this.next.push(JSON.stringify(line));
  }

  /** Write the entries recorded in this run, atomically (temp file, fsync, rename). */
  async save(): Promise<void> {
    const body =
      JSON.stringify({ format: FORMAT, v: 1, repo: this.repoId }) +
      '\n' +
      this.next.map((l) => l + '\n').join('');
    const trailer = JSON.stringify({ sha256: createHash('sha256').update(body).digest('hex') });
    await writeFileAtomic(this.path, body + trailer + '\n', { mode: 0o600 });
  }
}
