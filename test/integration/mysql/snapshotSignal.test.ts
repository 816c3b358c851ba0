/**
 * The WHERE clause every dump SELECT runs with (consistentDump.ts
 * signalWhere): always true, and its first evaluation takes the signal lock
 * that the controlling connection waits for. On MariaDB the lock is taken
 * once per session, not once per row: GET_LOCK on a lock the session holds
 * counts up, so the number of RELEASE_LOCK calls that succeed tells how many
 * times it ran.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockNames, signalWhere } from '../../../src/sources/mysql/consistentDump.js';
import { assertMyUp, ident, MY, MyScratch, myRunnable, sql, uniqueName } from './myTestServer.js';

const ROWS = 500;

describe.skipIf(!myRunnable)('the dump snapshot signal (MariaDB)', () => {
  const scratch = new MyScratch();
  let db: string;

  beforeAll(async () => {
    assertMyUp();
    db = await scratch.createDatabase(uniqueName('lb_signal'));
    await sql(
      db,
      `CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20));
       INSERT INTO big SELECT seq, CONCAT('v', seq) FROM seq_1_to_${ROWS};
       CREATE TABLE empty_first (id INT PRIMARY KEY);
       CREATE TABLE small (id INT PRIMARY KEY);
       INSERT INTO small VALUES (1), (2), (3);`,
    );
  });

  afterAll(async () => {
    await scratch.dropAll();
  });

  /** Successful RELEASE_LOCK calls until the lock is gone: how often the session took it. */
  async function timesTaken(conn: mysql.Connection, lock: string): Promise<number> {
    let n = 0;
    for (;;) {
      const [[r]] = (await conn.query('SELECT RELEASE_LOCK(?) AS r', [lock])) as unknown as [
        { r: number | null }[],
      ];
      if (Number(r?.r) !== 1) return n;
      n++;
    }
  }

  it('selects every row and takes the lock once per session, visibly to other sessions', async () => {
    const { signal } = lockNames(db);
    const where = signalWhere(signal, 'mariadb');
    const dump = await mysql.createConnection({ ...MY, database: db });
    const watcher = await mysql.createConnection(MY);
    try {
      const [[dumpId]] = (await dump.query('SELECT CONNECTION_ID() AS id')) as unknown as [{ id: number }[]];
      // A table without rows never evaluates the clause: no signal yet.
      const [none] = (await dump.query(`SELECT * FROM empty_first WHERE ${where}`)) as unknown as [unknown[]];
      expect(none).toHaveLength(0);
      const [[before]] = (await watcher.query('SELECT IS_USED_LOCK(?) AS id', [signal])) as unknown as [
        { id: number | null }[],
      ];
      expect(before?.id).toBeNull();

      const [rows] = (await dump.query(`SELECT * FROM big WHERE ${where}`)) as unknown as [unknown[]];
      expect(rows).toHaveLength(ROWS);
      const [[holder]] = (await watcher.query('SELECT IS_USED_LOCK(?) AS id', [signal])) as unknown as [
        { id: number | null }[],
      ];
      expect(Number(holder?.id)).toBe(Number(dumpId?.id));
      const [more] = (await dump.query(`SELECT * FROM ${ident('small')} WHERE ${where}`)) as unknown as [
        unknown[],
      ];
      expect(more).toHaveLength(3);
      expect(await timesTaken(dump, signal)).toBe(1);
    } finally {
      await dump.end();
      await watcher.end();
    }
  });

  it('counts the times taken (the subquery form takes the lock on every row)', async () => {
    const { signal } = lockNames(`${db}-per-row`);
    const dump = await mysql.createConnection({ ...MY, database: db });
    try {
      const [rows] = (await dump.query(
        `SELECT * FROM big WHERE ${signalWhere(signal, 'mysql')}`,
      )) as unknown as [unknown[]];
      expect(rows).toHaveLength(ROWS);
      expect(await timesTaken(dump, signal)).toBe(ROWS);
    } finally {
      await dump.end();
    }
  });

  it('stays true for every row when another session holds the lock', async () => {
    const { signal } = lockNames(`${db}-held`);
    const other = await mysql.createConnection(MY);
    const dump = await mysql.createConnection({ ...MY, database: db });
    try {
      await other.query('SELECT GET_LOCK(?, 0)', [signal]);
      const [rows] = (await dump.query(
        `SELECT * FROM big WHERE ${signalWhere(signal, 'mariadb')}`,
      )) as unknown as [unknown[]];
      expect(rows).toHaveLength(ROWS);
      const [mysqlForm] = (await dump.query(
        `SELECT * FROM big WHERE ${signalWhere(signal, 'mysql')}`,
      )) as unknown as [unknown[]];
      expect(mysqlForm).toHaveLength(ROWS);
    } finally {
      await other.end();
      await dump.end();
    }
  });
});
