/**
 * The fingerprint of one MySQL/MariaDB database, computed inside the
 * transaction whose snapshot equals the dump's (or on a restored database):
 *
 * - per base table: exact COUNT(*);
 * - with checksums (method `rowhash1`, the default since 0.2): the
 *   order-independent sum of a 64-bit hash of every row tuple as the dump
 *   wrote it (dumpRows.ts), computed by lifeboat as the dump streams; the
 *   row counts of S's snapshot must equal the dump's. A restore is verified
 *   by hashing a data-only dump of the restored database the same way;
 * - legacy checksums (no method recorded; still verified, and the fallback
 *   when a dump cannot be read): the sum over all rows of the first 64 bits
 *   of MD5(row text) computed by the server, one scan, constant memory, no sort. Row text joins the columns
 *   with `,`: HEX() of string, binary, bit, enum/set, JSON and spatial values
 *   (exact bytes, no charset conversion), CAST(… AS CHAR) of numbers and
 *   temporals (session time zone pinned to UTC), `N` for NULL — unambiguous;
 * - a schema digest over information_schema (tables, columns, indexes,
 *   constraints, foreign keys, checks, views, triggers, routines, events),
 *   with the database's own name normalised so a copy under another name
 *   matches. Definers, AUTO_INCREMENT counters and statistics are left out.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../../errors.js';
import type { DatabaseFingerprint, TableFingerprint } from '../database/fingerprint.js';
import { RowHashSum } from '../database/rowHash.js';
import { schemaDigestOf, tableChecksum } from '../database/fingerprint.js';
import { rows, type MysqlConnection } from './client.js';
import { quoteMysqlIdent } from './connection.js';

export interface MysqlColumn {
  name: string;
  dataType: string;
}

export interface MysqlTable {
  name: string;
  engine: string | null;
  columns: MysqlColumn[];
}

/** Engines whose tables are read through the transaction's consistent snapshot. */
export const TRANSACTIONAL_ENGINES = new Set(['innodb', 'rocksdb', 'tokudb']);

const HEX_TYPES = new Set([
  'char',
  'varchar',
  'binary',
  'varbinary',
  'tinytext',
  'text',
  'mediumtext',
  'longtext',
  'tinyblob',
  'blob',
  'mediumblob',
  'longblob',
  'enum',
  'set',
  'json',
  'bit',
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'geomcollection',
  'inet4',
  'inet6',
  'uuid',
]);

/** The SQL expression giving one column's part of the row text. */
export function columnTextExpr(column: MysqlColumn): string {
  const id = quoteMysqlIdent(column.name);
  return HEX_TYPES.has(column.dataType.toLowerCase())
    ? `IFNULL(HEX(${id}), 'N')`
    : `IFNULL(CAST(${id} AS CHAR), 'N')`;
}

/** Pin what row text depends on (call on the fingerprint session before its transaction). */
export async function prepareMysqlFingerprintSession(conn: MysqlConnection): Promise<void> {
  await conn.query(`SET SESSION time_zone = '+00:00'`);
  await conn.query(`SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ`);
}

/** Base tables of `database` with their columns in order. */
export async function listMysqlTables(conn: MysqlConnection, database: string): Promise<MysqlTable[]> {
  const tables = await rows<{ name: string; engine: string | null }>(
    conn,
    `SELECT TABLE_NAME AS name, ENGINE AS engine FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME`,
    [database],
  );
  const cols = await rows<{ t: string; c: string; dt: string }>(
    conn,
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c, DATA_TYPE AS dt FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  );
  const byTable = new Map<string, MysqlColumn[]>();
  for (const c of cols) {
    const list = byTable.get(c.t) ?? [];
    list.push({ name: c.c, dataType: c.dt });
    byTable.set(c.t, list);
  }
  return tables.map((t) => ({ name: t.name, engine: t.engine, columns: byTable.get(t.name) ?? [] }));
}

/** Row count and (optionally) content checksum of one table. */
export async function fingerprintMysqlTable(
  conn: MysqlConnection,
  database: string,
  table: MysqlTable,
  checksums: boolean,
): Promise<TableFingerprint> {
  const from = `${quoteMysqlIdent(database)}.${quoteMysqlIdent(table.name)}`;
  if (!checksums || table.columns.length === 0) {
    const [r] = await rows<{ n: string }>(conn, `SELECT CAST(COUNT(*) AS CHAR) AS n FROM ${from}`);
    return { rows: Number(r?.n ?? 0) };
  }
  const text = `CONCAT_WS(',', ${table.columns.map(columnTextExpr).join(', ')})`;
  const [r] = await rows<{ n: string; s: string }>(
    conn,
    `SELECT CAST(COUNT(*) AS CHAR) AS n,
            CAST(COALESCE(SUM(CAST(CONV(LEFT(MD5(${text}), 16), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s
       FROM ${from}`,
  );
  return { rows: Number(r?.n ?? 0), checksum: tableChecksum(r?.s ?? '0') };
}

