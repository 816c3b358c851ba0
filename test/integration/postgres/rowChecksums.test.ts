/**
 * Checksums taken from pg_dump's rows (method rowhash1): they must equal a
 * hash of what COPY returns for each table, survive any cut of the stream,
 * and catch a changed value that keeps the row count.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineHasher } from '../../../src/sources/database/rowHash.js';
import { ArchiveRowReader } from '../../../src/sources/postgres/archiveRows.js';
import { backupPostgres, type DatabaseBackupResult } from '../../../src/sources/postgres/backup.js';
import { tableKey } from '../../../src/sources/postgres/fingerprint.js';
import { restorePostgres, verifyPostgresDatabase } from '../../../src/sources/postgres/restore.js';
import { assertPgUp, PG, PgScratch, pgRunnable, quoteIdent, sql, uniqueName } from './pgTestServer.js';
import { populateSample } from './sampleData.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const toolEnv = { ...process.env, PGHOST: PG.host, PGPORT: String(PG.port), PGUSER: PG.user };
const pgDump = (database: string, ...args: string[]) =>
  execFileSync('pg_dump', [...args, '-d', database], { env: toolEnv, maxBuffer: 1 << 28 });

const readArchive = (archive: Buffer, piece: number) => {
  const reader = new ArchiveRowReader();
  for (let i = 0; i < archive.length; i += piece) reader.push(archive.subarray(i, i + piece));
  return reader.result();
};

describe.skipIf(!pgRunnable)('postgres checksums from the dump rows', () => {
  const scratch = new PgScratch();
  let t: TestRepo;
  let source: string;
  let backup: DatabaseBackupResult;

  beforeAll(async () => {
    assertPgUp();
    source = await scratch.createDatabase(uniqueName('lb_rowhash'));
    await populateSample(source);
    // A large object: its block in the archive must be skipped, not hashed into a table.
    await sql(source, `SELECT lo_from_bytea(0, '\\x0102030a0a'::bytea)`);
    t = await openTestRepo();
    backup = await backupPostgres(t.repo, PG, { databases: [source], globals: false, checksums: true });
  });

  afterAll(async () => {
    await t?.dispose();
    await scratch.dropAll();
  });

  it('records the method and equals a hash of COPY output of every table (UTC, pg_dump settings)', async () => {
    const fp = backup.fingerprint.databases[source];
    expect(fp?.checksumMethod).toBe('rowhash1');
    expect(fp?.copySettings).toEqual({ bytea_output: 'hex', lc_monetary: expect.any(String) });
    const tables = await sql<{ schema: string; name: string }>(
      source,
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname IN ('public', 'other')`,
    );
    expect(tables.length).toBe(6);
    for (const table of tables) {
      const copy = execFileSync(
        'psql',
        [
          '-X',
          '-q',
          '-d',
          source,
          '-c',
          `SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;
           COPY ${quoteIdent(table.schema)}.${quoteIdent(table.name)} TO STDOUT`,
        ],
        { env: { ...toolEnv, PGTZ: 'UTC' } },
      );
      const h = new LineHasher();
      h.push(copy);
      expect(fp?.tables[tableKey(table)], tableKey(table)).toEqual({
        rows: h.sum.rows,
        checksum: h.sum.checksum(),
      });
    }
  });

  it('reads the same rows from an archive cut into any pieces, and refuses a compressed one', () => {
    const archive = pgDump(source, '--format=custom', '--compress=0');
    const whole = readArchive(archive, archive.length);
    expect(Object.fromEntries(whole)).toEqual(backup.fingerprint.databases[source]?.tables);
    for (const piece of [1, 5, 4093]) expect(readArchive(archive, piece)).toEqual(whole);
    expect(() => readArchive(pgDump(source, '--format=custom'), 65536)).toThrow(/compressed/);
    expect(() => readArchive(archive.subarray(0, archive.length - 3), 65536)).toThrow(/ends/);
  });

  it('verification finds a changed value that keeps the row count', async () => {
    const snapshot = await t.commit('rowhash', 'postgres', backup);
    const target = scratch.track(uniqueName('lb_rowhash_r'));
    const restored = await restorePostgres(t.repo, snapshot, {
      create: true,
      clean: false,
      globals: false,
      jobs: 1,
      force: false,
      dryRun: false,
      into: { ...PG, database: target },
    });
    expect(restored.differences).toEqual([]);
    const expected = backup.fingerprint.databases[source];
    if (!expected) throw new Error('no fingerprint');
    expect(await verifyPostgresDatabase({ ...PG }, target, expected, { checksums: true })).toEqual([]);
    await sql(
      target,
      `UPDATE nopk SET b = 'Dup' WHERE b = 'dup' AND ctid = (SELECT min(ctid) FROM nopk WHERE b = 'dup')`,
    );
    expect(await verifyPostgresDatabase({ ...PG }, target, expected, { checksums: true })).toEqual([
      {
        kind: 'checksum',
        database: target,
        table: 'public.nopk',
        expected: expected.tables['public.nopk']?.checksum,
        actual: expect.stringMatching(/^[0-9a-f]{32}$/),
      },
    ]);
  });
});
