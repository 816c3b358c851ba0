/**
 * The fingerprint of one PostgreSQL database, computed inside the backup's
 * snapshot (or on a restored database, for comparison):
 *
 * - per ordinary table (partitions included, extension members excluded): an
 *   exact `count(*)` over `ONLY` the table, as COPY dumps it;
 * - with checksums (method `rowhash1`, the default since 0.2): the
 *   order-independent sum of a 64-bit hash of every row as pg_dump's COPY
 *   wrote it into the archive, computed by lifeboat while the archive streams
 *   (archiveRows.ts) — no extra scan; the row count from count(*) in the
 *   same snapshot must equal the archive's. A restore is verified by hashing
 *   the rows read back from the restored database the same way (readBack.ts);
 * - legacy checksums (no method recorded; still verified, and the fallback
 *   when an archive cannot be read): the sum over all rows of the first 64
 *   bits of md5(row text) computed by the server — one more full scan;
 * - a schema digest: SHA-256 over sorted catalog lines (schemas, columns with
 *   types, nullability, defaults, identity, generation and collation;
 *   constraints; indexes; views; sequences; triggers; functions; types;
 *   extension names). Owners, privileges and OIDs are left out so a restore
 *   with --no-owner or into another cluster still matches.
 *
 * Row text depends on output settings, so the session pins them first.
 */
import { IntegrityError } from '../../errors.js';
import type { DatabaseFingerprint, TableFingerprint } from '../database/fingerprint.js';
import { schemaDigestOf, tableChecksum } from '../database/fingerprint.js';
import { RowHashSum } from '../database/rowHash.js';
import type { PgClient } from './client.js';
import { quoteIdent } from './connection.js';

/** Output settings that make row text identical across sessions and servers of one version. */
export const FINGERPRINT_SESSION_SETTINGS = [
  `SET search_path = pg_catalog`,
  `SET DateStyle = 'ISO, YMD'`,
  `SET IntervalStyle = 'postgres'`,
  `SET TimeZone = 'UTC'`,
  `SET extra_float_digits = 1`,
  `SET bytea_output = 'hex'`,
  `SET lc_monetary = 'C'`,
  `SET xmloption = 'content'`,
];

/** Pin the output settings of a session (call before the fingerprint transaction). */
export async function prepareFingerprintSession(client: PgClient): Promise<void> {
  for (const sql of FINGERPRINT_SESSION_SETTINGS) await client.query(sql);
}

const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
const notExtensionMember = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

export interface PgTable {
  schema: string;
  name: string;
  /** Column names in order, as the snapshot's catalog has them (not as the current relcache does). */
  columns: string[];
}

