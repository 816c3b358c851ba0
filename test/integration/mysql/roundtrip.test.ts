import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifeboatError } from '../../../src/errors.js';
import { IntegrityError, UsageError } from '../../../src/errors.js';
import { backupMysql } from '../../../src/sources/mysql/backup.js';
import { restoreMysql, type MysqlRestoreOptions } from '../../../src/sources/mysql/restore.js';
import type { DatabaseBackupResult } from '../../../src/sources/database/results.js';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import { FakeRepo } from '../../helpers/fakeRepo.js';
import { openTestRepo, type TestRepo } from '../postgres/testRepo.js';
import { assertMyUp, ident, MY, MyScratch, myRunnable, sql, uniqueName } from './myTestServer.js';
import { populateSample } from './sampleData.js';

const restoreDefaults: Omit<MysqlRestoreOptions, 'into'> = {
  create: true,
  clean: false,
  globals: false,
  jobs: 1,
  force: false,
  dryRun: false,
};

const WEIRD = 'Weird `Name` ü;x';

describe.skipIf(!myRunnable)('mysql backup and restore round trip', () => {
  const scratch = new MyScratch();
  let t: TestRepo;
  let source: string;
  let backup: DatabaseBackupResult;
  let snapshot: SnapshotEntry;
  let tempDir: string;

  beforeAll(async () => {
    assertMyUp();
    tempDir = await mkdtemp(join(tmpdir(), 'lb-my-rt-'));
    // Space, backtick, `;`, `=` and non-ASCII: quoting everywhere (no `/`: MySQL forbids it; quotes: see below).
    source = await scratch.createDatabase(`${uniqueName()} weird \`db\`;=ü`);
    await populateSample(source);
    t = await openTestRepo();
    backup = await backupMysql(t.repo, MY, {
      databases: [source],
      usersAndGrants: false,
      checksums: true,
      tempDir,
    });
    snapshot = await t.commit('shop-mysql', 'mysql', backup);
  });

  afterAll(async () => {
    await t?.dispose();
    await scratch.dropAll();
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  });

  it('records exact row counts, checksums and a schema digest', async () => {
    const db = backup.fingerprint.databases[source];
    expect(backup.fingerprint.engine).toBe('mariadb');
    const counts = Object.fromEntries(Object.entries(db?.tables ?? {}).map(([k, v]) => [k, v.rows]));
    expect(counts).toEqual({ accounts: 500, [WEIRD]: 3, items: 2001, nopk: 5 });
    for (const table of Object.values(db?.tables ?? {})) expect(table.checksum).toMatch(/^[0-9a-f]{32}$/);
    expect(db?.schemaDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(backup.warnings).toEqual([]);
    expect(Number(backup.manifest.dumps[0]?.properties.commitsBlockedMs)).toBeLessThan(5000);
    // The private option file is gone.
    expect(await readdir(tempDir)).toEqual([]);
  });

  it('keeps the fingerprint in the committed snapshot record', () => {
    expect(snapshot.fingerprint).toEqual(backup.fingerprint);
    expect(snapshot.paths).toEqual(backup.paths);
  });

  it('restores into a new database under another name and verifies it', async () => {
    const target = scratch.track(`${uniqueName('lb_restore')} "copy"`);
    const result = await restoreMysql(t.repo, snapshot, {
      ...restoreDefaults,
      tempDir,
      into: { ...MY, database: target },
    });
    expect(result.differences).toEqual([]);
    expect(result.verified).toBe(true);
    const q = `SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', HEX(data), HEX(vb), j, f, fl, dt, tm, y, e, s, HEX(bits), HEX(lat), HEX(g)) ORDER BY \`col "q"\`)) AS h FROM ${ident(WEIRD)}`;
    expect(await sql(target, q)).toEqual(await sql(source, q));
    expect(await sql(target, `SELECT f_double(21) AS v`)).toEqual([{ v: 42 }]);
    expect(await sql(target, `SELECT COUNT(*) AS n FROM rich`)).toEqual(
      await sql(source, `SELECT COUNT(*) AS n FROM rich`),
    );
    expect(await sql(target, `SELECT NEXTVAL(ticket_seq) AS v`)).toEqual(
      await sql(source, `SELECT NEXTVAL(ticket_seq) AS v`),
    );
    expect(
      await sql(undefined, `SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`, [
        target,
      ]),
    ).toEqual([{ n: 1 }]);
  });

  it('reports every difference when the restored database does not match', async () => {
    const target = await scratch.createDatabase(uniqueName('lb_restore_x'));
    await sql(target, `CREATE TABLE extra_t (x INT); INSERT INTO extra_t VALUES (1)`);
    const result = await restoreMysql(t.repo, snapshot, {
      ...restoreDefaults,
      clean: true,
      into: { ...MY, database: target },
    });
    expect(result.verified).toBe(false);
    expect(result.differences).toEqual([
      { kind: 'schema', database: target, expected: expect.any(String), actual: expect.any(String) },
      { kind: 'table-extra', database: target, table: 'extra_t' },
    ]);
  });

  it('refuses a non-empty target unless clean, and writes nothing', async () => {
    const target = await scratch.createDatabase(uniqueName('lb_restore_ne'));
    await sql(target, `CREATE TABLE keep_me (x INT)`);
    const err = await restoreMysql(t.repo, snapshot, {
      ...restoreDefaults,
      into: { ...MY, database: target },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/not empty/);
    expect(
      await sql(undefined, `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, [
        target,
      ]),
    ).toEqual([{ n: 1 }]);
  });

  it('refuses to overwrite the source database unless forced', async () => {
    const err = await restoreMysql(t.repo, snapshot, { ...restoreDefaults, clean: true, into: MY }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/database this snapshot was taken from/);
    const forced = await restoreMysql(t.repo, snapshot, {
      ...restoreDefaults,
      clean: true,
      force: true,
      into: MY,
    });
    expect(forced.databases[0]?.target).toBe(source);
    expect(forced.differences).toEqual([]);
  });

  it('refuses a missing target without create', async () => {
    const err = await restoreMysql(t.repo, snapshot, {
      ...restoreDefaults,
      create: false,
      into: { ...MY, database: uniqueName('lb_missing') },
    }).catch((e: unknown) => e);
    expect((err as LifeboatError).code).toBe('E_DB_NOT_FOUND');
  });

  it('plans a dry run: exact commands, redacted, nothing written', async () => {
    const target = uniqueName('lb_dry');
    const result = await restoreMysql(t.repo, snapshot, {
      ...restoreDefaults,
      dryRun: true,
      into: { ...MY, database: target, password: '' },
    });
    expect(
      result.commands.some(
        (c) => c.includes('--defaults-file=<private option file') && c.includes(`--database=${target}`),
      ),
    ).toBe(true);
    expect(result.commands.some((c) => c.startsWith('SQL: CREATE DATABASE'))).toBe(true);
    expect(result.databases).toEqual([]);
    expect(
      await sql(undefined, `SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [
        target,
      ]),
    ).toEqual([{ n: 0 }]);
  });

  it('dumps a database whose name holds quotes, and refuses clearly when it has events mariadb-dump cannot dump', async () => {
    const quoted = await scratch.createDatabase(`${uniqueName()} it's "q"`);
    await sql(quoted, `CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2)`);
    const b = await backupMysql(new FakeRepo(), MY, {
      databases: [quoted],
      usersAndGrants: false,
      checksums: true,
    });
    expect(b.fingerprint.databases[quoted]?.tables.t?.rows).toBe(2);
    await sql(quoted, `CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1`);
    const err = await backupMysql(new FakeRepo(), MY, {
      databases: [quoted],
      usersAndGrants: false,
      checksums: true,
    }).catch((e: unknown) => e);
    expect((err as LifeboatError).code).toBe('E_MYSQL_UNSUPPORTED_NAME');
    expect((err as LifeboatError).hint).toMatch(/Rename/);
  });

  it('stops with an IntegrityError when a stored chunk is corrupt', async () => {
    const fake = new FakeRepo({ chunkSize: 16 * 1024 });
    const small = await scratch.createDatabase();
    await sql(
      small,
      `CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_5000`,
    );
    const b = await backupMysql(fake, MY, { databases: [small], usersAndGrants: false, checksums: false });
    const tree = await fake.loadTree(b.tree);
    const dir = tree.nodes.find((n) => n.name === 'databases');
    const dump = (await fake.loadTree(dir?.subtree as string)).nodes[0];
    fake.corrupt(dump?.content?.[3] as string);
    const err = await restoreMysql(
      fake,
      { tree: b.tree },
      { ...restoreDefaults, into: { ...MY, database: scratch.track(uniqueName('lb_corrupt')) } },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
  });
});
