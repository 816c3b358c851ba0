/**
 * Row checksums read straight from a pg_dump custom-format archive while it
 * streams (`--format=custom --compress=0`): the header and table of contents
 * say which dump id is the data of which table, and every data block holds
 * that table's rows exactly as COPY produced them, one `\n`-terminated line
 * per row, ended by COPY's `\.` marker. Each row is hashed (rowHash.ts) on
 * the way into the repository, so the backup's checksums cost no extra scan
 * of the database; the verification of a restore hashes the rows it reads
 * back from the restored database the same way (readBack.ts).
 *
 * Layout (pg_backup_archiver.c, pg_backup_custom.c; archive versions 1.12 to
 * 1.16, PostgreSQL 9.x to 17+): "PGDMP", version (3 bytes), int size, offset
 * size, format; compression (an int before 1.15, one byte from 1.15); seven
 * date ints and three strings; then the TOC: a count and the entries. An int
 * is a sign byte and `intSize` little-endian bytes; a string is its length
 * as an int (-1 for NULL) and its bytes. After the TOC come data blocks: a
 * block type (1 = table data, 3 = large objects), the dump id, then chunks
 * (length int + bytes) up to a zero length. Anything else (a compressed or
 * unknown archive) makes the reader fail, and the caller falls back to
 * checksums computed by the server. A restore also reads the TOC entries'
 * SQL from the archive's head (readTocEntries) to plan its post-data step
 * (postData.ts).
 */
import { LineHasher, rowHashSource } from '../database/rowHash.js';
import { RowReaderThread } from '../database/rowReaderWorker.js';
import { tableKey } from './fingerprint.js';

/** Rows and checksum of one table, as read from the archive. */
export interface ArchiveTableRows {
  rows: number;
  checksum: string;
}

interface Head {
  intSize: number;
  /** Bytes of the header and TOC. */
  length: number;
  /** dump id → table key, for TABLE DATA entries. */
  tables: Map<number, string>;
  /** dump id → entry, for every TOC entry (only when asked for: a restore plans with them). */
  entries?: Map<number, ArchiveTocEntry>;
}

/** What a restore needs to know of one TOC entry. */
export interface ArchiveTocEntry {
  /** Kind of object, as pg_restore -l shows it: "TABLE", "CONSTRAINT", "INDEX", … */
  desc: string;
  /** The SQL that creates it. */
  defn: string;
  /** Tablespace pg_restore selects for it ('' for the default). */
  tablespace: string;
  /** pg_dump's section: 2 pre-data, 3 data, 4 post-data (1: none, e.g. ENCODING). */
  section: number;
  /** For TABLE DATA: the `COPY … FROM stdin;` its rows are loaded with ('' otherwise). */
  copyStmt: string;
  /** Schema and name of the object ('' when the entry has none). */
  namespace: string;
  tag: string;
}

/** Where a table's rows go as the archive streams: every byte of its data block, in order. */
export interface ArchiveRowSink {
  push(b: Buffer, start: number, end: number): void;
  /** Bytes after the last row end seen (0 at a clean end of the block). */
  readonly pending: number;
  /** The table's data block ended. */
  end?(): void;
  /**
   * Optional fast path (LineHasher): take the rows of whole chunks from b[pos] (a chunk's length, 4-byte
   * ints) on, framing included; returns where the reader goes on.
   */
  archiveChunks?(b: Buffer, pos: number, end: number): number;
}

type State = 'head' | 'blockType' | 'dataId' | 'blobsId' | 'blobOid' | 'chunkLen' | 'chunkData';

/** What the archive reader's code uses from other modules. */
interface ArchiveRowsDeps {
  LineHasher: typeof LineHasher;
  tableKey: (table: { schema: string; name: string }) => string;
}

/**
 * The reader's code as one self-contained function of its imports, so that a
 * worker thread runs this very code from its source text (rowReaderWorker.ts):
 * it may use only its parameters and globals.
 */
