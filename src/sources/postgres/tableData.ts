/**
 * The data section of a streamed PostgreSQL restore, loaded by lifeboat
 * itself over several sessions.
 *
 * Why not pg_restore: it loads a table through one COPY in one session, and
 * runs several sessions (`--jobs`) only from a seekable file and only one
 * table per session. One backend's COPY FROM uses one core, so a database
 * whose data is mostly one table — the common case, and pgbench's — loads no
 * faster on a machine with more. A COPY text stream has one row per line
 * (values escape their newlines), so the rows can be cut into pieces at any
 * line end and loaded by concurrent COPYs into the same table: each piece
 * goes to whichever session is free, and a session keeps its COPY into a
 * table open while it keeps getting pieces of it. The rows are the same; the
 * order they take on disk is not (a heap promises none).
 *
 * Only TABLE DATA entries with a COPY statement are loaded this way, and
 * SEQUENCE SET entries (plain SQL) run on a session; anything else in the
 * data section (large objects, a dump made with INSERTs) goes through
 * pg_restore with a list of those entries. Each COPY commits on its own, as
 * with pg_restore; on the first failure the other sessions are closed, which
 * rolls back their open COPYs, and the error names the table.
 */
import type { CopyStreamQuery } from 'pg-copy-streams';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { IntegrityError, LifeboatError, OperationError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import { ArchiveRowReader, type ArchiveRowSink, type ArchiveTocEntry } from './archiveRows.js';
import { closePg, connectPg, pgError, type PgClient } from './client.js';
import type { PgTarget } from './connection.js';

/** Bytes of rows per piece handed to a session: big enough that a piece costs one message, small enough to share a table. */
const PIECE_BYTES = 1024 * 1024;

export interface TableDataContext {
  /** A fresh stream of the whole archive. */
  source: () => Readable;
  /** The archive's TOC entries by dump id. */
  entries: ReadonlyMap<number, ArchiveTocEntry>;
  target: PgTarget;
  database: string;
  /** Concurrent COPY sessions (at least 1). */
  sessions: number;
  /** What the restore is, for messages: "restoring database shop into shop_copy". */
  what: string;
  /** Give up (and roll back the open COPYs) after this long, as the tools' runs do. */
  timeoutMs?: number;
  logger: Logger;
}

export interface TableDataPlan {
  /** TABLE DATA entries lifeboat loads, by dump id. */
  tables: Map<number, ArchiveTocEntry>;
  /** SQL of SEQUENCE SET entries, run after the tables. */
  sequenceSql: string[];
  /** Other data-section entries: restored by pg_restore from these list lines. */
  others: string[];
}

const isLoadable = (e: ArchiveTocEntry) => e.desc === 'TABLE DATA' && /^COPY /.test(e.copyStmt);

/** Split the archive's data section into what lifeboat loads itself and what pg_restore must. */
export function planTableData(entries: ReadonlyMap<number, ArchiveTocEntry>): TableDataPlan {
  const plan: TableDataPlan = { tables: new Map(), sequenceSql: [], others: [] };
  for (const [id, e] of entries) {
    if (e.section !== SECTION_DATA) continue;
    if (isLoadable(e)) plan.tables.set(id, e);
    else if (e.desc === 'SEQUENCE SET' && e.defn) plan.sequenceSql.push(e.defn);
    else plan.others.push(`${id};`);
  }
  return plan;
}

const SECTION_DATA = 3;

/**
 * Settings each loading session starts with, as pg_restore's: the archive's
 * client encoding and string syntax, an empty search_path (pg_dump qualifies
 * every name), no server-side timeouts, and row security off so that a
 * policy makes COPY fail instead of silently dropping rows.
 */
export function sessionSetupSql(entries: ReadonlyMap<number, ArchiveTocEntry>): string {
  const fromArchive = [...entries.values()]
    .filter((e) => ['ENCODING', 'STDSTRINGS', 'SEARCHPATH'].includes(e.desc) && e.defn)
    .map((e) => e.defn.trim());
  return [
    'SET statement_timeout = 0',
    'SET lock_timeout = 0',
    'SET idle_in_transaction_session_timeout = 0',
    'SET client_min_messages = warning',
    'SET row_security = off',
    ...fromArchive.map((s) => s.replace(/;$/, '')),
  ].join('; ');
}

/** A table's rows cut into pieces of whole lines. */
interface Piece {
  dumpId: number;
  bytes: Buffer;
}

/** Pieces waiting for a session; the reader waits while it is full. */
class PieceQueue {
  private readonly pieces: Piece[] = [];
  private readonly takers: Array<(p: Piece | undefined) => void> = [];
  private roomWaiter: (() => void) | undefined;
  private closed = false;
  /** Closed because something failed: sessions stop without committing. */
  aborted = false;

  constructor(private readonly limit: number) {}

  put(piece: Piece): void {
    const taker = this.takers.shift();
    if (taker) taker(piece);
    else this.pieces.push(piece);
  }

  /** The next piece, or undefined once the queue is closed and empty. */
  take(): Promise<Piece | undefined> {
    const piece = this.pieces.shift();
    if (this.roomWaiter && this.pieces.length < this.limit) {
      this.roomWaiter();
      this.roomWaiter = undefined;
    }
    if (piece || this.closed) return Promise.resolve(piece);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** Resolves when the queue has room (at once if it has). */
  room(): Promise<void> {
    if (this.pieces.length < this.limit || this.closed) return Promise.resolve();
    return new Promise((resolve) => (this.roomWaiter = resolve));
  }

  /** No more pieces: waiting takers get undefined, and so does every take once the queue is empty. */
  close(abort = false): void {
    this.closed = true;
    if (abort) {
      this.aborted = true;
      this.pieces.length = 0;
    }
    for (const taker of this.takers.splice(0)) taker(undefined);
    this.roomWaiter?.();
    this.roomWaiter = undefined;
  }
}

/** Collects one table's rows (its data block, in any push sizes) and cuts them into pieces at line ends. */
class PieceCutter implements ArchiveRowSink {
  private buf = Buffer.allocUnsafe(PIECE_BYTES);
  private used = 0;
  /** End of the last whole line in buf. */
  private lineEnd = 0;

  constructor(
    private readonly dumpId: number,
    private readonly queue: PieceQueue,
  ) {}

  get pending(): number {
    return this.used - this.lineEnd;
  }

  push(b: Buffer, start: number, end: number): void {
    while (start < end) {
      if (this.used === this.buf.length) this.makeRoom();
      const n = Math.min(end - start, this.buf.length - this.used);
      b.copy(this.buf, this.used, start, start + n);
      this.used += n;
      start += n;
      // pg_dump writes one row per chunk, so the last byte is nearly always a line end.
      if (this.buf[this.used - 1] === 10) this.lineEnd = this.used;
      else {
        const lf = this.buf.lastIndexOf(10, this.used - 1);
        if (lf >= this.lineEnd) this.lineEnd = lf + 1;
      }
    }
  }

  end(): void {
    if (this.used > 0) this.queue.put({ dumpId: this.dumpId, bytes: this.buf.subarray(0, this.used) });
    this.buf = Buffer.alloc(0);
    this.used = this.lineEnd = 0;
  }

  /** The buffer is full: hand out its whole lines, or grow it for a row longer than a piece. */
  private makeRoom(): void {
    const tail = this.used - this.lineEnd;
    const next = Buffer.allocUnsafe(this.lineEnd > 0 ? PIECE_BYTES : this.buf.length * 2);
    this.buf.copy(next, 0, this.lineEnd, this.used);
    if (this.lineEnd > 0) this.queue.put({ dumpId: this.dumpId, bytes: this.buf.subarray(0, this.lineEnd) });
    this.buf = next;
    this.used = tail;
    this.lineEnd = 0;
  }
}

const tableName = (e: ArchiveTocEntry) => `${e.namespace}.${e.tag}`;

/** Wait until a COPY stream takes more, or fail with its error. */
function drained(stream: CopyStreamQuery): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      stream.off('drain', onDrain).off('error', done).off('close', onClose);
      if (err === undefined) resolve();
      else reject(err as Error);
    };
    const onDrain = () => done();
    const onClose = () => done(stream.errored ?? new Error('the COPY ended early'));
    stream.once('drain', onDrain).once('error', done).once('close', onClose);
  });
}

