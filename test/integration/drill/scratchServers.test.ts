/**
 * The ephemeral servers on their own: they start from the template, answer, are private
 * (PostgreSQL: socket only, run as the postgres account when root; MariaDB: root needs the
 * random password over TCP) and are gone after dispose. Provision and teardown times are
 * printed (they are measurements, not assertions: the machine is shared).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { monotonicMs } from '../../../src/platform/clock.js';
import {
  EphemeralMariadb,
  EphemeralPostgres,
  findMariadbPrograms,
  listScratchRecords,
  postgresServerBinDirs,
  processesMentioning,
} from '../../../src/scratch/index.js';
import { requireAll } from '../../helpers/loop.js';

const dir = await mkdtemp(join(tmpdir(), 'lb-scratch-servers-'));
const stateDir = join(dir, 'state');
const base = {
  stateDir,
  root: join(dir, 'scratch'),
  neededBytes: 1024,
  job: 'db',
  now: '2026-01-01T00:00:00Z',
};
const havePg = (await postgresServerBinDirs()).length > 0;
const haveMaria = (await findMariadbPrograms()) !== undefined;
const timings: string[] = [];

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  console.log(timings.join('\n'));
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function uidOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
}

describe.runIf(havePg || requireAll)('ephemeral PostgreSQL', () => {
  it('starts, answers on its private socket only, and is gone after dispose', async () => {
    for (let round = 0; round < 2; round++) {
      const t0 = monotonicMs();
      const pg = await EphemeralPostgres.create(base);
      const provisioned = monotonicMs() - t0;
      try {
        expect(await pg.queryValue('postgres', "select current_setting('listen_addresses')", 5000)).toBe('');
        expect(await pg.queryValue('postgres', "select current_setting('fsync')", 5000)).toBe('off');
        expect(pg.clientEnv('x')).toEqual({
          PGHOST: pg.socketDir,
          PGPORT: String(pg.port),
          PGUSER: 'lifeboat_drill',
          PGDATABASE: 'x',
        });
        const [postmaster] = await processesMentioning(pg.dataDir);
        if (process.getuid?.() === 0) expect(await uidOf(postmaster!)).not.toBe(0);
      } finally {
        const t1 = monotonicMs();
        await pg.dispose();
        timings.push(
          `ephemeral postgres (${pg.templateBuilt ? 'template built' : 'from template'}): provision ${provisioned} ms, teardown ${monotonicMs() - t1} ms`,
        );
      }
      expect(pg.disposeProblems).toEqual([]);
      expect(await processesMentioning(pg.dataDir)).toEqual([]);
      expect(await exists(pg.dir)).toBe(false);
    }
    expect(await listScratchRecords(stateDir)).toEqual([]);
  });
});

describe.runIf(haveMaria || requireAll)('ephemeral MariaDB', () => {
  it('starts, lets only the random root password in, and is gone after dispose', async () => {
    for (let round = 0; round < 2; round++) {
      const t0 = monotonicMs();
      const my = await EphemeralMariadb.create(base);
      const provisioned = monotonicMs() - t0;
      try {
        expect(Number(await my.queryValue('mysql', 'SELECT 40 + 2', 5000))).toBe(42);
        await expect(
          mysql.createConnection({ host: '127.0.0.1', port: my.port, user: 'root', connectTimeout: 3000 }),
        ).rejects.toMatchObject({ code: 'ER_ACCESS_DENIED_ERROR' });
        const env = my.clientEnv('shop');
        expect(env).toMatchObject({
          MYSQL_HOST: '127.0.0.1',
          MYSQL_TCP_PORT: String(my.port),
          MYSQL_UNIX_PORT: my.socket,
        });
        const conn = await mysql.createConnection({
          host: '127.0.0.1',
          port: my.port,
          user: 'root',
          password: env.MYSQL_PWD,
        });
        await conn.end();
      } finally {
        const t1 = monotonicMs();
        await my.dispose();
        timings.push(
          `ephemeral mariadb (${my.templateBuilt ? 'template built' : 'from template'}): provision ${provisioned} ms, teardown ${monotonicMs() - t1} ms`,
        );
      }
      expect(my.disposeProblems).toEqual([]);
      expect(await processesMentioning(my.dataDir)).toEqual([]);
      expect(await exists(my.dir)).toBe(false);
    }
  });
});
