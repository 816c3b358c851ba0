import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupPostgres } from '../../../src/sources/postgres/backup.js';
import { restorePostgres } from '../../../src/sources/postgres/restore.js';
import { assertPgUp, PG, PgScratch, pgRunnable, sql, uniqueName } from './pgTestServer.js';
import { openTestRepo, type TestRepo } from './testRepo.js';

const ACCOUNTS = 100;
const START_BALANCE = 1000;

/** Transfers between accounts in transactions: the sum of balances is invariant, the transfer log grows. */
function startWriter(database: string, seed: number) {
  let stop = false;
  let commits = 0;
  const done = (async () => {
    const client = new pg.Client({ ...PG, database });
    await client.connect();
    let x = seed;
    const rand = (n: number) => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    try {
      while (!stop) {
        const a = 1 + rand(ACCOUNTS);
        const b = 1 + rand(ACCOUNTS);
        const amount = 1 + rand(50);
        if (a === b) continue;
        // Rows locked in id order, so the writers cannot deadlock each other.
        const [first, second] = a < b ? [a, b] : [b, a];
        const delta = (id: number) => (id === a ? -amount : amount);
        await client.query('BEGIN');
        await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta(first), first]);
        await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [
          delta(second),
          second,
        ]);
        await client.query('INSERT INTO transfers (src, dst, amount) VALUES ($1, $2, $3)', [a, b, amount]);
        await client.query('COMMIT');
        commits++;
      }
    } finally {
      await client.end();
    }
  })();
  return {
    commits: () => commits,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

describe.skipIf(!pgRunnable)('postgres backup under concurrent writes', () => {
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

  async function createBank(): Promise<string> {
    const db = await scratch.createDatabase();
    await sql(
      db,
      `CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
       INSERT INTO accounts SELECT g, ${START_BALANCE} FROM generate_series(1, ${ACCOUNTS}) g;
       CREATE TABLE transfers (id bigserial PRIMARY KEY, src int, dst int, amount int);
       -- Filler so that pg_dump runs long enough for many commits to land during the dump.
       CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 150000) g;`,
    );
    return db;
  }

  it('dumps exactly the fingerprinted snapshot while writers commit', async () => {
    const db = await createBank();
    const writers = [startWriter(db, 1), startWriter(db, 2)];
    await new Promise((r) => setTimeout(r, 300));
    const before = Number((await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM transfers'))[0]?.n);
    const backup = await backupPostgres(t.repo, PG, { databases: [db], globals: false, checksums: true });
    const after = Number((await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM transfers'))[0]?.n);
    await Promise.all(writers.map((w) => w.stop()));

    const recorded = backup.fingerprint.databases[db]?.tables['public.transfers']?.rows ?? -1;
    // The snapshot fell inside the stream of commits: some before it, some during the dump.
    expect(recorded).toBeGreaterThanOrEqual(before);
    expect(after - recorded).toBeGreaterThan(5);

    const target = scratch.track(uniqueName('lb_bank_copy'));
    const restored = await restorePostgres(
      t.repo,
      { tree: backup.tree },
      {
        into: { ...PG, database: target },
        create: true,
        clean: false,
        globals: false,
        jobs: 1,
        force: false,
        dryRun: false,
      },
    );
    expect(restored.differences).toEqual([]);
    const [sum] = await sql<{ total: string; n: string }>(
      target,
      'SELECT (SELECT sum(balance) FROM accounts)::text AS total, (SELECT count(*) FROM transfers)::text AS n',
    );
    expect(sum).toEqual({ total: String(ACCOUNTS * START_BALANCE), n: String(recorded) });
  });

  it('starts again from a new snapshot when a queued DDL would deadlock pg_dump', async () => {
    const db = await createBank();
    let ddl: Promise<unknown> | undefined;
    let hookCalls = 0;
    const backup = await backupPostgres(t.repo, PG, {
      databases: [db],
      globals: false,
      checksums: true,
      afterSnapshot: async () => {
        hookCalls++;
        // First attempt only: this ALTER waits for our lock; pg_dump will queue behind it.
        if (hookCalls === 1) {
          ddl = sql(db, `ALTER TABLE accounts ADD COLUMN note text DEFAULT 'n'`);
          await new Promise((r) => setTimeout(r, 300));
        }
      },
    });
    await ddl;
    expect(hookCalls).toBe(2);
    expect(backup.warnings.join('\n')).toMatch(/attempt 2/);
    const target = scratch.track(uniqueName('lb_ddl_copy'));
    const restored = await restorePostgres(
      t.repo,
      { tree: backup.tree },
      {
        into: { ...PG, database: target },
        create: true,
        clean: false,
        globals: false,
        jobs: 1,
        force: false,
        dryRun: false,
      },
    );
    // Whether the second snapshot saw the ALTER or not, dump and fingerprint describe the same state.
    expect(restored.differences).toEqual([]);
    expect(await sql(db, `SELECT count(*)::int AS n FROM accounts WHERE note = 'n'`)).toEqual([
      { n: ACCOUNTS },
    ]);
  });
});