/**
 * One session: COPY every piece it takes into its table, one COPY per run of
 * pieces of the same table. When the queue is aborted the open COPY is left
 * unfinished: closing the session rolls it back.
 */
async function runSession(
  client: PgClient,
  queue: PieceQueue,
  tables: ReadonlyMap<number, ArchiveTocEntry>,
  onPiece: (dumpId: number) => void,
): Promise<void> {
  const { from: copyFrom } = await import('pg-copy-streams');
  let copy: { dumpId: number; stream: CopyStreamQuery } | undefined;
  for (;;) {
    const piece = await queue.take();
    if (queue.aborted) return;
    if (copy && piece?.dumpId !== copy.dumpId) {
      const { stream } = copy;
      copy = undefined;
      stream.end();
      await finished(stream);
    }
    if (!piece) return;
    onPiece(piece.dumpId);
    if (!copy) {
      const entry = tables.get(piece.dumpId) as ArchiveTocEntry;
      const stream = client.query(copyFrom(entry.copyStmt.trim()));
      // Errors surface through finished() and drained(); this keeps one from being unhandled meanwhile.
      stream.on('error', () => {});
      copy = { dumpId: piece.dumpId, stream };
    }
    if (copy.stream.errored) throw copy.stream.errored;
    if (!copy.stream.write(piece.bytes)) await drained(copy.stream);
  }
}

