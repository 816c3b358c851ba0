import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupMysql } from '../../../src/sources/mysql/backup.js';
import type { CommitBlock } from '../../../src/sources/mysql/consistentDump.js';
import { restoreMysql } from '../../../src/sources/mysql/restore.js';
import { openTestRepo, type TestRepo } from '../postgres/testRepo.js';
import { assertMyUp, MY, MyScratch, myRunnable, sql, uniqueName } from './myTestServer.js';

const ACCOUNTS = 100;
const START_BALANCE = 1000;

/** Transfers between accounts in transactions: the sum of balances is invariant, the transfer log grows. */
function startWriter(database: string, seed: number) {
  let stop = false;
  let commits = 0;
  const done = (async () => {
    const conn = await mysql.createConnection({ ...MY, database });
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
        await conn.query('START TRANSACTION');
        await conn.query('UPDATE accounts SET balance = balance + ? WHERE id = ?', [delta(first), first]);
        await conn.query('UPDATE accounts SET balance = balance + ? WHERE id = ?', [delta(second), second]);
        await conn.query('INSERT INTO transfers (src, dst, amount) VALUES (?, ?, ?)', [a, b, amount]);
        await conn.query('COMMIT');
        commits++;
      }
    } finally {
      await conn.end();
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

describe.skipIf(!myRunnable)('mysql backup under concurrent writes', () => {
  const scratch = new MyScratch();
  let t: TestRepo;

  beforeAll(async () => {
    assertMyUp();
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
      `CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
       INSERT INTO accounts SELECT seq, ${START_BALANCE} FROM seq_1_to_${ACCOUNTS};
       CREATE TABLE transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT, dst INT, amount INT) ENGINE=InnoDB;
       -- Filler, dumped before 'transfers', so that commits keep landing while the dump runs.
       CREATE TABLE filler (id INT PRIMARY KEY, pad TEXT) ENGINE=InnoDB;
       INSERT INTO filler SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_150000;`,
    );
    return db;
  }

  it('gets FLUSH TABLES WITH READ LOCK through a row-lock wait that would otherwise never end', async () => {
    const db = await createBank();
    const holder = await mysql.createConnection({ ...MY, database: db });
    const waiter = await mysql.createConnection({ ...MY, database: db });
    try {
      // The holder locks row 1 and keeps its transaction open; the waiter's UPDATE waits for row 1.
      await holder.query('START TRANSACTION');
      await holder.query('UPDATE accounts SET balance = balance - 1 WHERE id = 1');
      const waiting = waiter.query('UPDATE accounts SET balance = balance + 1 WHERE id = 1');
      await new Promise((r) => setTimeout(r, 200));
      // FTWRL now waits for the waiter's statement, and holds back the holder's next statement:
      // a cycle no lock manager sees. The holder finishes its transaction once it gets through.
      const holderDone = (async () => {
        await new Promise((r) => setTimeout(r, 500));
        await holder.query('UPDATE accounts SET balance = balance + 1 WHERE id = 2');
        await holder.query('COMMIT');
      })();
      const backup = await backupMysql(t.repo, MY, {
        databases: [db],
        usersAndGrants: false,
        checksums: false,
        commitBlock: 'ftwrl',
        lockWaitTimeoutSec: 20,
      });
      await holderDone;
      await waiting;
      expect(backup.warnings.join('\n')).toMatch(/commits could be blocked only at attempt [2-9]/);
      expect(backup.fingerprint.databases[db]?.tables.accounts?.rows).toBe(ACCOUNTS);
    } finally {
      await holder.end();
      await waiter.end();
    }
  });

  for (const commitBlock of ['backup-stage', 'ftwrl'] as CommitBlock[]) {
    it(`dumps exactly the fingerprinted snapshot while writers commit (${commitBlock})`, async () => {
      const db = await createBank();
      const writers = [startWriter(db, 1), startWriter(db, 2)];
      await new Promise((r) => setTimeout(r, 300));
      const count = async () =>
        Number((await sql<{ n: number }>(db, 'SELECT COUNT(*) AS n FROM transfers'))[0]?.n);
      const before = await count();
      const commitsBefore = writers[0]!.commits() + writers[1]!.commits();
      let backup: Awaited<ReturnType<typeof backupMysql>>;
      let after: number;
      let commitsDuring: number;
      try {
        backup = await backupMysql(t.repo, MY, {
          databases: [db],
          usersAndGrants: false,
          checksums: true,
          commitBlock,
        });
        after = await count();
        commitsDuring = writers[0]!.commits() + writers[1]!.commits() - commitsBefore;
      } finally {
        // Also on failure: the writers must end before the database is dropped.
        await Promise.all(writers.map((w) => w.stop()));
      }

      const recorded = backup.fingerprint.databases[db]?.tables.transfers?.rows ?? -1;
      // Writers committed all through the backup (how many depends on the machine's fsync and the backup's speed).
      expect(commitsDuring).toBeGreaterThan(5);
      expect(recorded).toBeGreaterThanOrEqual(before);
      // Commits landed after the snapshot too: the fingerprint is not simply "the final state".
      expect(after - recorded).toBeGreaterThan(5);
      const blockedMs = Number(backup.manifest.dumps[0]?.properties.commitsBlockedMs);
      expect(blockedMs).toBeLessThan(2000);

      const target = scratch.track(uniqueName('lb_bank_copy'));
      const restored = await restoreMysql(
        t.repo,
        { tree: backup.tree },
        {
          into: { ...MY, database: target },
          create: true,
          clean: false,
          globals: false,
          jobs: 1,
          force: false,
          dryRun: false,
        },
      );
      expect(restored.differences).toEqual([]);
      const [sum] = await sql<{ total: string; n: number }>(
        target,
        'SELECT CAST((SELECT SUM(balance) FROM accounts) AS CHAR) AS total, (SELECT COUNT(*) FROM transfers) AS n',
      );
      expect(sum).toEqual({ total: String(ACCOUNTS * START_BALANCE), n: recorded });
    });
  }
});
