import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessDeniedError, ExitCode, LifeboatError } from '../../../src/errors.js';
import { backupMysql, type MysqlBackupOptions } from '../../../src/sources/mysql/backup.js';
import { restoreMysql } from '../../../src/sources/mysql/restore.js';
import { FakeRepo } from '../../helpers/fakeRepo.js';
import { assertMyUp, ident, MY, MyScratch, myRunnable, sql, uniqueName } from './myTestServer.js';

// Every character that breaks naive DSN, option-file or shell handling.
const PASSWORD = `p@ss w/ord%#?&='"\\:;ü$(x)[client]`;

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 1));
    });
  });
}

async function failureOf(p: Promise<unknown>): Promise<LifeboatError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LifeboatError);
  return err as LifeboatError;
}

const visible = (e: LifeboatError) =>
  `${e.message}\n${e.hint ?? ''}\n${JSON.stringify(e.details ?? {})}\n${String((e.cause as Error)?.message)}`;

describe.skipIf(!myRunnable)('mysql backup failures and authentication', () => {
  const scratch = new MyScratch();
  let tempDir: string;
  let db: string;
  let opts: MysqlBackupOptions;

  beforeAll(async () => {
    assertMyUp();
    tempDir = await mkdtemp(join(tmpdir(), 'lb-my-fail-'));
    db = await scratch.createDatabase();
    await sql(
      db,
      `CREATE TABLE open_t (x INT PRIMARY KEY); INSERT INTO open_t VALUES (1), (2); CREATE TABLE secret_t (x INT); INSERT INTO secret_t VALUES (3)`,
    );
    opts = { databases: [db], usersAndGrants: false, checksums: true, tempDir };
  });

  afterAll(async () => {
    await scratch.dropAll();
    await rm(tempDir, { recursive: true, force: true });
  });

  async function backupUser(grants: string[]): Promise<string> {
    const user = await scratch.createUser(PASSWORD);
    for (const g of grants) await sql(undefined, g.replace('$USER', `'${user}'@'127.0.0.1'`));
    return user;
  }

  it('rejects a wrong password with access denied and never shows it', async () => {
    const user = await backupUser([`GRANT SELECT ON ${ident(db)}.* TO $USER`]);
    const wrong = 'Wrong-Password-777';
    const err = await failureOf(backupMysql(new FakeRepo(), { ...MY, user, password: wrong }, opts));
    expect(err).toBeInstanceOf(AccessDeniedError);
    expect(err.exitCode).toBe(ExitCode.accessDenied);
    expect(visible(err)).not.toContain(wrong);
    expect(await readdir(tempDir)).toEqual([]);
  });

  it('passes a password full of special characters to the driver and to the tools (DSN and parts)', async () => {
    const user = await backupUser([
      `GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON ${ident(db)}.* TO $USER`,
      `GRANT RELOAD ON *.* TO $USER`,
    ]);
    const dsn = `mysql://${user}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${MY.port}`;
    for (const spec of [{ dsn }, { ...MY, user, password: PASSWORD }]) {
      const r = await backupMysql(new FakeRepo(), spec, opts);
      expect(r.fingerprint.databases[db]?.tables.open_t?.rows).toBe(2);
    }
    expect(await readdir(tempDir)).toEqual([]);
  });

  it('explains the RELOAD privilege when commits cannot be blocked', async () => {
    const user = await backupUser([`GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON ${ident(db)}.* TO $USER`]);
    const err = await failureOf(backupMysql(new FakeRepo(), { ...MY, user, password: PASSWORD }, opts));
    expect(err).toBeInstanceOf(AccessDeniedError);
    expect(err.hint).toMatch(/GRANT RELOAD/);
    expect(visible(err)).not.toContain(PASSWORD);
  });

  it('refuses a backup user that can read only some tables (the others would be silently missing)', async () => {
    const user = await backupUser([
      `GRANT SELECT ON ${ident(db)}.open_t TO $USER`,
      `GRANT RELOAD ON *.* TO $USER`,
    ]);
    const err = await failureOf(backupMysql(new FakeRepo(), { ...MY, user, password: PASSWORD }, opts));
    expect(err).toBeInstanceOf(AccessDeniedError);
    expect(err.message).toMatch(/silently missing/);
    expect(err.hint).toMatch(/GRANT SELECT/);
  });

  it('names unknown databases and lists the existing ones', async () => {
    const err = await failureOf(
      backupMysql(new FakeRepo(), MY, { ...opts, databases: [db, 'lb_no_such_db_x'] }),
    );
    expect(err.code).toBe('E_DB_NOT_FOUND');
    expect(err.message).toContain('"lb_no_such_db_x"');
    expect(err.hint).toContain(JSON.stringify(db));
  });

  it('reports a server that is down', async () => {
    const port = await closedPort();
    const err = await failureOf(
      backupMysql(new FakeRepo(), { ...MY, port, password: 'Hidden-pw-123' }, opts),
    );
    expect(err.code).toBe('E_DB_UNREACHABLE');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(visible(err)).not.toContain('Hidden-pw-123');
  });

  it('refuses to run while another lifeboat backup of the same database holds its lock', async () => {
    const other = await mysql.createConnection(MY);
    try {
      const { lockNames } = await import('../../../src/sources/mysql/consistentDump.js');
      await other.query('SELECT GET_LOCK(?, 0)', [lockNames(db).mutex]);
      const err = await failureOf(backupMysql(new FakeRepo(), MY, opts));
      expect(err.code).toBe('E_BACKUP_RUNNING');
    } finally {
      await other.end();
    }
  });

  it('restores users, roles and grants from grants.sql', async () => {
    const user = await backupUser([`GRANT SELECT ON ${ident(db)}.* TO $USER`]);
    const role = uniqueName('lb_role');
    await sql(
      undefined,
      `CREATE ROLE ${ident(role)}; GRANT SELECT ON ${ident(db)}.open_t TO ${ident(role)}; GRANT ${ident(role)} TO '${user}'@'127.0.0.1'`,
    );
    try {
      const repo = new FakeRepo();
      const b = await backupMysql(repo, MY, { ...opts, usersAndGrants: true });
      expect(b.paths).toEqual([db, 'grants']);
      await sql(undefined, `DROP USER '${user}'@'127.0.0.1'; DROP ROLE ${ident(role)}`);
      const target = scratch.track(uniqueName('lb_grants_copy'));
      const r = await restoreMysql(
        repo,
        { tree: b.tree },
        {
          into: { ...MY, database: target },
          create: true,
          clean: false,
          globals: true,
          jobs: 1,
          force: false,
          dryRun: false,
          tempDir,
        },
      );
      expect(r.differences).toEqual([]);
      // The account is back with its password and grants.
      const conn = await mysql.createConnection({ ...MY, user, password: PASSWORD, database: db });
      try {
        const [rowsBack] = await conn.query('SELECT COUNT(*) AS n FROM open_t');
        expect(rowsBack).toEqual([{ n: 2 }]);
      } finally {
        await conn.end();
      }
      expect(
        await sql(undefined, `SELECT COUNT(*) AS n FROM mysql.roles_mapping WHERE Role = ? AND User = ?`, [
          role,
          user,
        ]),
      ).toEqual([{ n: 1 }]);
    } finally {
      await sql(undefined, `DROP ROLE IF EXISTS ${ident(role)}`);
    }
  });
});