/** Load the tables of `plan` from the archive over ctx.sessions concurrent sessions; returns bytes loaded. */
export async function loadTableData(ctx: TableDataContext, plan: TableDataPlan): Promise<number> {
  const setup = sessionSetupSql(ctx.entries);
  const clients: PgClient[] = [];
  const queue = new PieceQueue(2 * ctx.sessions);
  // The table each session works on, so that a failure can name it.
  const working = new Map<PgClient, number>();
  const piecesBySession = new Map<PgClient, number>();
  let failure: unknown;
  let failedTable: ArchiveTocEntry | undefined;
  const fail = (err: unknown, dumpId?: number) => {
    if (failure !== undefined) return;
    failure = err;
    failedTable = dumpId === undefined ? undefined : plan.tables.get(dumpId);
    queue.close(true);
  };
  let bytes = 0;
  // Closing the sessions fails their COPYs, so every wait below ends.
  const timer =
    ctx.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          fail(
            new OperationError(
              'E_TIMEOUT',
              `loading the table data timed out after ${ctx.timeoutMs} ms while ${ctx.what}`,
              {
                hint: 'Raise the time limit (a drill has the RTO times its margin), or restore with more --jobs.',
              },
            ),
          );
          for (const client of clients) void closePg(client);
        }, ctx.timeoutMs);
  try {
    const opened = await Promise.allSettled(
      Array.from({ length: ctx.sessions }, () => connectPg(ctx.target, ctx.database, ctx.what)),
    );
    for (const o of opened) if (o.status === 'fulfilled') clients.push(o.value);
    const refused = opened.find((o) => o.status === 'rejected');
    if (refused) throw refused.reason;
    await Promise.all(clients.map((client) => client.query(setup)));
    const sessions = clients.map((client) =>
      runSession(client, queue, plan.tables, (id) => {
        working.set(client, id);
        piecesBySession.set(client, (piecesBySession.get(client) ?? 0) + 1);
      }).catch((err: unknown) => fail(err, working.get(client))),
    );
    const reader = new ArchiveRowReader((dumpId) =>
      plan.tables.has(dumpId) ? new PieceCutter(dumpId, queue) : undefined,
    );
    const source = ctx.source();
    try {
      for await (const chunk of source) {
        if (failure !== undefined) break;
        bytes += (chunk as Buffer).length;
        reader.push(chunk as Buffer);
        await queue.room();
      }
      if (failure === undefined) reader.result();
    } catch (err) {
      fail(
        err instanceof LifeboatError
          ? err
          : new IntegrityError(
              `the stored archive cannot be read while ${ctx.what}: ${(err as Error).message}`,
              {
                hint: 'Run `lifeboat check --read-data` on the repository, and restore an earlier snapshot meanwhile.',
                cause: err,
              },
            ),
      );
    } finally {
      source.destroy();
      queue.close(failure !== undefined);
    }
    await Promise.all(sessions);
    if (failure === undefined && plan.sequenceSql.length > 0) {
      await (clients[0] as PgClient).query(plan.sequenceSql.join('\n'));
    }
  } catch (err) {
    fail(err);
  } finally {
    clearTimeout(timer);
    await Promise.all(clients.map(closePg));
  }
  if (failure !== undefined) {
    const what = failedTable ? `loading table ${tableName(failedTable)} while ${ctx.what}` : ctx.what;
    throw pgError(failure, ctx.target, ctx.database, what);
  }
  const pieces = clients.map((c) => piecesBySession.get(c) ?? 0).join(', ');
  ctx.logger.debug(
    `loaded ${plan.tables.size} tables (${bytes} archive bytes) over ${ctx.sessions} sessions (pieces per session: ${pieces})`,
  );
  return bytes;
}
