/**
 * Drills of mysql jobs on real servers: an ephemeral MariaDB server (install-db template,
 * private socket and 127.0.0.1 with a random root password) and a scratch database on the
 * machine's server at 127.0.0.1:3306. A forged fingerprint and a false SQL assertion must
 * fail the drill. Needs the server (skips without it, fails under LIFEBOAT_TEST_REQUIRE=all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { access } from 'node:fs/promises';
import type { DrillResult } from '../../../src/app/drillModel.js';
import { processesMentioning } from '../../../src/scratch/index.js';
import { assertMyUp, MY, myRunnable, MyScratch, sql } from '../mysql/myTestServer.js';
import { populateSample } from '../mysql/sampleData.js';
import { drillFixture, type DrillFixture } from './drillFixture.js';
import { forgeRowCount } from './forgeFingerprint.js';

const scratch = new MyScratch();
let source: string;
let fx: DrillFixture;
let snapshotId: string;
const timings: string[] = [];

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The scratch directory named in the provision step (ephemeral servers). */
function serverDir(r: DrillResult): string {
  const m = /socket (\/\S+?)\/run\/mysqld\.sock/.exec(
    r.steps.find((s) => s.name === 'provision')?.message ?? '',
  );
  if (!m) throw new Error(`no server directory in ${JSON.stringify(r.steps)}`);
  return m[1]!;
}

function note(label: string, r: DrillResult): void {
  timings.push(
    `${label}: provision ${r.phases.provisionMs} ms, restore ${r.phases.restoreMs} ms, verify ${r.phases.verifyMs} ms, teardown ${r.phases.teardownMs} ms`,
  );
}

describe.runIf(myRunnable)('mysql drills', () => {
  beforeAll(async () => {
    assertMyUp();
    source = await scratch.createDatabase();
    await populateSample(source);
    fx = await drillFixture({
      policies: '  std: { rpo: 1h, rto: 10m, drill: { every: 1d, provisioningCounts: true } }',
      jobs: [
        `  shop:`,
        `    kind: mysql`,
        `    connection: { host: ${MY.host}, port: ${MY.port}, user: ${MY.user} }`,
        `    databases: [${source}]`,
        `    policy: std`,
        `    drill:`,
        `      assertions:`,
        `        - { sql: "select count(*) from accounts", expect: 500 }`,
        `        - { sql: "select count(*) > 2000 from items" }`,
        `        - { command: ["sh", "-c", "test -S \\"$MYSQL_UNIX_PORT\\" && test -n \\"$MYSQL_PWD\\" && test \\"$LIFEBOAT_DRILL_DATABASE\\" = ${source}"] }`,
        `  shop-scratch:`,
        `    kind: mysql`,
        `    connection: { host: ${MY.host}, port: ${MY.port}, user: ${MY.user} }`,
        `    databases: [${source}]`,
        `    policy: std`,
        `    drill:`,
        `      scratch: existing`,
        `      server: env:LB_DRILL_MY_DSN`,
        `      assertions:`,
        `        - { sql: "select owner from accounts where id = 7", expect: "owner 7" }`,
      ].join('\n'),
      env: { LB_DRILL_MY_DSN: `mysql://${MY.user}@${MY.host}:${MY.port}/` },
    });
    snapshotId = (await fx.backup('shop')).snapshotId!;
    await fx.backup('shop-scratch');
  });

  afterAll(async () => {
    await fx?.dispose();
    await scratch.dropAll();
    if (timings.length) console.log(timings.join('\n'));
  });

  it('restores into an ephemeral MariaDB server, verifies, and removes the server', async () => {
    const r = (await fx.drill({ jobs: ['shop'] })).drills[0]!;
    note('ephemeral mariadb', r);
    expect(r.steps.filter((s) => s.status === 'fail')).toEqual([]);
    expect(r).toMatchObject({ verdict: 'pass', scratch: 'ephemeral-mysql', provisioningCounts: true });
    expect(r.measuredRtoMs).toBe(r.phases.provisionMs + r.phases.restoreMs);
    expect(r.steps.find((s) => s.name === 'fingerprint')).toMatchObject({ status: 'pass' });
    const dir = serverDir(r);
    expect(await processesMentioning(dir)).toEqual([]);
    expect(await exists(dir)).toBe(false);
    expect(await fx.stateFiles()).toEqual([]);
  });

  it('restores into a scratch database on the running server and drops it afterwards', async () => {
    const r = (await fx.drill({ jobs: ['shop-scratch'] })).drills[0]!;
    note('scratch mariadb database', r);
    expect(r.steps.filter((s) => s.status === 'fail')).toEqual([]);
    expect(r).toMatchObject({ verdict: 'pass', scratch: 'scratch-mysql' });
    const name = /→ (lifeboat_drill_[0-9a-f]+)/.exec(
      r.steps.find((s) => s.name === 'restore')!.message!,
    )![1]!;
    const left = await sql<{ n: number }>(
      undefined,
      'SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [name],
    );
    expect(Number(left[0]!.n)).toBe(0);
  });

  it('fails on a fingerprint that does not match the restored data', async () => {
    const forged = await forgeRowCount(fx.config, fx.deps, snapshotId, 'mysql', 'accounts');
    const r = (await fx.drill({ jobs: ['shop'], snapshot: forged.id })).drills[0]!;
    expect(r.verdict).toBe('fail');
    const fp = r.steps.find((s) => s.name === 'fingerprint')!;
    expect(fp.status).toBe('fail');
    expect(fp.message).toContain(`table accounts has 500 rows, the backup had ${forged.expectedRows}`);
    expect(await processesMentioning(serverDir(r))).toEqual([]);
  });

  it('fails on a false SQL assertion', async () => {
    const job = fx.config.jobs['shop-scratch']!;
    const saved = job.drill!.assertions;
    job.drill!.assertions = [
      {
        type: 'sql',
        sql: 'select count(*) = 0 from accounts',
        database: undefined,
        expect: true,
        timeout: 30_000,
      },
    ];
    try {
      const r = (await fx.drill({ jobs: ['shop-scratch'] })).drills[0]!;
      expect(r.verdict).toBe('fail');
      expect(r.steps.find((s) => s.name.startsWith('assertion 1'))).toMatchObject({
        status: 'fail',
        expected: 'true',
        actual: '0',
      });
    } finally {
      job.drill!.assertions = saved;
    }
  });
});