/** The key of a table in the fingerprint: `schema.table`, parts quoted only when they hold `.` or `"`. */
export function tableKey(t: Pick<PgTable, 'schema' | 'name'>): string {
  const part = (s: string) => (/[."]/.test(s) ? quoteIdent(s) : s);
  return `${part(t.schema)}.${part(t.name)}`;
}

/** Ordinary tables whose data pg_dump dumps: FROM … WHERE of a query on pg_class `c` and pg_namespace `n`. */
const DUMPED_TABLES = `pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`;

/**
 * Ordinary tables whose data pg_dump dumps (partitions yes, partitioned
 * parents and extension tables no), with their columns read through the
 * transaction snapshot — the same column list pg_dump's COPY uses, even if a
 * concurrent ALTER TABLE committed after the snapshot was taken.
 */
export async function listTables(client: PgClient): Promise<PgTable[]> {
  const r = await client.query<{ schema: string; name: string; columns: string[] | null }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
       FROM ${DUMPED_TABLES}
      ORDER BY 1, 2`,
  );
  return r.rows.map((row) => ({ schema: row.schema, name: row.name, columns: row.columns ?? [] }));
}

/** A table as a COPY … TO reads it back: the columns pg_dump's COPY lists, and the heap's size. */
export interface PgCopyTable {
  schema: string;
  name: string;
  /** Quoted column names in order, generated columns left out (pg_dump leaves them out). */
  copyColumns: string[];
  /** Heap blocks (pg_relation_size / block_size) when listed. */
  blocks: number;
}

/** The tables listTables lists, with what a COPY … TO that reads them as pg_dump does needs. */
export async function listCopyTables(client: PgClient, serverVersionNum: number): Promise<PgCopyTable[]> {
  // Generated columns exist since PostgreSQL 12.
  const notGenerated = serverVersionNum >= 120000 ? `AND a.attgenerated = ''` : '';
  const r = await client.query<{ schema: string; name: string; columns: string[] | null; blocks: string }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            (SELECT array_agg(quote_ident(a.attname) ORDER BY a.attnum) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ${notGenerated}) AS columns,
            (pg_relation_size(c.oid) / current_setting('block_size')::int)::text AS blocks
       FROM ${DUMPED_TABLES}
      ORDER BY 1, 2`,
  );
  return r.rows.map((row) => ({
    schema: row.schema,
    name: row.name,
    copyColumns: row.columns ?? [],
    blocks: Number(row.blocks),
  }));
}

const qualified = (t: Pick<PgTable, 'schema' | 'name'>) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;

/**
 * Take ACCESS SHARE locks on the tables right after the snapshot, as pg_dump
 * does, so no DDL (TRUNCATE, table rewrite) can slip in between the snapshot
 * and the reads. Fails fast with "permission denied" on an unreadable table.
 */
export async function lockTables(
  client: PgClient,
  tables: readonly Pick<PgTable, 'schema' | 'name'>[],
): Promise<void> {
  for (let i = 0; i < tables.length; i += 500) {
    const batch = tables
      .slice(i, i + 500)
      .map(qualified)
      .join(', ');
    await client.query(`LOCK TABLE ONLY ${batch} IN ACCESS SHARE MODE`);
  }
}

/** Row count and (optionally) content checksum of one table. */
export async function fingerprintTable(
  client: PgClient,
  table: PgTable,
  checksums: boolean,
): Promise<TableFingerprint> {
  if (!checksums) {
    const r = await client.query<{ rows: string }>(
      `SELECT count(*)::text AS rows FROM ONLY ${qualified(table)}`,
    );
    return { rows: Number(r.rows[0]?.rows ?? 0) };
  }
  // md5, not hashtextextended: three times slower, but the same on every architecture and version.
  const r = await client.query<{ rows: string; s: string }>(
    `SELECT count(*)::text AS rows, coalesce(sum(('x' || left(h, 16))::bit(64)::bigint::numeric), 0)::text AS s
       FROM (SELECT md5(ROW(${table.columns.map((c) => `r.${quoteIdent(c)}`).join(', ')})::text) AS h
               FROM ONLY ${qualified(table)} AS r) AS x`,
  );
  const row = r.rows[0] ?? { rows: '0', s: '0' };
  return { rows: Number(row.rows), checksum: tableChecksum(row.s) };
}

/** Catalog queries whose result lines make up the schema digest. */
const SCHEMA_QUERIES: readonly string[] = [
  `SELECT 'schema|' || n.nspname FROM pg_namespace n WHERE ${USER_SCHEMA} AND ${notExtensionMember('pg_namespace', 'n.oid')}`,
  `SELECT 'ext|' || extname FROM pg_extension`,
  `SELECT concat_ws('|', 'col', n.nspname || '.' || c.relname, c.relkind,
            row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
            format_type(a.atttypid, a.atttypmod), a.attnotnull,
            coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), a.attidentity, a.attgenerated,
            coalesce((SELECT collname FROM pg_collation co WHERE co.oid = a.attcollation), ''))
     FROM pg_attribute a
     JOIN pg_class c ON c.oid = a.attrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
      AND ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  `SELECT concat_ws('|', 'con', n.nspname || '.' || c.relname, con.conname, pg_get_constraintdef(con.oid))
     FROM pg_constraint con
     JOIN pg_class c ON c.oid = con.conrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  `SELECT concat_ws('|', 'idx', n.nspname, pg_get_indexdef(i.indexrelid))
     FROM pg_index i
     JOIN pg_class c ON c.oid = i.indrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  `SELECT concat_ws('|', 'view', n.nspname || '.' || c.relname, c.relkind, pg_get_viewdef(c.oid))
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  `SELECT concat_ws('|', 'seq', n.nspname || '.' || c.relname, format_type(s.seqtypid, NULL), s.seqstart,
            s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
     FROM pg_sequence s
     JOIN pg_class c ON c.oid = s.seqrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  `SELECT concat_ws('|', 'trg', pg_get_triggerdef(t.oid))
     FROM pg_trigger t
     JOIN pg_class c ON c.oid = t.tgrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND ${USER_SCHEMA} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  `SELECT concat_ws('|', 'fn', n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
            md5(pg_get_functiondef(p.oid)))
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p') AND ${USER_SCHEMA} AND ${notExtensionMember('pg_proc', 'p.oid')}`,
  `SELECT concat_ws('|', 'type', n.nspname || '.' || t.typname, t.typtype,
            CASE t.typtype
              WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
              WHEN 'd' THEN concat_ws(':', format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                              (SELECT string_agg(pg_get_constraintdef(dc.oid), ',' ORDER BY dc.conname)
                                 FROM pg_constraint dc WHERE dc.contypid = t.oid))
              ELSE '' END)
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd', 'r', 'm') AND ${USER_SCHEMA} AND ${notExtensionMember('pg_type', 't.oid')}`,
];

/** SHA-256 over the sorted catalog description of the current database. */
export async function schemaDigest(client: PgClient): Promise<string> {
  const lines: string[] = [];
  for (const sql of SCHEMA_QUERIES) {
    const r = await client.query<{ line: string | null }>(`SELECT line FROM (${sql}) AS q(line)`);
    for (const row of r.rows) lines.push(row.line ?? '');
  }
  return schemaDigestOf(lines);
}

/** The full fingerprint of the current database of `client` (inside the caller's snapshot). */
export async function fingerprintDatabase(
  client: PgClient,
  tables: readonly PgTable[],
  checksums: boolean,
): Promise<DatabaseFingerprint> {
  const result: DatabaseFingerprint = { tables: {}, schemaDigest: await schemaDigest(client) };
  for (const t of tables) result.tables[tableKey(t)] = await fingerprintTable(client, t, checksums);
  return result;
}

/** The checksum method of fingerprints whose checksums come from the dump's rows. */
export const ROWHASH_METHOD = 'rowhash1';

/**
 * Settings that change COPY's row text and that pg_dump does not pin itself
 * (it pins DateStyle, IntervalStyle and extra_float_digits; lifeboat gives it
 * PGTZ=UTC). Recorded at backup so a verification dump uses the same ones.
 */
const COPY_SETTINGS = ['bytea_output', 'lc_monetary'] as const;

/** The session defaults of the COPY settings (read before a session pins its own). */
export async function readCopySettings(client: PgClient): Promise<Record<string, string>> {
  const r = await client.query<{ name: string; setting: string }>(
    `SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS s(name)`,
    [COPY_SETTINGS],
  );
  return Object.fromEntries(r.rows.map((row) => [row.name, row.setting]));
}

/**
 * Environment additions for a pg_dump whose rows are hashed: UTC time zone
 * (a startup parameter, which connection poolers pass on), and PGOPTIONS
 * only for recorded COPY settings that differ from the server's defaults.
 */
export function rowHashDumpEnv(
  recorded: Record<string, string> | undefined,
  current: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = { PGTZ: 'UTC' };
  const options = Object.entries(recorded ?? {})
    .filter(([name, value]) => current[name] !== value)
    .map(([name, value]) => `-c ${name}=${value.replace(/[\\ ]/g, (c) => `\\${c}`)}`);
  if (options.length > 0) env.PGOPTIONS = options.join(' ');
  return env;
}

/**
 * The fingerprint of a backup from the rows pg_dump wrote (counts and
 * checksums, exact for the snapshot pg_dump read) and the schema digest read
 * in the same snapshot. Every table the snapshot's catalog lists must have a
 * data block in the archive: pg_dump dumps the data of every such table, so
 * a missing one means dump and fingerprint disagree and the backup must not
 * be trusted.
 */
export function withArchiveChecksums(
  database: string,
  tables: readonly PgTable[],
  schemaDigest: string,
  archive: ReadonlyMap<string, { rows: number; checksum: string }>,
): DatabaseFingerprint {
  const result: DatabaseFingerprint = { tables: {}, schemaDigest, checksumMethod: ROWHASH_METHOD };
  for (const t of tables) {
    const key = tableKey(t);
    const fromDump = archive.get(key);
    if (!fromDump) {
      throw new IntegrityError(`database ${database}: pg_dump's archive has no data for table ${key}`, {
        hint: 'The dump and its fingerprint disagree; nothing was committed. Run the backup again.',
      });
    }
    result.tables[key] = { rows: fromDump.rows, checksum: fromDump.checksum };
  }
  return result;
}

/** A fingerprint of a (restored) database from the rows of its data-only archive, for listed tables. */
export function fingerprintFromArchive(
  tables: readonly PgTable[],
  schemaDigest: string,
  archive: ReadonlyMap<string, { rows: number; checksum: string }>,
  copySettings: Record<string, string> | undefined,
): DatabaseFingerprint {
  const result: DatabaseFingerprint = { tables: {}, schemaDigest, checksumMethod: ROWHASH_METHOD };
  if (copySettings) result.copySettings = copySettings;
  for (const t of tables) {
    const key = tableKey(t);
    result.tables[key] = archive.get(key) ?? { rows: 0, checksum: new RowHashSum().checksum() };
  }
  return result;
}
