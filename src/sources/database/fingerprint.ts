/**
 * Fingerprints of database backups (postgres and mysql job kinds): what the
 * dumped data looked like at the instant of the dump's snapshot, so a restore
 * can be proven equal to it. Stored as SnapshotRecord.fingerprint and in the
 * snapshot's manifest. Plain JSON: type aliases, not interfaces, so that a
 * fingerprint is a Record<string, unknown>.
 */
import { createHash } from 'node:crypto';

/** One table: exact row count and, when checksums are on, an order-independent content checksum. */
export type TableFingerprint = {
  rows: number;
  checksum?: string;
};

/** One database: its tables keyed `schema.table` (postgres) or `table` (mysql), and a schema digest. */
export type DatabaseFingerprint = {
  tables: Record<string, TableFingerprint>;
  /** Hex SHA-256 over the sorted catalog description (columns, constraints, indexes, views …). */
  schemaDigest: string;
  /**
   * How the table checksums were computed: `rowhash1` = lifeboat hashed the
   * rows of the dump as it streamed (rowHash.ts), and a restore is verified by
   * hashing a fresh dump of it; absent = the server computed them with md5.
   */
  checksumMethod?: 'rowhash1';
  /** Session settings the dump's row text depended on (postgres: bytea_output, lc_monetary). */
  copySettings?: Record<string, string>;
};

/** The fingerprint of one backup run. */
export type ServerFingerprint = {
  engine: 'postgres' | 'mariadb' | 'mysql';
  serverVersion: string;
  /** Identifies the server (cluster system identifier, or a digest of host/port/datadir): restore refuses to overwrite the source. */
  serverIdentity: string;
  checksums: boolean;
  databases: Record<string, DatabaseFingerprint>;
  /** Replication position captured at the snapshot, when the server has one (mysql binlog/GTID). */
  positions?: Record<string, Record<string, string>>;
};

/** One way a restored database differs from the fingerprint of its backup. */
export type Difference =
  | { kind: 'database-missing'; database: string }
  | { kind: 'database-extra'; database: string }
  | { kind: 'table-missing'; database: string; table: string }
  | { kind: 'table-extra'; database: string; table: string }
  | { kind: 'row-count'; database: string; table: string; expected: number; actual: number }
  | { kind: 'checksum'; database: string; table: string; expected: string; actual: string }
  | { kind: 'schema'; database: string; expected: string; actual: string };

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Differences between two fingerprints of one database; `database` labels them. */
export function compareDatabaseFingerprints(
  database: string,
  expected: DatabaseFingerprint,
  actual: DatabaseFingerprint,
): Difference[] {
  const out: Difference[] = [];
  if (expected.schemaDigest !== actual.schemaDigest) {
    out.push({ kind: 'schema', database, expected: expected.schemaDigest, actual: actual.schemaDigest });
  }
  const names = [...new Set([...Object.keys(expected.tables), ...Object.keys(actual.tables)])].sort(byName);
  for (const table of names) {
    const e = Object.hasOwn(expected.tables, table) ? expected.tables[table] : undefined;
    const a = Object.hasOwn(actual.tables, table) ? actual.tables[table] : undefined;
    if (!a) {
      out.push({ kind: 'table-missing', database, table });
      continue;
    }
    if (!e) {
      out.push({ kind: 'table-extra', database, table });
      continue;
    }
    if (e.rows !== a.rows) out.push({ kind: 'row-count', database, table, expected: e.rows, actual: a.rows });
    // A checksum is compared only when both sides have one (checksums may be off for the job).
    else if (e.checksum !== undefined && a.checksum !== undefined && e.checksum !== a.checksum) {
      out.push({ kind: 'checksum', database, table, expected: e.checksum, actual: a.checksum });
    }
  }
  return out;
}

/** Every difference between an expected (backup) and an actual (restored) fingerprint, in a stable order. */
export function compareFingerprints(
  expected: Pick<ServerFingerprint, 'databases'>,
  actual: Pick<ServerFingerprint, 'databases'>,
): Difference[] {
  const out: Difference[] = [];
  const names = [...new Set([...Object.keys(expected.databases), ...Object.keys(actual.databases)])].sort(
    byName,
  );
  for (const database of names) {
    const e = Object.hasOwn(expected.databases, database) ? expected.databases[database] : undefined;
    const a = Object.hasOwn(actual.databases, database) ? actual.databases[database] : undefined;
    if (!a) out.push({ kind: 'database-missing', database });
    else if (!e) out.push({ kind: 'database-extra', database });
    else out.push(...compareDatabaseFingerprints(database, e, a));
  }
  return out;
}

/** One line describing a difference, for reports and error messages. */
export function describeDifference(d: Difference): string {
  switch (d.kind) {
    case 'database-missing':
      return `database ${d.database}: missing after restore`;
    case 'database-extra':
      return `database ${d.database}: present but not in the backup`;
    case 'table-missing':
      return `${d.database}: table ${d.table} is missing`;
    case 'table-extra':
      return `${d.database}: table ${d.table} is not in the backup`;
    case 'row-count':
      return `${d.database}: table ${d.table} has ${d.actual} rows, the backup had ${d.expected}`;
    case 'checksum':
      return `${d.database}: table ${d.table} content differs from the backup (checksum ${d.actual.slice(0, 12)} ≠ ${d.expected.slice(0, 12)})`;
    case 'schema':
      return `${d.database}: schema differs from the backup (digest ${d.actual.slice(0, 12)} ≠ ${d.expected.slice(0, 12)})`;
  }
}

/**
 * The checksum recorded for a table from the sum, over all rows, of a 64-bit
 * row hash (a decimal string computed by the server). A sum is independent of
 * row order, so no sort is needed and memory stays constant; 64 bits make an
 * accidental match of different contents a 2^-64 event.
 */
export function tableChecksum(rowHashSum: string): string {
  return createHash('sha256').update(`rowsum:${rowHashSum}`).digest('hex').slice(0, 32);
}

/** Hex SHA-256 over catalog description lines, sorted so catalog order does not matter. */
export function schemaDigestOf(lines: readonly string[]): string {
  const hash = createHash('sha256');
  for (const line of [...lines].sort(byName)) hash.update(line).update('\n');
  return hash.digest('hex');
}
