/**
 * Against a private cluster with scram-sha-256 (the shared server trusts
 * 127.0.0.1 and would accept any password): wrong passwords, passwords full
 * of special characters in every connection form, `databases: all`, and
 * roles restored from globals.sql.
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifeboatError } from '../../../src/errors.js';
import { AccessDeniedError, ExitCode } from '../../../src/errors.js';
import { backupPostgres } from '../../../src/sources/postgres/backup.js';
import { restorePostgres } from '../../../src/sources/postgres/restore.js';
import { FakeRepo } from '../../helpers/fakeRepo.js';
import { requireAll } from './pgTestServer.js';
import { startScramCluster, type ScramCluster } from './scramCluster.js';

const canRun = existsSync('/usr/lib/postgresql') || requireAll;
if (!existsSync('/usr/lib/postgresql'))
  console.warn('no PostgreSQL server binaries: skipping scram-auth tests');

// Every character that breaks naive DSN, conninfo or shell handling.
const PASSWORD = `p@ss w/ord%#?&='"\\:;ü$(x)`;
const APP_PASSWORD = 'App-Pw-ü-42!';

describe.skipIf(!canRun)('postgres with password authentication', () => {
  let cluster: ScramCluster;
  const base = () => ({ host: '127.0.0.1', port: cluster.port, user: 'lb_admin' });

  beforeAll(async () => {
    cluster = await startScramCluster();
    const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
    await cluster.psql(`CREATE ROLE lb_admin LOGIN SUPERUSER PASSWORD ${lit(PASSWORD)}`);
    await cluster.psql(`CREATE ROLE lb_app LOGIN PASSWORD ${lit(APP_PASSWORD)}`);
    await cluster.psql(`CREATE DATABASE shop OWNER lb_app`);
    await cluster.psql(`CREATE DATABASE crm`);
    await cluster.psql(
      `SET ROLE lb_app; CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 100) g`,
      'shop',
    );
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('rejects a wrong password with access denied and never shows it', async () => {
    const wrong = 'Wrong-Password-777';
    const err = await backupPostgres(
      new FakeRepo(),
      { ...base(), password: wrong },
      { databases: ['shop'], globals: false, checksums: false },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessDeniedError);
    const e = err as LifeboatError;
    expect(e.exitCode).toBe(ExitCode.accessDenied);
    expect(e.message).toMatch(/password authentication failed/);
    const text = `${e.message} ${e.hint} ${JSON.stringify(e.details ?? {})} ${String((e.cause as Error)?.message)}`;
    expect(text).not.toContain(wrong);
  });

  it('accepts the password in a URL DSN, a keyword DSN and connection parts', async () => {
    const url = `postgres://lb_admin:${encodeURIComponent(PASSWORD)}@127.0.0.1:${cluster.port}/postgres`;
    const kw = `host=127.0.0.1 port=${cluster.port} user=lb_admin password='${PASSWORD.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    for (const spec of [{ dsn: url }, { dsn: kw }, { ...base(), password: PASSWORD }]) {
      const r = await backupPostgres(new FakeRepo(), spec, {
        databases: ['shop'],
        globals: false,
        checksums: true,
      });
      expect(r.fingerprint.databases.shop?.tables['public.orders']?.rows).toBe(100);
    }
  });

  it('backs up every database that accepts connections for `all`', async () => {
    const r = await backupPostgres(
      new FakeRepo(),
      { ...base(), password: PASSWORD },
      { databases: 'all', globals: false, checksums: false },
    );
    expect(Object.keys(r.fingerprint.databases).sort()).toEqual(['crm', 'postgres', 'shop']);
  });

  it('restores roles from globals.sql before the database that needs them', async () => {
    const repo = new FakeRepo();
    const spec = { ...base(), password: PASSWORD };
    const r = await backupPostgres(repo, spec, { databases: ['shop'], globals: true, checksums: true });
    expect(r.paths).toEqual(['shop', 'globals']);
    await cluster.psql(`DROP DATABASE shop`);
    await cluster.psql(`DROP ROLE lb_app`);
    const result = await restorePostgres(
      repo,
      { tree: r.tree },
      {
        into: spec,
        create: true,
        clean: false,
        globals: true,
        jobs: 1,
        force: false,
        dryRun: false,
      },
    );
    expect(result.differences).toEqual([]);
    expect(result.warnings).toEqual([]);
    // The role came back with its password: it can log in again, and owns the table again.
    const client = new pg.Client({ ...base(), user: 'lb_app', password: APP_PASSWORD, database: 'shop' });
    await client.connect();
    try {
      const owner = await client.query(`SELECT tableowner FROM pg_tables WHERE tablename = 'orders'`);
      expect(owner.rows).toEqual([{ tableowner: 'lb_app' }]);
    } finally {
      await client.end();
    }
  });
});
