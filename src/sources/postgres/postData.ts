/**
 * The post-data part of a streamed PostgreSQL restore (indexes, constraints,
 * triggers, …), planned so that it can run while verification reads the
 * restored rows back.
 *
 * Why a plan at all: verification's read-back (readBack.ts) holds an ACCESS
 * SHARE lock on every table until it ends, and pg_restore's
 * `ALTER TABLE ONLY t ADD CONSTRAINT c PRIMARY KEY (…)` needs ACCESS
 * EXCLUSIVE: the constraint's index build — most of post-data's time — would
 * wait for the whole verification. So a PRIMARY KEY or UNIQUE constraint of a
 * plain table is built in the two steps PostgreSQL documents for adding one
 * without a long lock: `CREATE UNIQUE INDEX c ON t (…)` first (a SHARE lock:
 * verification's reads go on), then `ALTER TABLE ONLY t ADD CONSTRAINT c …
 * USING INDEX c` at the constraint's place in the archive's order (a short
 * exclusive lock). The result is the same constraint on the same index,
 * under the same names. Every other post-data entry, and any constraint
 * whose definition is not exactly the simple form, is restored by pg_restore
 * itself (`-L` with the entries of each stretch between two rewritten
 * constraints), in the archive's order.
 */
import type { Readable } from 'node:stream';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCleanup } from '../../platform/cleanup.js';
import { spawnStreaming } from '../../platform/exec.js';
import type { Logger } from '../../platform/logger.js';
import { feedProcess } from '../database/feedProcess.js';
import { readTocEntries, type ArchiveTocEntry } from './archiveRows.js';
import { closePg, connectPg, pgError } from './client.js';
import { pgToolEnv, quoteIdent, type PgTarget } from './connection.js';
import { pgToolFailure } from './toolFailure.js';

/** A PRIMARY KEY or UNIQUE constraint in the simple form pg_dump writes, as SQL fragments of that definition. */
export interface UniqueConstraint {
  dumpId: number;
  /** Schema-qualified table, quoted as pg_dump quoted it. */
  table: string;
  /** Constraint (and index) name, quoted as pg_dump quoted it. */
  name: string;
  kind: 'PRIMARY KEY' | 'UNIQUE';
  /** Column list, quoted as pg_dump quoted it. */
  columns: string;
  /** Tablespace of the constraint's index ('' for the default). */
  tablespace: string;
}

// An identifier as pg_dump's fmtId writes it: lower-case plain, anything else in double quotes.
const IDENT = String.raw`(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)`;
// The whole definition must be this one statement: INCLUDE, WITH (…), DEFERRABLE, NULLS NOT
// DISTINCT, CLUSTER ON or REPLICA IDENTITY make it something else, which pg_restore keeps.
const SIMPLE_UNIQUE_CONSTRAINT = new RegExp(
  String.raw`^ALTER TABLE ONLY (${IDENT}\.${IDENT})\n    ADD CONSTRAINT (${IDENT}) (PRIMARY KEY|UNIQUE) \((${IDENT}(?:, ${IDENT})*)\);\n$`,
);

/** The constraint a TOC entry creates, when it is a simple PRIMARY KEY or UNIQUE constraint. */
export function parseUniqueConstraint(dumpId: number, entry: ArchiveTocEntry): UniqueConstraint | undefined {
  if (entry.desc !== 'CONSTRAINT') return undefined;
  const m = SIMPLE_UNIQUE_CONSTRAINT.exec(entry.defn);
  if (!m) return undefined;
  return {
    dumpId,
    table: m[1] as string,
    name: m[2] as string,
    kind: m[3] as UniqueConstraint['kind'],
    columns: m[4] as string,
    tablespace: entry.tablespace,
  };
}

export const createIndexSql = (c: UniqueConstraint): string =>
  `CREATE UNIQUE INDEX ${c.name} ON ${c.table} USING btree (${c.columns})` +
  (c.tablespace ? ` TABLESPACE ${quoteIdent(c.tablespace)}` : '');

