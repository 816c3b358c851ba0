/**
 * A streamed restore builds simple PRIMARY KEY / UNIQUE constraints as a
 * unique index plus ADD CONSTRAINT … USING INDEX, beside verification
 * (postData.ts). The restored constraints and indexes must be exactly the
 * source's, whatever form each one has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupPostgres } from '../../../src/sources/postgres/backup.js';
import { restorePostgres } from '../../../src/sources/postgres/restore.js';
import { runPostData } from '../../../src/sources/postgres/postData.js';
import { resolvePgConnection } from '../../../src/sources/postgres/connection.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { Readable } from 'node:stream';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import {
  assertPgUp,
  debugLogger,
  PG,
  PgScratch,
  pgRunnable,
  restoreDefaults,
  sql,
  uniqueName,
} from './pgTestServer.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const SCHEMA = `
  CREATE TABLE customers (
    id int PRIMARY KEY,
    email text UNIQUE,
    code text,
    CONSTRAINT customers_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED
  );
  COMMENT ON CONSTRAINT customers_pkey ON customers IS 'the key';
  CREATE UNIQUE INDEX customers_lower_email ON customers (lower(email));
  CREATE TABLE orders (
    id bigint,
    customer int REFERENCES customers (id),
    email text REFERENCES customers (email),
    CONSTRAINT orders_pkey PRIMARY KEY (id) INCLUDE (customer)
  );
  CREATE TABLE "Order Lines" (
    "Order Id" bigint REFERENCES orders (id),
    "Line" int,
    qty int NOT NULL DEFAULT 1,
    CONSTRAINT "Order Lines ""pk""" PRIMARY KEY ("Order Id", "Line")
  );
  CREATE INDEX order_lines_qty ON "Order Lines" (qty);
  CREATE TABLE events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
  CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  CREATE TABLE clustered (id int PRIMARY KEY, v text);
  ALTER TABLE clustered CLUSTER ON clustered_pkey;
  CREATE TABLE replident (id int NOT NULL, CONSTRAINT replident_id_key UNIQUE (id));
  ALTER TABLE replident REPLICA IDENTITY USING INDEX replident_id_key;
  CREATE TABLE ff (id int, CONSTRAINT ff_pkey PRIMARY KEY (id) WITH (fillfactor = 70));
  INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'code' || g FROM generate_series(1, 3000) g;
  INSERT INTO orders SELECT g, 1 + g % 3000, 'c' || (1 + g % 3000) || '@example.com' FROM generate_series(1, 5000) g;
  INSERT INTO "Order Lines" SELECT 1 + g % 5000, g, g % 7 FROM generate_series(1, 20000) g;
  INSERT INTO events SELECT g, DATE '2024-01-01' + g % 300 FROM generate_series(1, 1000) g;
  INSERT INTO clustered SELECT g, 'v' FROM generate_series(1, 100) g;
  INSERT INTO replident SELECT g FROM generate_series(1, 100) g;
  INSERT INTO ff SELECT g FROM generate_series(1, 100) g;
`;

const CONSTRAINTS = `
  SELECT conrelid::regclass::text AS tbl, conname, contype, pg_get_constraintdef(oid) AS def,
         condeferrable, condeferred, conindid::regclass::text AS idx,
         obj_description(oid, 'pg_constraint') AS comment
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`;
const INDEXES = `
  SELECT indexrelid::regclass::text AS idx, pg_get_indexdef(indexrelid) AS def, indisprimary, indisunique,
         indisclustered, indisreplident, indisvalid, indimmediate, c.reloptions
    FROM pg_index JOIN pg_class c ON c.oid = indexrelid
   WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) ORDER BY 1`;

describe.skipIf(!pgRunnable)('postgres restore: post-data beside verification', () => {
  const scratch = new PgScratch();
  let t: TestRepo;
  let source: string;
  let snapshot: SnapshotEntry;

  beforeAll(async () => {
    assertPgUp();
    source = await scratch.createDatabase();
    await sql(source, SCHEMA);
    t = await openTestRepo();
    const backup = await backupPostgres(t.repo, PG, { databases: [source], globals: false, checksums: true });
    snapshot = await t.commit('shop-db', 'postgres', backup);
  });

  afterAll(async () => {
    await t?.dispose();
    await scratch.dropAll();
  });

  it('restores every constraint and index exactly, splitting only the simple ones', async () => {
    const { logger, lines: debug } = debugLogger();
    const target = scratch.track(uniqueName('lb_postdata'));
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      into: { ...PG, database: target },
      logger,
    });
    expect(result.differences).toEqual([]);
    expect(result.verified).toBe(true);
    expect(await sql(target, CONSTRAINTS)).toEqual(await sql(source, CONSTRAINTS));
    expect(await sql(target, INDEXES)).toEqual(await sql(source, INDEXES));

    const split = debug
      .filter((m) => m.startsWith('building the index of'))
      .map((m) => m.replace(/^building the index of (PRIMARY KEY|UNIQUE) (\S+|".*") on .*$/, '$2'))
      .sort();
    // Not split: DEFERRABLE, INCLUDE, a partitioned table and its partition, CLUSTER ON,
    // REPLICA IDENTITY, WITH (fillfactor) — pg_restore restores those as they are.
    expect(split).toEqual(['"Order Lines ""pk"""', 'customers_email_key', 'customers_pkey']);
  });

  it('shows the post-data step in a dry run', async () => {
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      into: { ...PG, database: uniqueName('lb_postdata_dry') },
      dryRun: true,
    });
    expect(result.commands.join('\n')).toMatch(/--section=pre-data < archive/);
    expect(result.commands.join('\n')).toMatch(/--use-list=/);
  });

  it('fails naming the database and the cause when a unique index cannot be built', async () => {
    const db = await scratch.createDatabase();
    await sql(db, `CREATE TABLE t (id int NOT NULL); INSERT INTO t VALUES (1), (1)`);
    const ctx = {
      source: () => Readable.from([]),
      pgRestore: 'pg_restore',
      restoreOptions: ['--no-password'],
      target: resolvePgConnection(PG),
      database: db,
      what: `restoring indexes and constraints of database x into ${db}`,
      logger: silentLogger,
    };
    const c = {
      dumpId: 1,
      table: 'public.t',
      name: 't_pkey',
      kind: 'PRIMARY KEY' as const,
      columns: 'id',
      tablespace: '',
    };
    const failure = runPostData(ctx, `--dbname=${db}`, {
      prebuild: [c],
      steps: [{ kind: 'add-constraint', constraint: c }],
    });
    await expect(failure).rejects.toThrow(
      /restoring indexes and constraints of database x into .*duplicate key|could not create unique index/s,
    );
    expect(
      await sql(db, `SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'public.t'::regclass`),
    ).toEqual([{ n: 0 }]);
  });
});
