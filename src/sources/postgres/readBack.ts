/**
 * The rows of a restored database read back for its verification, hashed as
 * the backup hashed pg_dump's rows (rowHash.ts): every table through
 * `COPY (SELECT <pg_dump's columns> FROM ONLY t) TO STDOUT` with pg_dump's
 * output settings, over two sessions that share one snapshot. A large table
 * is cut into ranges of heap blocks (`ctid` ranges: a TID range scan, since
 * PostgreSQL 14) so that both sessions read it.
 *
 * Why not `pg_dump --data-only`, as before: it reads a table in one session,
 * and its own process costs ~0.5 s of CPU per 500 MB, on the cores that the
 * index builds running beside the verification also want. Measured on a
 * restored pgbench -s 50 database beside its primary key build: pg_dump 2.12–
 * 2.33 s, two COPYs of halves 1.98–2.11 s, before any hashing.
 *
 * This thread does not parse the rows: it walks the protocol's message
 * headers only to find where the COPY ends, and hands the raw bytes it
 * received, framed with the session they came from, to a worker thread
 * (rowReaderWorker.ts). The worker takes the row out of every CopyData
 * message and adds its hash to its table's sum; the sums are
 * order-independent, so pieces of one table read by different sessions add up.
 */
import type { Connection } from 'pg';
import { OperationError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import { rowHashSource, type LineHasher, type RowHashSum } from '../database/rowHash.js';
import { RowReaderThread, type ReadTableRows } from '../database/rowReaderWorker.js';
import { closePg, connectPg, pgError, type PgClient } from './client.js';
import type { PgTarget } from './connection.js';
import { quoteIdent } from './connection.js';
import { listCopyTables, lockTables, tableKey, type PgCopyTable } from './fingerprint.js';

/** Sessions reading side by side. */
const READ_SESSIONS = 2;
/** Heap blocks per piece of a large table (8 KiB blocks: 32 MiB). */
const PIECE_BLOCKS = 4096;
/** TID range scans, which make a `ctid` range read only its blocks, exist since PostgreSQL 14. */
const TID_RANGE_SCAN_VERSION = 140000;

/** Frames from this thread to the worker: kind (u8), session (u8), payload length (u32 LE), payload. */
const FRAME_HEADER = 6;
/** Payload: a table key (UTF-8); the session's next rows are that table's. */
const FRAME_TABLE = 1;
/** Payload: protocol bytes the session received. */
const FRAME_BYTES = 2;
/** No payload: the session's COPY ended (its CopyDone was in the bytes). */
const FRAME_END = 3;

interface CopyRowsDeps {
  LineHasher: typeof LineHasher;
  RowHashSum: typeof RowHashSum;
}

/**
 * The worker's reader as one self-contained function of its imports (see
 * rowReaderWorker.ts): it may use only its parameters and globals.
 */
export function copyRowsCode({ LineHasher, RowHashSum }: CopyRowsDeps) {
  const HEADER = 6;
  const TABLE = 1;
  const BYTES = 2;
  const END = 3;
  /** 'd': a CopyData message; in a COPY TO its body is one row and its line end. */
  const COPY_DATA = 0x64;

  /** One session's protocol stream: message headers are parsed, CopyData bodies hashed as lines. */
  class SessionStream {
    hasher: LineHasher | undefined;
    private bodyLeft = 0;
    private inRow = false;
    private readonly head = Buffer.alloc(5);
    private headLength = 0;

    bytes(b: Buffer, pos: number, end: number): void {
      while (pos < end) {
        if (this.bodyLeft === 0 && this.headLength === 0 && this.hasher) {
          // Runs of whole CopyData messages, a row each, in one call (rowScan.wat).
          const next = this.hasher.copyData(b, pos, end);
          if (next !== pos) {
            pos = next;
            continue;
          }
        }
        if (this.bodyLeft > 0) {
          const n = Math.min(this.bodyLeft, end - pos);
          if (this.inRow) (this.hasher as LineHasher).push(b, pos, pos + n);
          pos += n;
          this.bodyLeft -= n;
          continue;
        }
        let code: number;
        let length: number;
        if (this.headLength === 0 && end - pos >= 5) {
          code = b[pos] as number;
          length = b.readUInt32BE(pos + 1);
          pos += 5;
        } else {
          const n = Math.min(5 - this.headLength, end - pos);
          b.copy(this.head, this.headLength, pos, pos + n);
          this.headLength += n;
          pos += n;
          if (this.headLength < 5) return;
          this.headLength = 0;
          code = this.head[0] as number;
          length = this.head.readUInt32BE(1);
        }
        if (length < 4) throw new Error(`a protocol message of length ${length}`);
        this.bodyLeft = length - 4;
        this.inRow = code === COPY_DATA;
        if (this.inRow && !this.hasher) throw new Error('rows before their table');
      }
    }

    end(): void {
      if (this.bodyLeft !== 0 || this.headLength !== 0) throw new Error('a COPY ended inside a message');
      if (this.hasher && this.hasher.pending !== 0) throw new Error('a row without its line end');
      this.hasher = undefined;
    }
  }

  /** Feed it the frames in order (push), then call result(): rows and checksum by table key. */
  class CopyRowsReader {
    private readonly sums = new Map<string, InstanceType<typeof RowHashSum>>();
    private readonly sessions = new Map<number, SessionStream>();
    private readonly frame = Buffer.alloc(HEADER);
    private frameLength = 0;
    private kind = 0;
    private session: SessionStream | undefined;
    /** Payload bytes of the current frame still to come. */
    private left = 0;
    private key: Buffer[] = [];
    private failure: Error | undefined;

    push(chunk: Uint8Array): void {
      if (this.failure) return;
      try {
        this.consume(
          Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
        );
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
      }
    }

    result(): Map<string, { rows: number; checksum: string }> {
      if (this.failure) throw this.failure;
      if (this.frameLength !== 0 || this.left !== 0) throw new Error('the rows end inside a frame');
      const out = new Map<string, { rows: number; checksum: string }>();
      for (const [key, sum] of this.sums) out.set(key, { rows: sum.rows, checksum: sum.checksum() });
      return out;
    }

    private consume(b: Buffer): void {
      let pos = 0;
      while (pos < b.length) {
        if (this.left > 0) {
          const n = Math.min(this.left, b.length - pos);
          if (this.kind === BYTES) (this.session as SessionStream).bytes(b, pos, pos + n);
          else this.key.push(Buffer.from(b.subarray(pos, pos + n)));
          pos += n;
          this.left -= n;
          if (this.left === 0 && this.kind === TABLE) this.startTable();
          continue;
        }
        const n = Math.min(HEADER - this.frameLength, b.length - pos);
        b.copy(this.frame, this.frameLength, pos, pos + n);
        this.frameLength += n;
        pos += n;
        if (this.frameLength < HEADER) return;
        this.frameLength = 0;
        this.kind = this.frame[0] as number;
        const id = this.frame[1] as number;
        this.left = this.frame.readUInt32LE(2);
        let session = this.sessions.get(id);
        if (!session) this.sessions.set(id, (session = new SessionStream()));
        this.session = session;
        if (this.kind === END) session.end();
        else if (this.kind !== TABLE && this.kind !== BYTES)
          throw new Error(`unknown frame kind ${this.kind}`);
      }
    }

    private startTable(): void {
      const key = Buffer.concat(this.key).toString('utf8');
      this.key = [];
      let sum = this.sums.get(key);
      if (!sum) this.sums.set(key, (sum = new RowHashSum()));
      (this.session as SessionStream).hasher = new LineHasher(undefined, sum);
    }
  }

  return { CopyRowsReader };
}

/** Hands frames to the worker in the order they are written, whatever session writes them. */
class FrameWriter {
  /** The last write still waiting for a free slot, if any. */
  private tail: Promise<void> | undefined;

  constructor(private readonly thread: RowReaderThread) {}

  /** Append a frame; a promise means it is not all handed over yet (the writer's session should wait). */
  write(kind: number, session: number, payload: Buffer = EMPTY): Promise<void> | undefined {
    const header = Buffer.allocUnsafe(FRAME_HEADER);
    header[0] = kind;
    header[1] = session;
    header.writeUInt32LE(payload.length, 2);
    const wait = this.tail
      ? this.tail.then(() => this.pushBoth(header, payload))
      : this.pushBoth(header, payload);
    if (wait === undefined) return undefined;
    const tracked: Promise<void> = wait.then(() => {
      if (this.tail === tracked) this.tail = undefined;
    });
    this.tail = tracked;
    return tracked;
  }

  private pushBoth(header: Buffer, payload: Buffer): Promise<void> | undefined {
    const wait = this.thread.push(header);
    if (wait) return wait.then(() => this.thread.push(payload));
    return payload.length > 0 ? this.thread.push(payload) : undefined;
  }
}

const EMPTY = Buffer.alloc(0);

/** Protocol message types a COPY TO's data may be interleaved with; any other one ends it. */
const COPY_OUT_MESSAGES = new Set(['d', 'H', 'N', 'S', 'A'].map((c) => c.charCodeAt(0)));
const COPY_DONE = 'c'.charCodeAt(0);
const COPY_DATA = 'd'.charCodeAt(0);

/**
 * A COPY … TO STDOUT run as a `pg` submittable whose bytes bypass pg's
 * parser: from the query until its CopyDone every byte the connection
 * receives goes to the frame writer; the rest (CommandComplete,
 * ReadyForQuery, or an ErrorResponse) goes back to pg, which then calls
 * handleReadyForQuery or handleError. While the worker lags, the socket is
 * paused, so memory stays bounded.
 */
class CopyOut {
  readonly done: Promise<void>;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };
  private socket!: NodeJS.ReadableStream & { pause(): void; resume(): void };
  private pgData!: (chunk: Buffer) => void;
  /** Body bytes of the current message still to come. */
  private bodyLeft = 0;
  private readonly head = Buffer.alloc(5);
  private headLength = 0;

  constructor(
    readonly text: string,
    private readonly session: number,
    private readonly frames: FrameWriter,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  /** Called by pg when the query's turn comes; an error returned is passed to handleError. */
  submit(connection: Connection): Error | undefined {
    const socket = (connection as unknown as { stream: CopyOut['socket'] }).stream;
    const listeners = socket.listeners('data') as CopyOut['pgData'][];
    if (listeners.length !== 1) return new Error("the connection's reader is not pg's own");
    this.socket = socket;
    this.pgData = listeners[0] as CopyOut['pgData'];
    socket.removeListener('data', this.pgData);
    socket.on('data', this.onData);
    connection.query(this.text);
    return undefined;
  }

  handleError(err: unknown): void {
    this.settle.reject(err);
  }

  handleReadyForQuery(): void {
    this.settle.resolve();
  }

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}

  private readonly onData = (chunk: Buffer): void => {
    const end = this.copyEnd(chunk);
    let wait: Promise<void> | undefined;
    if (end === undefined) {
      wait = this.frames.write(FRAME_BYTES, this.session, chunk);
    } else {
      if (end.copied > 0) this.frames.write(FRAME_BYTES, this.session, chunk.subarray(0, end.copied));
      if (end.done) wait = this.frames.write(FRAME_END, this.session);
      this.socket.removeListener('data', this.onData);
      this.socket.on('data', this.pgData);
      if (end.rest.length > 0) this.pgData(end.rest);
    }
    if (wait) {
      this.socket.pause();
      void wait.then(() => this.socket.resume());
    }
  };

  /**
   * Where the COPY's data ends in `chunk`: undefined when all of it is data;
   * else how many of its bytes are (up to and including a CopyDone), whether
   * the COPY ended normally, and the bytes for pg.
   */
  private copyEnd(chunk: Buffer): { copied: number; done: boolean; rest: Buffer } | undefined {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - pos);
        pos += n;
        this.bodyLeft -= n;
        continue;
      }
      // The common case, once per row: a whole CopyData header in this chunk (no copy, no lookup).
      if (this.headLength === 0 && pos + 5 <= chunk.length && chunk[pos] === COPY_DATA) {
        const end = pos + 1 + chunk.readUInt32BE(pos + 1);
        if (end <= chunk.length) pos = end;
        else {
          this.bodyLeft = end - chunk.length;
          pos = chunk.length;
        }
        continue;
      }
      const start = pos;
      const carried = this.headLength;
      const n = Math.min(5 - carried, chunk.length - pos);
      chunk.copy(this.head, carried, pos, pos + n);
      this.headLength += n;
      pos += n;
      if (this.headLength < 5) return undefined;
      this.headLength = 0;
      const code = this.head[0] as number;
      if (COPY_OUT_MESSAGES.has(code)) {
        this.bodyLeft = this.head.readUInt32BE(1) - 4;
      } else if (code === COPY_DONE) {
        return { copied: pos, done: true, rest: chunk.subarray(pos) };
      } else {
        // An ErrorResponse (or anything else): pg reads it whole, header bytes of an earlier chunk included.
        const rest = Buffer.concat([this.head.subarray(0, carried), chunk.subarray(start)]);
        return { copied: start, done: false, rest };
      }
    }
    return undefined;
  }
}