export const addConstraintSql = (c: UniqueConstraint): string =>
  `ALTER TABLE ONLY ${c.table} ADD CONSTRAINT ${c.name} ${c.kind} USING INDEX ${c.name}`;

export type PostDataStep =
  { kind: 'pg_restore'; listLines: string[] } | { kind: 'add-constraint'; constraint: UniqueConstraint };

export interface PostDataPlan {
  /** Unique indexes built first, while verification runs. */
  prebuild: UniqueConstraint[];
  /** Then, in the archive's order. */
  steps: PostDataStep[];
}

/**
 * Plan post-data from pg_restore's list of it (`pg_restore -l --section=post-data`
 * lines, in restore order), the archive's TOC entries and which constraints
 * may be split (their table is a plain, unpartitioned table).
 */
export function planPostData(
  listLines: readonly string[],
  entries: ReadonlyMap<number, ArchiveTocEntry>,
  splittable: (c: UniqueConstraint) => boolean,
): PostDataPlan {
  const plan: PostDataPlan = { prebuild: [], steps: [] };
  let stretch: string[] = [];
  for (const line of listLines) {
    const id = /^(\d+);/.exec(line)?.[1];
    const entry = id === undefined ? undefined : entries.get(Number(id));
    const c = entry ? parseUniqueConstraint(Number(id), entry) : undefined;
    if (!c || !splittable(c)) {
      if (id !== undefined) stretch.push(line);
      continue;
    }
    if (stretch.length > 0) plan.steps.push({ kind: 'pg_restore', listLines: stretch });
    stretch = [];
    plan.prebuild.push(c);
    plan.steps.push({ kind: 'add-constraint', constraint: c });
  }
  if (stretch.length > 0) plan.steps.push({ kind: 'pg_restore', listLines: stretch });
  return plan;
}

/** The archive's TOC entries, read from its first bytes (the rest of the stream is not read). */
export async function readArchiveToc(source: Readable): Promise<Map<number, ArchiveTocEntry>> {
  const pieces: Buffer[] = [];
  let length = 0;
  let nextTry = 64 * 1024;
  try {
    for await (const piece of source) {
      pieces.push(piece as Buffer);
      length += (piece as Buffer).length;
      if (length < nextTry) continue;
      const entries = readTocEntries(Buffer.concat(pieces, length));
      if (entries) return entries;
      nextTry = length * 2;
    }
    const entries = readTocEntries(Buffer.concat(pieces, length));
    if (entries) return entries;
    throw new Error('the archive ends inside its table of contents');
  } finally {
    source.destroy();
  }
}

export interface PostDataContext {
  /** A fresh stream of the whole archive (pg_restore reads only its table of contents here). */
  source: () => Readable;
  pgRestore: string;
  /** Options every pg_restore run of this restore takes (--no-owner, …), without --dbname. */
  restoreOptions: string[];
  target: PgTarget;
  database: string;
  /** What the restore is, for messages: "restoring database shop into shop_copy". */
  what: string;
  timeoutMs?: number;
  logger: Logger;
}

/** pg_restore's own list of the post-data entries, in the order it restores them. */
async function listPostData(ctx: PostDataContext): Promise<string[]> {
  const argv = [ctx.pgRestore, '--list', '--section=post-data', ...ctx.restoreOptions];
  const proc = spawnStreaming(argv, { timeoutMs: ctx.timeoutMs });
  const out: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => out.push(c));
  await feedProcess(ctx.source(), proc, (err) => pgToolFailure('pg_restore', ctx.what, err, ctx.target));
  return Buffer.concat(out)
    .toString('utf8')
    .split('\n')
    .filter((l) => /^\d+;/.test(l));
}

