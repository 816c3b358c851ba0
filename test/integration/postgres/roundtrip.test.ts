import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError, LifeboatError, UsageError } from '../../../src/errors.js';
import { backupPostgres, type DatabaseBackupResult } from '../../../src/sources/postgres/backup.js';
import { restorePostgres } from '../../../src/sources/postgres/restore.js';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import { FakeRepo } from '../../helpers/fakeRepo.js';
import { assertPgUp, PG, PgScratch, pgRunnable, restoreDefaults, sql, uniqueName } from './pgTestServer.js';
import { populateSample } from './sampleData.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

describe.skipIf(!pgRunnable)('postgres backup and restore round trip', () => {
  const scratch = new PgScratch();
  let t: TestRepo;
  let source: string;
  let backup: DatabaseBackupResult;
  let snapshot: SnapshotEntry;

  beforeAll(async () => {
    assertPgUp();
    // A name that needs quoting everywhere: space, quotes, `=` (conninfo), `/` (file names), non-ASCII.
    source = await scratch.createDatabase(`${uniqueName()} We'ird "db"=x/y ü`);
    await populateSample(source);
    t = await openTestRepo();
    backup = await backupPostgres(t.repo, PG, { databases: [source], globals: false, checksums: true });
    snapshot = await t.commit('shop-db', 'postgres', backup);
  });

  afterAll(async () => {
    await t?.dispose();
    await scratch.dropAll();
  });

  it('records exact row counts, checksums and a schema digest per database', () => {
    const db = backup.fingerprint.databases[source];
    expect(db).toBeDefined();
    expect(backup.fingerprint.engine).toBe('postgres');
    expect(backup.fingerprint.serverIdentity).toMatch(/^pg-(system|host):/);
    const rows = Object.fromEntries(Object.entries(db?.tables ?? {}).map(([k, v]) => [k, v.rows]));
    expect(rows).toEqual({
      'public.accounts': 500,
      'public."Weird Name; ""x"" ü"': 4,
      'other.items': 2001,
      'public.nopk': 4,
      'public.parted_low': 100,
      'public.parted_high': 900,
    });
    for (const table of Object.values(db?.tables ?? {})) expect(table.checksum).toMatch(/^[0-9a-f]{32}$/);
    expect(db?.schemaDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(backup.paths).toEqual([source]);
    expect(backup.manifest.dumps[0]?.path).toMatch(/^databases\/.*%2F.*\.dump$/);
    expect(backup.stats.files).toBe(2);
    expect(backup.stats.bytes).toBeGreaterThan(50_000);
  });

  it('keeps the fingerprint in the committed snapshot record', () => {
    expect(snapshot.fingerprint).toEqual(backup.fingerprint);
    expect(snapshot.paths).toEqual(backup.paths);
  });

  it('restores into a new database and verifies it equal to the fingerprint', async () => {
    const target = scratch.track(`${uniqueName('lb_restore')} "copy"`);
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      into: { ...PG, database: target },
    });
    expect(result.differences).toEqual([]);
    expect(result.verified).toBe(true);
    expect(result.databases).toMatchObject([{ source, target, created: true }]);
    // Independent checks of what the fingerprint summarises.
    const q = `SELECT md5(string_agg(coalesce(encode(data, 'hex'), 'N') || j::text || f::text || coalesce(iv::text, 'N'), '|' ORDER BY "Col ""q"""))
                 AS h FROM "Weird Name; ""x"" ü"`;
    expect(await sql(target, q)).toEqual(await sql(source, q));
    const seq = `SELECT last_value FROM ticket_seq`;
    expect(await sql(target, seq)).toEqual(await sql(source, seq));
    expect(await sql(target, `SELECT n FROM owner_count`)).toEqual([{ n: '500' }]);
    expect(await sql(target, `SELECT count(*)::int AS n FROM rich`)).toEqual(
      await sql(source, `SELECT count(*)::int AS n FROM rich`),
    );
  });

  it('restores with --clean through parallel pg_restore jobs from a spooled archive', async () => {
    // Empty, but --clean takes pg_restore's whole run (its DROPs, IF EXISTS, come first).
    const target = await scratch.createDatabase(uniqueName('lb_restore_j'));
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      clean: true,
      jobs: 2,
      into: { ...PG, database: target },
    });
    expect(result.differences).toEqual([]);
    expect(result.commands.join('\n')).toContain('--jobs=2');
    expect(result.commands.join('\n')).not.toContain('--section');
  });

  it('reports every difference when the restored database does not match', async () => {
    const target = await scratch.createDatabase(uniqueName('lb_restore_x'));
    await sql(target, `CREATE TABLE extra_t (x int); INSERT INTO extra_t VALUES (1)`);
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      clean: true,
      into: { ...PG, database: target },
    });
    expect(result.verified).toBe(false);
    expect(result.differences).toEqual([
      { kind: 'schema', database: target, expected: expect.any(String), actual: expect.any(String) },
      { kind: 'table-extra', database: target, table: 'public.extra_t' },
    ]);
  });

  it('refuses a non-empty target unless clean, and writes nothing', async () => {
    const target = await scratch.createDatabase(uniqueName('lb_restore_ne'));
    await sql(target, `CREATE TABLE keep_me (x int)`);
    const err = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      into: { ...PG, database: target },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/not empty/);
    expect((err as UsageError).hint).toMatch(/--clean/);
    expect(await sql(target, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`)).toEqual(
      [{ n: 1 }],
    );
  });

  it('refuses to overwrite the source database unless forced', async () => {
    const err = await restorePostgres(t.repo, snapshot, { ...restoreDefaults, clean: true, into: PG }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/database this snapshot was taken from/);
    const forced = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      clean: true,
      force: true,
      into: PG,
    });
    expect(forced.databases[0]?.target).toBe(source);
    expect(forced.differences).toEqual([]);
  });

  it('refuses a missing target without create', async () => {
    const target = uniqueName('lb_missing');
    const err = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      create: false,
      into: { ...PG, database: target },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).code).toBe('E_DB_NOT_FOUND');
    expect((err as LifeboatError).hint).toMatch(/--create/);
  });

  it('plans a dry run: exact commands, redacted, nothing written', async () => {
    const secret = `Sup3r-${uniqueName('secret')}`;
    const target = uniqueName('lb_dry');
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      dryRun: true,
      clean: true,
      into: { ...PG, password: secret, database: target },
    });
    const text = JSON.stringify(result);
    expect(text).not.toContain(secret);
    expect(
      result.commands.some(
        (c) => c.includes('PGPASSWORD=***') && c.includes('pg_restore') && c.includes('--clean'),
      ),
    ).toBe(true);
    expect(result.commands.some((c) => c.startsWith('SQL on') && c.includes('CREATE DATABASE'))).toBe(true);
    expect(result.plan.join('\n')).toMatch(/create database/);
    expect(result.databases).toEqual([]);
    expect(
      await sql('postgres', `SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [target]),
    ).toEqual([{ n: 0 }]);
  });

  it('stops with an IntegrityError when a stored chunk is corrupt', async () => {
    const fake = new FakeRepo({ chunkSize: 16 * 1024 });
    const small = await scratch.createDatabase();
    await sql(small, `CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g`);
    const b = await backupPostgres(fake, PG, { databases: [small], globals: false, checksums: false });
    const tree = await fake.loadTree(b.tree);
    const dir = tree.nodes.find((n) => n.name === 'databases');
    const dump = (await fake.loadTree(dir?.subtree as string)).nodes[0];
    const victim = dump?.content?.[2];
    expect(typeof victim).toBe('string');
    fake.corrupt(victim as string);
    const target = scratch.track(uniqueName('lb_corrupt'));
    const err = await restorePostgres(
      fake,
      { tree: b.tree },
      { ...restoreDefaults, into: { ...PG, database: target } },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
  });

  it('quotes database names in every SQL statement it builds', async () => {
    // The name round trip above covers conninfo and file names; this covers CREATE DATABASE with a quote-only name.
    const target = scratch.track(`"${uniqueName('lb_q')}"`);
    const result = await restorePostgres(t.repo, snapshot, { ...restoreDefaults, target, into: PG });
    expect(result.databases[0]?.target).toBe(target);
    expect(
      await sql('postgres', `SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [target]),
    ).toEqual([{ n: 1 }]);
  });
});
