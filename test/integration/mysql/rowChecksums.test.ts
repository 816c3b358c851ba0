/**
 * Checksums taken from the dump's rows (method rowhash1): the counts agree
 * with the server's, a restore verifies, and a changed value that keeps the
 * row count is caught.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseBackupResult } from '../../../src/sources/database/results.js';
import { backupMysql } from '../../../src/sources/mysql/backup.js';
import { restoreMysql, verifyMysqlDatabase } from '../../../src/sources/mysql/restore.js';
import { openTestRepo, type TestRepo } from '../postgres/testRepo.js';
import { assertMyUp, ident, MY, MyScratch, myRunnable, sql, uniqueName } from './myTestServer.js';
import { populateSample } from './sampleData.js';

describe.skipIf(!myRunnable)('mysql checksums from the dump rows', () => {
  const scratch = new MyScratch();
  let t: TestRepo;
  let source: string;
  let backup: DatabaseBackupResult;

  beforeAll(async () => {
    assertMyUp();
    source = await scratch.createDatabase(uniqueName('lb_rowhash'));
    await populateSample(source);
    // A routine whose body has an INSERT line of its own in the dump: not a row of nopk.
    await sql(source, "CREATE PROCEDURE p_ins() BEGIN\nINSERT INTO `nopk` VALUES (9, 'x');\nEND");
    t = await openTestRepo();
    backup = await backupMysql(t.repo, MY, { databases: [source], usersAndGrants: false, checksums: true });
  });

  afterAll(async () => {
    await t?.dispose();
    await scratch.dropAll();
  });

  it('records the method and the row counts the server has (routine bodies are not rows)', async () => {
    const fp = backup.fingerprint.databases[source];
    expect(fp?.checksumMethod).toBe('rowhash1');
    expect(fp?.copySettings).toEqual({ characterSet: 'binary' });
    for (const [table, f] of Object.entries(fp?.tables ?? {})) {
      const [r] = await sql<{ n: number }>(source, `SELECT COUNT(*) AS n FROM ${ident(table)}`);
      expect(f.rows, table).toBe(Number(r?.n));
      expect(f.checksum).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(Object.keys(fp?.tables ?? {}).sort()).toEqual(['Weird `Name` ü;x', 'accounts', 'items', 'nopk']);
  });

  it('verification finds a changed value that keeps the row count', async () => {
    const snapshot = await t.commit('rowhash', 'mysql', backup);
    const target = scratch.track(uniqueName('lb_rowhash_r'));
    const restored = await restoreMysql(t.repo, snapshot, {
      create: true,
      clean: false,
      globals: false,
      jobs: 1,
      force: false,
      dryRun: false,
      into: { ...MY, database: target },
    });
    expect(restored.differences).toEqual([]);
    const expected = backup.fingerprint.databases[source];
    if (!expected) throw new Error('no fingerprint');
    expect(await verifyMysqlDatabase(MY, target, expected, { checksums: true })).toEqual([]);
    await sql(target, `UPDATE nopk SET b = 'Dup' WHERE b = 'dup' LIMIT 1`);
    expect(await verifyMysqlDatabase(MY, target, expected, { checksums: true })).toEqual([
      {
        kind: 'checksum',
        database: target,
        table: 'nopk',
        expected: expected.tables.nopk?.checksum,
        actual: expect.stringMatching(/^[0-9a-f]{32}$/),
      },
    ]);
  });

  it('verifies with the character set the fingerprint records (none: the utf8mb4 dumps before)', async () => {
    const expected = backup.fingerprint.databases[source];
    if (!expected) throw new Error('no fingerprint');
    expect(await verifyMysqlDatabase(MY, source, expected, { checksums: true })).toEqual([]);
    // Without the recorded setting the rows are dumped as utf8mb4 with hex blobs: the text of the table
    // with blobs and latin1 differs from the backup's, that of the plain ASCII tables does not.
    const { copySettings: _, ...legacy } = expected;
    const differences = await verifyMysqlDatabase(MY, source, legacy, { checksums: true });
    expect(differences.map((d) => [d.kind, 'table' in d ? d.table : undefined])).toEqual([
      ['checksum', 'Weird `Name` ü;x'],
    ]);
  });
});