/** One COPY of a table or of a range of its blocks. */
interface ReadPiece {
  key: string;
  sql: string;
  blocks: number;
}

/**
 * The COPYs that read `tables`, largest first (every table has at least one,
 * so an empty table gets its empty sum); ranges of blocks when the server
 * scans them by TID range.
 */
export function planReadPieces(
  tables: readonly PgCopyTable[],
  serverVersionNum: number,
  pieceBlocks = PIECE_BLOCKS,
): ReadPiece[] {
  const pieces: ReadPiece[] = [];
  for (const t of tables) {
    const select = `SELECT ${t.copyColumns.join(', ')} FROM ONLY ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
    const key = tableKey(t);
    if (serverVersionNum < TID_RANGE_SCAN_VERSION || t.blocks < 2 * pieceBlocks) {
      pieces.push({ key, sql: `COPY (${select}) TO STDOUT`, blocks: t.blocks });
      continue;
    }
    // The last range is open: it also reads blocks added since the size was taken.
    for (let first = 0; first < t.blocks; first += pieceBlocks) {
      const last = first + pieceBlocks >= t.blocks;
      const where = `ctid >= '(${first},0)'` + (last ? '' : ` AND ctid < '(${first + pieceBlocks},0)'`);
      pieces.push({ key, sql: `COPY (${select} WHERE ${where}) TO STDOUT`, blocks: pieceBlocks });
    }
  }
  return pieces.sort((a, b) => b.blocks - a.blocks);
}

/**
 * pg_dump's output settings (pg_dump.c setup_connection, and the UTC time
 * zone lifeboat gives it), the database's own encoding as pg_dump uses it,
 * and the COPY settings recorded at backup.
 */
async function setUpSession(
  client: PgClient,
  copySettings: Record<string, string> | undefined,
): Promise<void> {
  await client.query(
    `SELECT set_config('client_encoding', pg_encoding_to_char(encoding), false)
       FROM pg_database WHERE datname = current_database()`,
  );
  await client.query(
    [
      'SET DateStyle = ISO',
      'SET IntervalStyle = postgres',
      'SET extra_float_digits = 3',
      "SET TimeZone = 'UTC'",
      "SET search_path = ''",
      'SET row_security = off',
      'SET statement_timeout = 0',
      'SET lock_timeout = 0',
      'SET idle_in_transaction_session_timeout = 0',
    ].join('; '),
  );
  for (const [name, value] of Object.entries(copySettings ?? {})) {
    await client.query('SELECT set_config($1, $2, false)', [name, value]);
  }
}

/**
 * One session: COPY pieces off the shared list until it is empty, then
 * commit at once. A post-data step running beside (ALTER TABLE … ADD
 * CONSTRAINT) queues for the table locks the first session took; the other
 * session's next COPY of that table queues behind it, so a session holding
 * its locks until the other is done would wait for itself.
 */
async function readSession(
  client: PgClient,
  session: number,
  pieces: ReadPiece[],
  frames: FrameWriter,
  onPiece: (piece: ReadPiece) => void,
): Promise<void> {
  for (let piece = pieces.shift(); piece; piece = pieces.shift()) {
    onPiece(piece);
    await frames.write(FRAME_TABLE, session, Buffer.from(piece.key, 'utf8'));
    const copy = new CopyOut(piece.sql, session, frames);
    void client.query(copy as never);
    await copy.done;
  }
  await client.query('COMMIT');
}

export interface ReadBackOptions {
  target: PgTarget;
  database: string;
  /** COPY settings recorded with the backup's fingerprint. */
  copySettings?: Record<string, string>;
  /** Give up after this long, as the tools' runs do. */
  timeoutMs?: number;
  /** For messages: "verifying database shop". */
  what: string;
  /** Heap blocks per piece of a large table (default 4096). */
  pieceBlocks?: number;
  logger?: Logger;
}

/** Rows and checksum of every table of the database, by table key, read in one snapshot. */
export async function readBackRows(opts: ReadBackOptions): Promise<Map<string, ReadTableRows>> {
  const clients: PgClient[] = [];
  let thread: RowReaderThread | undefined;
  let failure: unknown;
  let failedPiece: ReadPiece | undefined;
  const fail = (err: unknown, piece?: ReadPiece) => {
    if (failure !== undefined) return;
    failure = err;
    failedPiece = piece;
    // Closing the sessions ends their COPYs, so every wait ends.
    for (const client of clients) void closePg(client);
  };
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () =>
            fail(
              new OperationError(
                'E_TIMEOUT',
                `reading the rows back timed out after ${opts.timeoutMs} ms while ${opts.what}`,
                { hint: 'Raise the time limit (a drill has the RTO times its margin).' },
              ),
            ),
          opts.timeoutMs,
        );
  try {
    const first = await connectPg(opts.target, opts.database, opts.what);
    clients.push(first);
    await setUpSession(first, opts.copySettings);
    await first.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const version = Number(
      (await first.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v,
    );
    const tables = await listCopyTables(first, version);
    // As pg_dump does: no DDL between the snapshot and the reads.
    await lockTables(first, tables);
    const pieces = planReadPieces(tables, version, opts.pieceBlocks);
    const count = pieces.length;
    const sessions = Math.max(1, Math.min(READ_SESSIONS, pieces.length));
    if (sessions > 1) {
      const snapshot = (await first.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]?.s;
      for (let i = 1; i < sessions; i++) {
        const other = await connectPg(opts.target, opts.database, opts.what);
        clients.push(other);
        await setUpSession(other, opts.copySettings);
        await other.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await other.query(`SET TRANSACTION SNAPSHOT '${snapshot}'`);
      }
    }
    thread = new RowReaderThread(`new ((${copyRowsCode.toString()})(${rowHashSource})).CopyRowsReader()`);
    const frames = new FrameWriter(thread);
    const working = new Map<number, ReadPiece>();
    const piecesBySession = clients.map(() => 0);
    await Promise.all(
      clients.map((client, session) =>
        readSession(client, session, pieces, frames, (p) => {
          working.set(session, p);
          piecesBySession[session] = (piecesBySession[session] ?? 0) + 1;
        }).catch((err: unknown) => fail(err, working.get(session))),
      ),
    );
    if (failure === undefined) {
      const rows = await thread.result();
      opts.logger?.debug(
        `read back ${tables.length} tables in ${count} pieces over ${clients.length} sessions ` +
          `(pieces per session: ${piecesBySession.join(', ')})`,
      );
      return rows;
    }
  } catch (err) {
    fail(err);
  } finally {
    clearTimeout(timer);
    await Promise.all(clients.map(closePg));
    await thread?.close();
  }
  const what = failedPiece ? `reading table ${failedPiece.key} back while ${opts.what}` : opts.what;
  throw pgError(failure, opts.target, opts.database, what);
}