/** Tables (as written in constraint definitions) that are plain tables, not partitioned and not partitions. */
async function plainTables(ctx: PostDataContext, tables: string[]): Promise<Set<string>> {
  if (tables.length === 0) return new Set();
  const client = await connectPg(ctx.target, ctx.database, ctx.what);
  try {
    const r = await client.query<{ t: string }>(
      `SELECT t FROM unnest($1::text[]) AS t
        WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass(t) AND c.relkind = 'r' AND NOT c.relispartition)`,
      [tables],
    );
    return new Set(r.rows.map((row) => row.t));
  } catch (err) {
    throw pgError(err, ctx.target, ctx.database, ctx.what);
  } finally {
    await closePg(client);
  }
}

/** What the archive's head says about post-data: pg_restore's list of it, and the TOC entries. */
export interface PostDataHead {
  listLines: string[];
  entries: Map<number, ArchiveTocEntry>;
}

/** Read pg_restore's post-data list and the archive's TOC (only the head of the archive is read). */
export async function readPostDataHead(ctx: PostDataContext): Promise<PostDataHead> {
  const listLines = await listPostData(ctx);
  try {
    return { listLines, entries: await readArchiveToc(ctx.source()) };
  } catch (err) {
    // An archive this reader does not know (compressed, a newer version): pg_restore does it all.
    ctx.logger.debug(`post-data restored by pg_restore alone: ${(err as Error).message}`);
    return { listLines, entries: new Map() };
  }
}

/** Plan post-data (see the module comment); the tables must exist by now. */
export async function preparePostData(ctx: PostDataContext, head: PostDataHead): Promise<PostDataPlan> {
  const { listLines, entries } = head;
  const candidates = listLines.flatMap((line) => {
    const id = Number(/^(\d+);/.exec(line)?.[1]);
    const entry = entries.get(id);
    const c = entry ? parseUniqueConstraint(id, entry) : undefined;
    return c ? [c] : [];
  });
  const plain = await plainTables(ctx, [...new Set(candidates.map((c) => c.table))]);
  return planPostData(listLines, entries, (c) => plain.has(c.table));
}

/** pg_restore of the listed entries, its TOC read from the archive stream. */
export async function restoreListed(
  ctx: PostDataContext,
  dbnameArg: string,
  listLines: string[],
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-postdata-'));
  const unregister = registerCleanup(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  try {
    const list = join(dir, 'post-data.list');
    await writeFile(list, listLines.join('\n') + '\n', { mode: 0o600 });
    const argv = [ctx.pgRestore, dbnameArg, '--exit-on-error', `--use-list=${list}`, ...ctx.restoreOptions];
    const proc = spawnStreaming(argv, {
      env: pgToolEnv(ctx.target, ctx.database),
      timeoutMs: ctx.timeoutMs,
    });
    await feedProcess(ctx.source(), proc, (err) => pgToolFailure('pg_restore', ctx.what, err, ctx.target));
  } finally {
    await rm(dir, { recursive: true, force: true });
    unregister();
  }
}

/** Run a plan: unique indexes first, then every step in order. */
export async function runPostData(
  ctx: PostDataContext,
  dbnameArg: string,
  plan: PostDataPlan,
): Promise<void> {
  const client = await connectPg(ctx.target, ctx.database, ctx.what);
  try {
    // As pg_restore's own session: no server-side timeouts, nothing found through search_path.
    await client.query(
      `SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
       SELECT pg_catalog.set_config('search_path', '', false)`,
    );
    for (const c of plan.prebuild) {
      ctx.logger.debug(`building the index of ${c.kind} ${c.name} on ${c.table}`);
      await client.query(createIndexSql(c));
    }
    for (const step of plan.steps) {
      if (step.kind === 'add-constraint') await client.query(addConstraintSql(step.constraint));
      else await restoreListed(ctx, dbnameArg, step.listLines);
    }
  } catch (err) {
    throw pgError(err, ctx.target, ctx.database, ctx.what);
  } finally {
    await closePg(client);
  }
}
