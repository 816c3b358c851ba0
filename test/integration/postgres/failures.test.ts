import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessDeniedError, ExitCode, LifeboatError } from '../../../src/errors.js';
import { backupPostgres, type PostgresBackupOptions } from '../../../src/sources/postgres/backup.js';
import { FakeRepo } from '../../helpers/fakeRepo.js';
import { assertPgUp, PG, PgScratch, pgRunnable, sql } from './pgTestServer.js';

const opts: PostgresBackupOptions = { databases: [], globals: false, checksums: true };

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

/** Every text a user could see of an error. */
const visible = (e: LifeboatError) => `${e.message}\n${e.hint ?? ''}\n${JSON.stringify(e.details ?? {})}`;

describe.skipIf(!pgRunnable)('postgres backup failures are errors, never restore points', () => {
  const scratch = new PgScratch();
  let fakeBin: string;
  const realPgDump = execFileSync('which', ['pg_dump']).toString().trim();

  beforeAll(async () => {
    assertPgUp();
    fakeBin = await mkdtemp(join(tmpdir(), 'lb-fake-pgbin-'));
  });

  afterAll(async () => {
    await scratch.dropAll();
    await rm(fakeBin, { recursive: true, force: true });
  });

  async function fakeTool(dir: string, name: string, script: string): Promise<string> {
    await writeFile(join(dir, name), `#!/bin/sh\n${script}\n`);
    await chmod(join(dir, name), 0o755);
    return dir;
  }

  it('names unknown databases and lists the existing ones', async () => {
    const db = await scratch.createDatabase();
    const repo = new FakeRepo();
    const err = await failureOf(backupPostgres(repo, PG, { ...opts, databases: [db, 'lb_no_such_db_x'] }));
    expect(err.code).toBe('E_DB_NOT_FOUND');
    expect(err.message).toContain('"lb_no_such_db_x"');
    expect(err.hint).toContain(JSON.stringify(db));
    expect(repo.blobs.size).toBe(0);
  });

  it('reports a server that is down', async () => {
    const port = await closedPort();
    const err = await failureOf(
      backupPostgres(
        new FakeRepo(),
        { ...PG, port, password: 'Hidden-pw-123' },
        { ...opts, databases: ['x'] },
      ),
    );
    expect(err.code).toBe('E_DB_UNREACHABLE');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.hint).toMatch(/server is running/);
    expect(visible(err)).not.toContain('Hidden-pw-123');
  });

  it('fails with access denied when one table is not readable by the backup user', async () => {
    const db = await scratch.createDatabase();
    await sql(
      db,
      `CREATE TABLE open_t (x int); CREATE TABLE secret_t (x int); INSERT INTO secret_t VALUES (1)`,
    );
    const role = await scratch.createRole();
    await sql(db, `GRANT SELECT ON open_t TO "${role}"`);
    const repo = new FakeRepo();
    const err = await failureOf(backupPostgres(repo, { ...PG, user: role }, { ...opts, databases: [db] }));
    expect(err).toBeInstanceOf(AccessDeniedError);
    expect(err.exitCode).toBe(ExitCode.accessDenied);
    expect(err.message).toContain('secret_t');
    expect(err.hint).toMatch(/GRANT/);
    // Released: the database can be dropped right away (no lingering session holding locks).
    expect(
      await sql('postgres', `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [db]),
    ).toEqual([{ n: 0 }]);
  });

  it('refuses a pg_dump older than the server, naming both versions', async () => {
    const dir = await mkdtemp(join(fakeBin, 'old-'));
    await fakeTool(dir, 'pg_dump', `echo "pg_dump (PostgreSQL) 9.6.24"`);
    const db = await scratch.createDatabase();
    const err = await failureOf(
      backupPostgres(new FakeRepo(), PG, { ...opts, databases: [db], binDir: dir }),
    );
    expect(err.code).toBe('E_PG_DUMP_TOO_OLD');
    expect(err.message).toContain('9.6.24');
    expect(err.message).toMatch(/PostgreSQL 1\d\./);
    expect(err.hint).toMatch(/client tools/);
  });

  it('turns a pg_dump failure into an error with its redacted stderr', async () => {
    const dir = await mkdtemp(join(fakeBin, 'fail-'));
    await fakeTool(
      dir,
      'pg_dump',
      `case "$1" in --version) exec ${realPgDump} --version;; esac
printf 'PGDMP partial'
echo "pg_dump: error: something broke; password=TopSecret-42 in conninfo" >&2
exit 1`,
    );
    const db = await scratch.createDatabase();
    await sql(db, `CREATE TABLE t (x int)`);
    const err = await failureOf(
      backupPostgres(new FakeRepo(), PG, { ...opts, databases: [db], binDir: dir }),
    );
    expect(err.code).toBe('E_PG_DUMP_FAILED');
    expect(err.message).toContain('something broke');
    expect(err.message).toContain('exit 1');
    expect(visible(err)).not.toContain('TopSecret-42');
    expect(
      await sql('postgres', `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [db]),
    ).toEqual([{ n: 0 }]);
  });

  it('fails when pg_dump is killed in the middle of the dump', async () => {
    const db = await scratch.createDatabase();
    await sql(
      db,
      `CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 20) AS pad FROM generate_series(1, 200000) g`,
    );
    let killed = false;
    const err = await failureOf(
      backupPostgres(new FakeRepo(), PG, {
        ...opts,
        databases: [db],
        checksums: false,
        onProgress: () => {
          if (killed) return;
          killed = true;
          // Our own child: the pg_dump this backup started.
          const pid = execFileSync('pgrep', ['-P', String(process.pid), '-x', 'pg_dump'])
            .toString()
            .trim();
          process.kill(Number(pid), 'SIGKILL');
        },
      }),
    );
    expect(killed).toBe(true);
    expect(err.code).toBe('E_PG_DUMP_FAILED');
    expect(err.message).toContain('SIGKILL');
  });

  it('fails when the server ends pg_dump’s session in the middle of the dump', async () => {
    const db = await scratch.createDatabase();
    await sql(
      db,
      `CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 20) AS pad FROM generate_series(1, 200000) g`,
    );
    // The first chunk saved ends pg_dump's session, and no chunk is saved until that is done: pg_dump, whose
    // output is then not read, waits with ~110 of its 128 MB still to send, however fast this machine reads.
    let terminated: Promise<unknown> | undefined;
    class TerminatingRepo extends FakeRepo {
      override async saveBlob(...args: Parameters<FakeRepo['saveBlob']>) {
        terminated ??= sql(
          'postgres',
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'lifeboat-pg_dump-%'`,
          [db],
        );
        await terminated;
        return super.saveBlob(...args);
      }
    }
    const err = await failureOf(
      backupPostgres(new TerminatingRepo(), PG, { ...opts, databases: [db], checksums: false }),
    );
    expect(await terminated).toEqual([{ pg_terminate_backend: true }]);
    expect(err.code).toMatch(/^E_(PG_DUMP_FAILED|DB_UNREACHABLE)$/);
    expect(err.message).toMatch(/pg_dump/);
  });
});
