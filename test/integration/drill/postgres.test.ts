/**
 * Drills of postgres jobs on real servers: an ephemeral server (initdb, private socket,
 * running as the postgres account when root) and a scratch database on the machine's
 * server at 127.0.0.1:5432. A forged fingerprint and a false SQL assertion must fail the
 * drill. Needs the server (skips without it, fails under LIFEBOAT_TEST_REQUIRE=all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { access } from 'node:fs/promises';
import { cleanupDrillLeftovers } from '../../../src/app/drillCleanup.js';
import type { DrillResult } from '../../../src/app/drillModel.js';
import { drillServerOf } from '../../../src/app/drillScratch.js';
import { processesMentioning, ScratchPostgresDatabase } from '../../../src/scratch/index.js';
import { assertPgUp, pgRunnable, PgScratch, PG, sql } from '../postgres/pgTestServer.js';
import { populateSample } from '../postgres/sampleData.js';
import { drillFixture, type DrillFixture } from './drillFixture.js';
import { forgeRowCount } from './forgeFingerprint.js';

const scratch = new PgScratch();
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
  const m = /socket (\/\S+?)\/run /.exec(r.steps.find((s) => s.name === 'provision')?.message ?? '');
  if (!m) throw new Error(`no server directory in ${JSON.stringify(r.steps)}`);
  return m[1]!;
}

function note(label: string, r: DrillResult): void {
  timings.push(
    `${label}: provision ${r.phases.provisionMs} ms, restore ${r.phases.restoreMs} ms, verify ${r.phases.verifyMs} ms, teardown ${r.phases.teardownMs} ms`,
  );
}

describe.runIf(pgRunnable)('postgres drills', () => {
  beforeAll(async () => {
    assertPgUp();
    source = await scratch.createDatabase();
    await populateSample(source);
    fx = await drillFixture({
      policies: '  std: { rpo: 1h, rto: 10m, drill: { every: 1d } }',
      jobs: [
        `  shop:`,
        `    kind: postgres`,
        `    connection: { host: ${PG.host}, port: ${PG.port}, user: ${PG.user} }`,
        `    databases: [${source}]`,
        `    policy: std`,
        `    drill:`,
        `      assertions:`,
        `        - { sql: "select count(*) from accounts", expect: 500 }`,
        `        - { sql: "select count(*) > 0 from other.items" }`,
        `        - { command: ["sh", "-c", "test \\"$PGDATABASE\\" = ${source} && test -S \\"$PGHOST/.s.PGSQL.$PGPORT\\""] }`,
        `  shop-scratch:`,
        `    kind: postgres`,
        `    connection: { host: ${PG.host}, port: ${PG.port}, user: ${PG.user} }`,
        `    databases: [${source}]`,
        `    policy: std`,
        `    drill:`,
        `      scratch: existing`,
        `      server: env:LB_DRILL_PG_DSN`,
        `      assertions:`,
        `        - { sql: "select owner from accounts where id = 7", expect: "owner 7" }`,
        `        - { sql: "select count(*) from nopk", expect: 4 }`,
      ].join('\n'),
      env: { LB_DRILL_PG_DSN: `postgres://${PG.user}@${PG.host}:${PG.port}/postgres` },
    });
    snapshotId = (await fx.backup('shop')).snapshotId!;
    await fx.backup('shop-scratch');
  });

  afterAll(async () => {
    await fx?.dispose();
    await scratch.dropAll();
    if (timings.length) console.log(timings.join('\n'));
  });

  it('restores into an ephemeral server, verifies the fingerprint and assertions, and removes the server', async () => {
    const run = await fx.drill({ jobs: ['shop'] });
    const r = run.drills[0]!;
    note('ephemeral postgres', r);
    expect(r.steps.filter((s) => s.status === 'fail')).toEqual([]);
    expect(r).toMatchObject({ verdict: 'pass', scratch: 'ephemeral-postgres' });
    expect(r.steps.find((s) => s.name === 'fingerprint')).toMatchObject({ status: 'pass' });
    expect(r.steps.filter((s) => s.name.startsWith('assertion')).map((s) => s.status)).toEqual([
      'pass',
      'pass',
      'pass',
    ]);
    const dir = serverDir(r);
    expect(await processesMentioning(dir)).toEqual([]);
    expect(await exists(dir)).toBe(false);
    expect(await fx.stateFiles()).toEqual([]);
  });

  it('restores into a scratch database on the running server and drops it afterwards', async () => {
    const run = await fx.drill({ jobs: ['shop-scratch'] });
    const r = run.drills[0]!;
    note('scratch postgres database', r);
    expect(r.steps.filter((s) => s.status === 'fail')).toEqual([]);
    expect(r).toMatchObject({ verdict: 'pass', scratch: 'scratch-postgres' });
    const name = /→ (lifeboat_drill_[0-9a-f]+)/.exec(
      r.steps.find((s) => s.name === 'restore')!.message!,
    )![1]!;
    const left = await sql<{ n: string }>(
      'postgres',
      'SELECT count(*)::text AS n FROM pg_database WHERE datname = $1',
      [name],
    );
    expect(left[0]!.n).toBe('0');
    expect(await fx.stateFiles()).toEqual([]);
  });

  it('fails on a fingerprint that does not match the restored data, listing the difference', async () => {
    const forged = await forgeRowCount(fx.config, fx.deps, snapshotId, 'postgres', 'public.accounts');
    const run = await fx.drill({ jobs: ['shop'], snapshot: forged.id });
    const r = run.drills[0]!;
    expect(run.exitCode).toBe(4);
    expect(r.verdict).toBe('fail');
    const fp = r.steps.find((s) => s.name === 'fingerprint')!;
    expect(fp.status).toBe('fail');
    expect(fp.message).toContain(`table public.accounts has 500 rows, the backup had ${forged.expectedRows}`);
    const rec = (await fx.journal()).find((j) => j.id === r.runId)!;
    expect(rec.details).toMatchObject({ verdict: 'fail' });
    expect(await processesMentioning(serverDir(r))).toEqual([]);
  });

  it('fails on a false SQL assertion with the value it got', async () => {
    const job = fx.config.jobs.shop!;
    const saved = job.drill!.assertions;
    job.drill!.assertions = [
      {
        type: 'sql',
        sql: 'select count(*) from accounts',
        database: undefined,
        expect: 501,
        timeout: 30_000,
      },
    ];
    try {
      const r = (await fx.drill({ jobs: ['shop'] })).drills[0]!;
      expect(r.verdict).toBe('fail');
      const a = r.steps.find((s) => s.name.startsWith('assertion 1'))!;
      expect(a).toMatchObject({ status: 'fail', expected: '501', actual: '"500"' });
      expect(a.message).toBe(`expected 501, got "500" in ${source}`);
    } finally {
      job.drill!.assertions = saved;
    }
  });

  it('drops a scratch database a crashed drill left, reaching the server through the job configuration', async () => {
    const server = await drillServerOf(fx.config.jobs['shop-scratch']!, fx.deps);
    const env = await ScratchPostgresDatabase.create(server!.postgres!, {
      stateDir: fx.stateDir,
      job: 'shop-scratch',
      now: new Date().toISOString(),
      describe: 'test server',
    });
    const name = await env.databaseFor(source);
    await sql('postgres', `CREATE DATABASE ${name}`);
    // As if the drill had died here: only the state file knows about the database.
    const cleaned = await cleanupDrillLeftovers(fx.config, { force: true }, fx.deps);
    expect(cleaned.removed).toEqual([
      expect.objectContaining({ kind: 'scratch-postgres', job: 'shop-scratch', problems: [] }),
    ]);
    const left = await sql<{ n: string }>(
      'postgres',
      'SELECT count(*)::text AS n FROM pg_database WHERE datname = $1',
      [name],
    );
    expect(left[0]!.n).toBe('0');
    expect(await fx.stateFiles()).toEqual([]);
    await env.dispose();
  });
});