export function archiveRowsCode({ LineHasher, tableKey }: ArchiveRowsDeps) {
  const BLK_DATA = 1;
  const BLK_BLOBS = 3;
  const END_OF_COPY = Buffer.from('\\.');

  const version = (maj: number, min: number, rev = 0) => ((maj * 256 + min) * 256 + rev) * 256;
  const K_VERS_1_12 = version(1, 12);
  const K_VERS_1_14 = version(1, 14);
  const K_VERS_1_15 = version(1, 15);
  const K_VERS_1_16 = version(1, 16);
  const K_VERS_MAX = version(1, 16, 255);

  class NeedMore extends Error {}

  /** A cursor over the bytes of the archive's header and TOC; throws NeedMore at their end. */
  class HeadCursor {
    pos = 0;
    intSize = 4;
    constructor(private readonly b: Buffer) {}

    byte(): number {
      if (this.pos >= this.b.length) throw new NeedMore();
      return this.b[this.pos++] as number;
    }

    int(): number {
      if (this.pos + 1 + this.intSize > this.b.length) throw new NeedMore();
      const negative = this.b[this.pos] !== 0;
      let v = 0;
      for (let i = 0; i < this.intSize; i++) v += (this.b[this.pos + 1 + i] as number) * 2 ** (8 * i);
      this.pos += 1 + this.intSize;
      return negative ? -v : v;
    }

    str(): string | null {
      const len = this.int();
      if (len < 0) return null;
      if (this.pos + len > this.b.length) throw new NeedMore();
      const s = this.b.toString('utf8', this.pos, this.pos + len);
      this.pos += len;
      return s;
    }

    skip(n: number): void {
      if (this.pos + n > this.b.length) throw new NeedMore();
      this.pos += n;
    }
  }

  /** Parse header and TOC from the start of the archive, or throw NeedMore. */
  function parseHead(b: Buffer, withEntries = false): Head {
    const c = new HeadCursor(b);
    c.skip(5);
    if (b.toString('latin1', 0, 5) !== 'PGDMP') throw new Error('not a pg_dump archive');
    const v = version(c.byte(), c.byte(), c.byte());
    if (v < K_VERS_1_12 || v > K_VERS_MAX) throw new Error(`unsupported archive version ${v.toString(16)}`);
    c.intSize = c.byte();
    if (c.intSize < 1 || c.intSize > 8) throw new Error(`unsupported integer size ${c.intSize}`);
    const offSize = c.byte();
    if (c.byte() !== 1) throw new Error('not a custom-format archive');
    const compression = v >= K_VERS_1_15 ? c.byte() : c.int();
    if (compression !== 0) throw new Error('the archive is compressed');
    for (let i = 0; i < 7; i++) c.int();
    c.str();
    c.str();
    c.str();
    const count = c.int();
    const tables = new Map<number, string>();
    const entries = withEntries ? new Map<number, ArchiveTocEntry>() : undefined;
    for (let i = 0; i < count; i++) {
      const dumpId = c.int();
      c.int(); // had a data dumper
      c.str(); // table oid
      c.str(); // oid
      const tag = c.str();
      const desc = c.str();
      const section = c.int();
      const defn = c.str();
      c.str(); // drop statement
      const copyStmt = c.str();
      const namespace = c.str();
      const tablespace = c.str();
      if (v >= K_VERS_1_14) c.str(); // table access method
      if (v >= K_VERS_1_16) c.int(); // relkind
      c.str(); // owner
      c.str(); // "false": WITH OIDS
      while (c.str() !== null); // dependencies
      c.skip(1 + offSize); // data offset (custom format)
      if (desc === 'TABLE DATA' && tag !== null && namespace !== null) {
        tables.set(dumpId, tableKey({ schema: namespace, name: tag }));
      }
      entries?.set(dumpId, {
        desc: desc ?? '',
        defn: defn ?? '',
        tablespace: tablespace ?? '',
        section,
        copyStmt: copyStmt ?? '',
        namespace: namespace ?? '',
        tag: tag ?? '',
      });
    }
    return { intSize: c.intSize, length: c.pos, tables, entries };
  }

  /** The TOC entries by dump id, or undefined while `b` (the archive's first bytes) ends inside the TOC. */
  function readTocEntries(b: Buffer): Map<number, ArchiveTocEntry> | undefined {
    try {
      return parseHead(b, true).entries;
    } catch (err) {
      if (err instanceof NeedMore) return undefined;
      throw err;
    }
  }

  /**
   * Feed it the archive's bytes in order (push), then call result(): the rows
   * and checksum of every table whose data the archive holds, by fingerprint
   * table key. A malformed or unsupported archive makes result() throw. Given
   * `sinkFor`, the rows of each table data block go to the sink it returns
   * for the block's dump id instead (a restore loading them itself), and
   * result() only checks that the archive ended cleanly.
   */
  class ArchiveRowReader {
    constructor(private readonly sinkFor?: (dumpId: number) => ArchiveRowSink | undefined) {}

    private state: State = 'head';
    private headBytes: Buffer[] = [];
    private headLength = 0;
    private nextHeadTry = 64 * 1024;
    private head: Head | undefined;
    /** Carry for an int split across pushes. */
    private small = Buffer.alloc(16);
    private smallLength = 0;
    private intValue = 0;
    private chunkLeft = 0;
    /** Whether the chunks being read belong to a large object (else to table data). */
    private inBlob = false;
    private current: ArchiveRowSink | undefined;
    private readonly hashers = new Map<string, LineHasher>();
    private failure: Error | undefined;

    push(chunk: Uint8Array): void {
      if (this.failure) return;
      try {
        this.consume(
          Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
        );
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        this.headBytes = [];
      }
    }

    /** Every table's rows and checksum; throws when the archive could not be read to a clean end. */
    result(): Map<string, ArchiveTableRows> {
      if (!this.failure && this.state === 'head') {
        try {
          this.tryHead(true);
        } catch (err) {
          this.failure = err instanceof Error ? err : new Error(String(err));
        }
      }
      if (this.failure) throw this.failure;
      if (this.state !== 'blockType' || this.smallLength !== 0)
        throw new Error('the archive ends in the middle');
      const out = new Map<string, ArchiveTableRows>();
      for (const [key, h] of this.hashers) out.set(key, { rows: h.sum.rows, checksum: h.sum.checksum() });
      return out;
    }

    private consume(b: Buffer): void {
      if (this.state === 'head') {
        // A copy: the caller may reuse the buffer (a worker's slot) once push returns.
        this.headBytes.push(Buffer.from(b));
        this.headLength += b.length;
        if (this.headLength < this.nextHeadTry) return;
        const rest = this.tryHead(false);
        if (rest === undefined) return;
        b = rest;
      }
      const head = this.head as Head;
      const intBytes = 1 + head.intSize;
      let pos = 0;
      while (pos < b.length) {
        if (
          this.state === 'chunkLen' &&
          this.smallLength === 0 &&
          intBytes === 5 &&
          this.current?.archiveChunks
        ) {
          // Runs of whole rows, one chunk each as pg_dump writes them, in one call (rowScan.wat).
          const next = this.current.archiveChunks(b, pos, b.length);
          if (next !== pos) {
            pos = next;
            continue;
          }
        }
        if (this.state === 'chunkData') {
          const end = Math.min(b.length, pos + this.chunkLeft);
          this.current?.push(b, pos, end);
          this.chunkLeft -= end - pos;
          pos = end;
          if (this.chunkLeft === 0) this.state = 'chunkLen';
          continue;
        }
        if (this.state === 'blockType') {
          const type = b[pos++];
          if (type === BLK_DATA) this.state = 'dataId';
          else if (type === BLK_BLOBS) this.state = 'blobsId';
          else throw new Error(`unknown block type ${type}`);
          continue;
        }
        pos = this.readInt(b, pos, intBytes);
        if (pos < 0) return;
        const value = this.intValue;
        switch (this.state) {
          case 'dataId': {
            const key = head.tables.get(value);
            this.current = undefined;
            if (this.sinkFor) {
              this.current = this.sinkFor(value);
            } else if (key !== undefined) {
              if (this.hashers.has(key)) throw new Error(`two data blocks for table ${key}`);
              const hasher = new LineHasher(END_OF_COPY);
              this.hashers.set(key, hasher);
              this.current = hasher;
            }
            this.inBlob = false;
            this.state = 'chunkLen';
            break;
          }
          case 'blobsId':
            this.state = 'blobOid';
            break;
          case 'blobOid':
            // A zero OID ends the large-objects block.
            this.inBlob = true;
            this.current = undefined;
            this.state = value === 0 ? 'blockType' : 'chunkLen';
            break;
          case 'chunkLen':
            if (value < 0) throw new Error('negative chunk length');
            if (value > 0) {
              this.chunkLeft = value;
              this.state = 'chunkData';
            } else if (this.inBlob) {
              this.state = 'blobOid';
            } else {
              if (this.current && this.current.pending !== 0) throw new Error('a row without its line end');
              this.current?.end?.();
              this.current = undefined;
              this.state = 'blockType';
            }
            break;
          default:
            throw new Error(`unexpected reader state ${this.state}`);
        }
      }
    }

    /**
     * Read an int (sign byte + little-endian bytes) that may be split across
     * pushes into intValue; returns the position after it, or -1 when this
     * push ends first. No object per call: it runs once per row.
     */
    private readInt(b: Buffer, pos: number, size: number): number {
      let src = b;
      let at = pos;
      if (this.smallLength > 0 || pos + size > b.length) {
        const take = Math.min(size - this.smallLength, b.length - pos);
        b.copy(this.small, this.smallLength, pos, pos + take);
        this.smallLength += take;
        if (this.smallLength < size) return -1;
        this.smallLength = 0;
        src = this.small;
        at = 0;
        pos += take;
      } else {
        pos += size;
      }
      let v = 0;
      for (let i = size - 1; i >= 1; i--) v = v * 256 + (src[at + i] as number);
      this.intValue = src[at] !== 0 ? -v : v;
      return pos;
    }

    /** Try to parse header and TOC from what has arrived; returns the bytes after them, or undefined. */
    private tryHead(atEnd: boolean): Buffer | undefined {
      const all = Buffer.concat(this.headBytes, this.headLength);
      try {
        this.head = parseHead(all);
      } catch (err) {
        if (!(err instanceof NeedMore)) throw err;
        if (atEnd) throw new Error('the archive ends inside its table of contents');
        // Try again when twice as much has arrived: parsing stays linear in the TOC size.
        this.headBytes = [all];
        this.nextHeadTry = this.headLength * 2;
        return undefined;
      }
      this.headBytes = [];
      this.state = 'blockType';
      const rest = all.subarray(this.head.length);
      if (atEnd && rest.length > 0) this.consume(rest);
      return rest;
    }
  }

  return { ArchiveRowReader, readTocEntries };
}

export const { ArchiveRowReader, readTocEntries } = archiveRowsCode({ LineHasher, tableKey });
export type ArchiveRowReader = InstanceType<typeof ArchiveRowReader>;

/**
 * An ArchiveRowReader on a worker thread, with the same result. The worker
 * knows no tableKey (it lives with the connection code): it keys tables by
 * schema and name in JSON, turned into table keys here.
 */
export function startArchiveRowThread(): RowReaderThread {
  const deps = `{ LineHasher: ${rowHashSource}.LineHasher, tableKey: (t) => JSON.stringify([t.schema, t.name]) }`;
  return new RowReaderThread(`new ((${archiveRowsCode.toString()})(${deps})).ArchiveRowReader()`, (key) => {
    const [schema, name] = JSON.parse(key) as [string, string];
    return tableKey({ schema, name });
  });
}