type Query = { sql: string; optional?: boolean };

const SCHEMA_QUERIES: readonly Query[] = [
  {
    sql: `SELECT 'tbl', TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'col', TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, IFNULL(COLUMN_DEFAULT, '\\\\N'),
                 EXTRA, CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION
            FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'idx', TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE, COLLATION
            FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'con', TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'fk', TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION, REFERENCED_TABLE_SCHEMA,
                 REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
            FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL`,
  },
  {
    sql: `SELECT 'ref', TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE, REFERENCED_TABLE_NAME
            FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`,
  },
  // CHECK_CONSTRAINTS: MariaDB ≥ 10.2 and MySQL ≥ 8.0.16 (where it has no TABLE_NAME).
  {
    sql: `SELECT 'chk', TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`,
    optional: true,
  },
  {
    sql: `SELECT 'view', TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'trg', TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_ORDER, ACTION_STATEMENT
            FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'rtn', ROUTINE_TYPE, ROUTINE_NAME, DTD_IDENTIFIER, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?`,
  },
  {
    sql: `SELECT 'evt', EVENT_NAME, EVENT_TYPE, INTERVAL_VALUE, INTERVAL_FIELD, EVENT_DEFINITION
            FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`,
  },
];

/** SHA-256 over the sorted, name-normalised information_schema description of `database`. */
export async function mysqlSchemaDigest(conn: MysqlConnection, database: string): Promise<string> {
  const own = `${quoteMysqlIdent(database)}.`;
  const normalise = (v: unknown): string => {
    if (v === null || v === undefined) return '\\N';
    const s = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
    if (s === database) return '~';
    return s.split(own).join('`~`.');
  };
  const lines: string[] = [];
  for (const q of SCHEMA_QUERIES) {
    let result: unknown[][];
    try {
      [result] = (await conn.query({ sql: q.sql, rowsAsArray: true }, [database])) as unknown as [
        unknown[][],
      ];
    } catch (err) {
      if (q.optional) continue;
      throw err;
    }
    for (const row of result) {
      const parts = row.map(normalise);
      // Routine bodies can be long: their digest stands in for them.
      if (parts[0] === 'rtn' && parts[4] !== undefined)
        parts[4] = createHash('sha256').update(parts[4]).digest('hex');
      lines.push(parts.join('|'));
    }
  }
  return schemaDigestOf(lines);
}

/** Fingerprint of every listed table (inside the caller's transaction), with the schema digest given. */
export async function fingerprintMysqlTables(
  conn: MysqlConnection,
  database: string,
  tables: readonly MysqlTable[],
  checksums: boolean,
  schemaDigest: string,
): Promise<DatabaseFingerprint> {
  const result: DatabaseFingerprint = { tables: {}, schemaDigest };
  for (const t of tables) result.tables[t.name] = await fingerprintMysqlTable(conn, database, t, checksums);
  return result;
}

/** The checksum method of fingerprints whose checksums come from the dump's rows. */
export const ROWHASH_METHOD = 'rowhash1';

/**
 * Put the dump's row checksums into the counts taken in S's snapshot. For
 * tables of transactional engines the counts must agree — they are the proof
 * that the dump's snapshot is S's; tables of other engines have no snapshot
 * (already warned about) and take the dump's count.
 */
export function withDumpChecksums(
  database: string,
  tables: readonly MysqlTable[],
  counted: DatabaseFingerprint,
  fromDump: ReadonlyMap<string, { rows: number; checksum: string }>,
): DatabaseFingerprint {
  const result: DatabaseFingerprint = { ...counted, tables: {}, checksumMethod: ROWHASH_METHOD };
  for (const t of tables) {
    const dumped = fromDump.get(t.name) ?? { rows: 0, checksum: new RowHashSum().checksum() };
    const rows = counted.tables[t.name]?.rows ?? 0;
    if (dumped.rows !== rows && TRANSACTIONAL_ENGINES.has((t.engine ?? '').toLowerCase())) {
      throw new IntegrityError(
        `database ${database}: table ${t.name} has ${dumped.rows} rows in the dump but ${rows} in the fingerprint's snapshot`,
        {
          hint: 'The dump did not read the snapshot the fingerprint was taken in; nothing was committed. Run the backup again.',
        },
      );
    }
    result.tables[t.name] = { rows: dumped.rows, checksum: dumped.checksum };
  }
  return result;
}

/** A fingerprint of a (restored) database from the rows of its data-only dump, for the listed tables. */
export function fingerprintFromDump(
  tables: readonly MysqlTable[],
  schemaDigest: string,
  fromDump: ReadonlyMap<string, { rows: number; checksum: string }>,
): DatabaseFingerprint {
  const result: DatabaseFingerprint = { tables: {}, schemaDigest, checksumMethod: ROWHASH_METHOD };
  for (const t of tables) {
    result.tables[t.name] = fromDump.get(t.name) ?? { rows: 0, checksum: new RowHashSum().checksum() };
  }
  return result;
}
