/**
 * The table data of a restore, loaded by lifeboat over several sessions
 * (src/sources/postgres/tableData.ts), against the real server: a table cut
 * into many pieces, a row longer than a piece, values with escaped line ends,
 * and the data entries it leaves to SQL (sequence values) and to pg_restore
 * (large objects); then a load that fails halfway.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LifeboatError } from '../../../src/errors.js';
import { backupPostgres } from '../../../src/sources/postgres/backup.js';
import { restorePostgres } from '../../../src/sources/postgres/restore.js';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import {
  assertPgUp,
  debugLogger,
  PG,
  PgScratch,
  pgRunnable,
  quoteIdent,
  restoreDefaults,
  sql,
  uniqueName,
} from './pgTestServer.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

describe.skipIf(!pgRunnable)('postgres restore: table data over several sessions', () => {
  const scratch = new PgScratch();
  let t: TestRepo;
  let source: string;
  let snapshot: SnapshotEntry;
  // What the restored database must hold, read from the source.
  const facts = `SELECT (SELECT count(*) FROM big)::int AS rows,
                        (SELECT md5(string_agg(id::text || ':' || pad, ',' ORDER BY id)) FROM big) AS big,
                        (SELECT md5(v) FROM long_row) AS long_value,
                        (SELECT last_value FROM counter) AS counter,
                        (SELECT md5(lo_get(o)) FROM blob_ref) AS blob`;

  beforeAll(async () => {
    assertPgUp();
    source = await scratch.createDatabase(uniqueName('lb_tabledata'));
    // ~6 MiB in one table: several 1 MiB pieces, so every session gets some of it.
    await sql(
      source,
      `CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
       INSERT INTO big SELECT g, repeat(md5(g::text), 3) || E'\\n\\t\\\\ end' FROM generate_series(1, 60000) g;
       CREATE TABLE long_row (v text);
       INSERT INTO long_row SELECT string_agg(md5(g::text), E'\\n') FROM generate_series(1, 100000) g;
       CREATE SEQUENCE counter; SELECT setval('counter', 4242);
       CREATE TABLE blob_ref (o oid);
       INSERT INTO blob_ref SELECT lo_from_bytea(0, decode(repeat('00ff', 5000), 'hex'));
       CREATE TABLE words (w text);
       INSERT INTO words VALUES ('plain'), ('日本語');`,
    );
    t = await openTestRepo();
    const backup = await backupPostgres(t.repo, PG, { databases: [source], globals: false, checksums: true });
    snapshot = await t.commit('shop-db', 'postgres', backup);
  });

  afterAll(async () => {
    await t?.dispose();
    // Large objects belong to the database: dropping it removes them.
    await scratch.dropAll();
  });

  it.each([1, 3])('restores everything with %i session(s) and verifies it', async (jobs) => {
    const target = scratch.track(uniqueName('lb_tabledata_r'));
    const { logger, lines } = debugLogger();
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      jobs,
      logger,
      into: { ...PG, database: target },
    });
    // Every session took pieces: `big` was split across them.
    const perSession = /pieces per session: ([\d, ]+)\)/.exec(lines.join('\n'))?.[1]?.split(', ').map(Number);
    expect(perSession).toHaveLength(jobs);
    for (const n of perSession ?? []) expect(n).toBeGreaterThan(0);
    expect(result.differences).toEqual([]);
    expect(result.verified).toBe(true);
    expect(result.commands.join('\n')).toContain(`COPY <each table> FROM stdin`);
    expect(result.commands.join('\n')).toContain(`${jobs} sessions`);
    expect(await sql(target, facts)).toEqual(await sql(source, facts));
    // The primary key came back (post-data), and it holds.
    const pk = await sql(
      target,
      `SELECT conname FROM pg_constraint WHERE conrelid = 'big'::regclass AND contype = 'p'`,
    );
    expect(pk).toEqual([{ conname: 'big_pkey' }]);
  });

  it('runs the default of 2 sessions', async () => {
    const target = scratch.track(uniqueName('lb_tabledata_d'));
    const result = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      jobs: undefined,
      dryRun: true,
      into: { ...PG, database: target },
    });
    expect(result.commands.join('\n')).toContain('2 sessions');
    expect(result.plan.join('\n')).toMatch(/load the table data over 2 sessions/);
  });

  it('leaves an archive it cannot read (compressed) to pg_restore, and still verifies it', async () => {
    // A pg_dump that compresses, as one not run by lifeboat would: the other tools are the real ones.
    const bin = await mkdtemp(join(tmpdir(), 'lb-pgbin-'));
    try {
      await writeFile(
        join(bin, 'pg_dump'),
        '#!/bin/sh\nfor a do shift; [ "$a" = --compress=0 ] && a=--compress=6; set -- "$@" "$a"; done\n' +
          'exec pg_dump "$@"\n',
        { mode: 0o755 },
      );
      for (const tool of ['pg_restore', 'psql', 'pg_dumpall']) {
        await symlink(
          execFileSync('sh', ['-c', `command -v ${tool}`])
            .toString()
            .trim(),
          join(bin, tool),
        );
      }
      const backup = await backupPostgres(t.repo, PG, {
        databases: [source],
        globals: false,
        checksums: true,
        binDir: bin,
      });
      const compressed = await t.commit('shop-db', 'postgres', backup);
      const target = scratch.track(uniqueName('lb_tabledata_z'));
      const { logger, lines } = debugLogger();
      const result = await restorePostgres(t.repo, compressed, {
        ...restoreDefaults,
        logger,
        into: { ...PG, database: target },
      });
      expect(lines.join('\n')).toContain('the archive is compressed');
      expect(lines.join('\n')).not.toContain('pieces per session');
      expect(result.differences).toEqual([]);
      expect(await sql(target, facts)).toEqual(await sql(source, facts));
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('stops at a table the target cannot take, names it, and leaves no session behind', async () => {
    // An empty LATIN1 database cannot hold '日本語': the COPY into `words` fails.
    const target = uniqueName('lb_tabledata_latin1');
    await sql(
      'postgres',
      `CREATE DATABASE ${quoteIdent(target)} TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`,
    );
    scratch.track(target);
    const err = await restorePostgres(t.repo, snapshot, {
      ...restoreDefaults,
      create: false,
      jobs: 2,
      into: { ...PG, database: target },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as Error).message).toContain('loading table public.words');
    expect((err as Error).message).toMatch(/LATIN1/);
    // A closed session's backend ends a moment after its socket closes (it rolls back first).
    let left: Array<{ n: number; q: string }> = [];
    for (let tries = 0; tries < 50; tries++) {
      left = await sql<{ n: number; q: string }>(
        'postgres',
        `SELECT count(*)::int AS n, string_agg(state || ': ' || query, '; ') AS q FROM pg_stat_activity WHERE datname = $1`,
        [target],
      );
      if (left[0]?.n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left[0]).toMatchObject({ n: 0 });
  });
});
