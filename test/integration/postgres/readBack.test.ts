/**
 * A restore's verification reads the rows back with COPY over two sessions
 * (readBack.ts): its checksums must equal the backup's, whatever the
 * database's encoding and however a table is cut into block ranges, and a
 * COPY that fails must name its table and leave no session behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePgConnection } from '../../../src/sources/postgres/connection.js';
import { backupPostgres } from '../../../src/sources/postgres/backup.js';
import { readBackRows } from '../../../src/sources/postgres/readBack.js';
import { restorePostgres, verifyPostgresDatabase } from '../../../src/sources/postgres/restore.js';
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

describe.skipIf(!pgRunnable)('postgres verification reading the rows back', () => {
  const scratch = new PgScratch();
  let t: TestRepo;

  beforeAll(async () => {
    assertPgUp();
    t = await openTestRepo();
  });

  afterAll(async () => {
    await t?.dispose();
    await scratch.dropAll();
  });

  it('verifies a LATIN1 database: rows are read in the encoding pg_dump wrote them in', async () => {
    const source = scratch.track(uniqueName('lb_latin1'));
    await sql(
      'postgres',
      `CREATE DATABASE ${quoteIdent(source)} TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`,
    );
    await sql(
      source,
      `CREATE TABLE words (id int PRIMARY KEY, w text);
       INSERT INTO words VALUES (1, 'café'), (2, 'naïve'), (3, 'Straße'), (4, 'plain');`,
    );
    const backup = await backupPostgres(t.repo, PG, { databases: [source], globals: false, checksums: true });
    const target = scratch.track(uniqueName('lb_latin1_copy'));
    const { logger, lines } = debugLogger();
    const restored = await restorePostgres(
      t.repo,
      { tree: backup.tree },
      { ...restoreDefaults, into: { ...PG, database: target }, logger },
    );
    expect(restored.differences).toEqual([]);
    expect(restored.verified).toBe(true);
    expect(lines.join('\n')).toMatch(/read back 1 tables in 1 pieces over 1 sessions/);
    // A changed accented letter is found: the comparison is of the bytes, not of a lossy conversion.
    await sql(target, `UPDATE words SET w = 'cafè' WHERE id = 1`);
    const expected = backup.fingerprint.databases[source];
    if (!expected) throw new Error('no fingerprint');
    const differences = await verifyPostgresDatabase({ ...PG }, target, expected, { checksums: true });
    expect(differences).toEqual([expect.objectContaining({ kind: 'checksum', table: 'public.words' })]);
  });

  it('reads a large table in block ranges over two sessions with the same checksums as the backup', async () => {
    const source = await scratch.createDatabase(uniqueName('lb_readback'));
    await sql(
      source,
      `CREATE TABLE big (id int, pad text, doubled int GENERATED ALWAYS AS (id * 2) STORED);
       INSERT INTO big (id, pad) SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
       CREATE TABLE small (id int);
       INSERT INTO small VALUES (1), (2);
       CREATE TABLE empty (id int);`,
    );
    const backup = await backupPostgres(t.repo, PG, { databases: [source], globals: false, checksums: true });
    const expected = backup.fingerprint.databases[source];
    const target = resolvePgConnection({ ...PG });
    const { logger, lines } = debugLogger();
    const rows = await readBackRows({
      target,
      database: source,
      copySettings: expected?.copySettings,
      what: `verifying database ${source}`,
      // ~450 blocks: pieces of 16 blocks, so both sessions take many.
      pieceBlocks: 16,
      logger,
    });
    for (const key of ['public.big', 'public.small', 'public.empty']) {
      expect(rows.get(key), key).toEqual(expected?.tables[key]);
    }
    const [line] = lines;
    const perSession = /over 2 sessions \(pieces per session: (\d+), (\d+)\)/.exec(line ?? '');
    expect(perSession, line).not.toBeNull();
    expect(Number(perSession?.[1])).toBeGreaterThan(0);
    expect(Number(perSession?.[2])).toBeGreaterThan(0);
  });

  it('names the table whose COPY failed and leaves no session behind', async () => {
    const source = await scratch.createDatabase(uniqueName('lb_readback_fail'));
    await sql(
      source,
      `CREATE TABLE big (id int, pad text);
       INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 200000) g;`,
    );
    // Its failure is taken at once: it may come while the loop below is still waiting for its query.
    const outcome = readBackRows({
      target: resolvePgConnection({ ...PG }),
      database: source,
      what: `verifying database ${source}`,
      pieceBlocks: 64,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // End the first backend seen reading the table, as a server restart or an operator would.
    for (let i = 0; i < 200; i++) {
      const [hit] = await sql<{ ok: boolean }>(
        'postgres',
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE datname = $1 AND query LIKE 'COPY (SELECT%' LIMIT 1`,
        [source],
      );
      if (hit?.ok) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const err = await outcome;
    expect((err as Error)?.message).toMatch(
      new RegExp(`reading table public\\.big back while verifying database ${source}`),
    );
    const [left] = await sql<{ n: string }>(
      'postgres',
      `SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [source],
    );
    expect(left?.n).toBe('0');
  });
});
