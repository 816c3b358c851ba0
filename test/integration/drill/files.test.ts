/**
 * Drills of files jobs against the real repository engine: a passing drill and its
 * journal record, failures that must be reported as failed (a tampered pack, a false
 * assertion, an RTO of 1 ms), random selection with coverage, --due, and
 * --keep-on-failure with `drill cleanup`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupDrillLeftovers } from '../../../src/app/drillCleanup.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { drillFixture, entries, type DrillFixture } from './drillFixture.js';

let fx: DrillFixture | undefined;
afterEach(async () => {
  await fx?.dispose();
  fx = undefined;
});

async function siteTree(root: string): Promise<string> {
  const site = join(root, 'site');
  await mkdir(join(site, 'assets'), { recursive: true });
  await writeFile(join(site, 'index.html'), '<h1>shop</h1>\n');
  await writeFile(join(site, 'assets', 'app.js'), 'console.log("hi");\n'.repeat(500));
  await writeFile(join(site, 'data.bin'), Buffer.alloc(600 * 1024, 9));
  return site;
}

const POLICY = '  std: { rpo: 1h, rto: 30m, drill: { every: 7d, window: 30d } }';

/** A fixture whose files job backs up a small web-site tree made in the fixture's directory. */
function withSite(assertions = '', clock?: FakeClock): Promise<DrillFixture> {
  return drillFixture({
    policies: POLICY,
    jobs: async (dir) =>
      `  site: { kind: files, paths: [${JSON.stringify(await siteTree(dir))}], policy: std` +
      (assertions ? `, drill: { assertions: ${assertions} }` : '') +
      ' }',
    ...(clock ? { clock } : {}),
  });
}

describe('files drills', () => {
  it('passes, records the journal record of the agreed shape, and leaves nothing behind', async () => {
    fx = await withSite(`[{ command: ["test", "-f", "index.html"] }]`);
    const backup = await fx.backup('site');
    const run = await fx.drill({ jobs: ['site'] });
    expect(run.exitCode).toBe(0);
    const [r] = run.drills;
    expect(r).toMatchObject({
      job: 'site',
      verdict: 'pass',
      outcome: 'success',
      scratch: 'directory',
      selection: 'latest',
    });
    expect(r!.snapshotId).toBe(backup.snapshotId);
    expect(r!.steps.map((s) => [s.name, s.status])).toEqual([
      ['select snapshot', 'pass'],
      ['provision', 'pass'],
      ['restore', 'pass'],
      ['content', 'pass'],
      ['assertion 1: command test -f index.html', 'pass'],
      ['teardown', 'pass'],
      ['rto', 'pass'],
    ]);
    expect(r!.measuredRtoMs).toBe(r!.phases.restoreMs);
    expect(r!.rtoMs).toBe(30 * 60_000);
    expect(r!.coverage).toMatchObject({ points: 1, drilled: 1, share: 1 });

    const records = (await fx.journal()).filter((j) => j.kind === 'drill');
    expect(records).toHaveLength(1);
    const rec = records[0]!;
    expect(rec).toMatchObject({
      id: r!.runId,
      job: 'site',
      outcome: 'success',
      snapshotIds: [backup.snapshotId],
    });
    expect(Object.keys(rec.details!).sort()).toEqual(
      [
        'measuredRtoMs',
        'phases',
        'repository',
        'rtoMs',
        'scratch',
        'selection',
        'snapshotTime',
        'steps',
        'verdict',
      ].sort(),
    );
    expect(rec.details).toMatchObject({
      verdict: 'pass',
      repository: 'main',
      selection: 'latest',
      scratch: 'directory',
      rtoMs: 1_800_000,
      measuredRtoMs: r!.measuredRtoMs,
    });
    const phases = rec.details!.phases as Record<string, number>;
    expect(Object.keys(phases).sort()).toEqual(['provisionMs', 'restoreMs', 'teardownMs', 'verifyMs']);
    for (const s of rec.details!.steps as Array<Record<string, unknown>>) {
      expect(Object.keys(s).every((k) => ['name', 'status', 'message', 'durationMs'].includes(k))).toBe(true);
    }
    expect(await entries(fx.scratchRoot)).toEqual([]);
    expect(await fx.stateFiles()).toEqual([]);
  });

  it('fails, and says so, when a pack file of the repository was tampered with', async () => {
    fx = await withSite();
    await fx.backup('site');
    const packs: string[] = [];
    for (const d of await readdir(join(fx.repoDir, 'data'))) {
      for (const p of await readdir(join(fx.repoDir, 'data', d))) packs.push(join(fx.repoDir, 'data', d, p));
    }
    expect(packs.length).toBeGreaterThan(0);
    for (const pack of packs) {
      const size = (await stat(pack)).size;
      const fh = await open(pack, 'r+');
      const at = Math.floor(size / 3);
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, at);
      b[0] = b[0]! ^ 0xff;
      await fh.write(b, 0, 1, at);
      await fh.close();
    }
    const run = await fx.drill({ jobs: ['site'] });
    expect(run.exitCode).toBe(4);
    const r = run.drills[0]!;
    expect(r.verdict).toBe('fail');
    expect(r.outcome).toBe('failure');
    const failed = r.steps.find((s) => s.status === 'fail')!;
    expect(failed.name).toBe('restore');
    expect(r.error?.code).toBe('E_INTEGRITY');
    const rec = (await fx.journal()).find((j) => j.kind === 'drill')!;
    expect(rec.outcome).toBe('failure');
    expect(rec.details!.verdict).toBe('fail');
    expect(await entries(fx.scratchRoot)).toEqual([]);
  });

  it('fails on a false user assertion and keeps the environment with --keep-on-failure until cleanup', async () => {
    fx = await withSite(
      `[{ command: ["test", "-f", "index.html"] }, { command: ["sh", "-c", "echo nope >&2; exit 3"] }]`,
    );
    await fx.backup('site');
    const run = await fx.drill({ jobs: ['site'], keepOnFailure: true });
    const r = run.drills[0]!;
    expect(r.verdict).toBe('fail');
    const a2 = r.steps.find((s) => s.name.startsWith('assertion 2'))!;
    expect(a2.status).toBe('fail');
    expect(a2.message).toContain('exited 3');
    expect(a2.message).toContain('nope');
    expect(r.kept).toBeDefined();
    expect(await entries(fx.scratchRoot)).toHaveLength(1);
    expect(await fx.stateFiles()).toHaveLength(1);

    const cleaned = await cleanupDrillLeftovers(fx.config, {}, fx.deps);
    expect(cleaned.ok).toBe(true);
    expect(cleaned.removed).toHaveLength(1);
    expect(cleaned.removed[0]).toMatchObject({ job: 'site', kept: true, problems: [] });
    expect(await entries(fx.scratchRoot)).toEqual([]);
    expect(await fx.stateFiles()).toEqual([]);
  });

  it('breaches an RTO of 1 ms and reports measured against expected', async () => {
    fx = await withSite();
    await fx.backup('site');
    fx.config.policies.std!.rto = 1;
    const run = await fx.drill({ jobs: ['site'] });
    expect(run.exitCode).toBe(4);
    const r = run.drills[0]!;
    expect(r.verdict).toBe('breach');
    expect(r.error?.code).toBe('E_POLICY_BREACH');
    const rto = r.steps.find((s) => s.name === 'rto')!;
    expect(rto).toMatchObject({ status: 'fail', expected: '<= 1 ms' });
    expect(rto.message).toContain('the RTO is 1 ms');
    const rec = (await fx.journal()).find((j) => j.kind === 'drill')!;
    expect(rec.details).toMatchObject({ verdict: 'breach', rtoMs: 1 });
    expect(rec.outcome).toBe('failure');
  });

  it('picks random restore points of the window, never-drilled ones first, and reports coverage', async () => {
    const clock = new FakeClock(Date.parse('2026-01-10T00:00:00Z'));
    fx = await withSite('', clock);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await fx.backup('site')).snapshotId!);
      clock.advance(86_400_000);
    }
    const first = (await fx.drill({ jobs: ['site'], snapshot: 'random', random: () => 0 })).drills[0]!;
    expect(first.selection).toBe('random');
    expect(first.snapshotId).toBe(ids[0]);
    expect(first.coverage).toMatchObject({ points: 3, drilled: 1 });
    const second = (await fx.drill({ jobs: ['site'], snapshot: 'random', random: () => 0 })).drills[0]!;
    expect(second.snapshotId).toBe(ids[1]);
    expect(second.coverage).toMatchObject({ points: 3, drilled: 2 });
    const third = (await fx.drill({ jobs: ['site'], snapshot: 'random', random: () => 0.99 })).drills[0]!;
    expect(third.snapshotId).toBe(ids[2]);
    expect(third.coverage).toMatchObject({ points: 3, drilled: 3, share: 1 });
    // A snapshot ID (prefix) is drilled as asked.
    const byId = (await fx.drill({ jobs: ['site'], snapshot: ids[0]!.slice(0, 10) })).drills[0]!;
    expect(byId).toMatchObject({ selection: 'id', snapshotId: ids[0], verdict: 'pass' });
  });

  it('--due drills only when the policy cadence has elapsed since the last drill', async () => {
    const clock = new FakeClock(Date.parse('2026-02-01T00:00:00Z'));
    fx = await withSite('', clock);
    await fx.backup('site');
    const first = await fx.drill({ jobs: [], due: true });
    expect(first.drills.map((d) => d.job)).toEqual(['site']);
    clock.advance(3_600_000);
    const second = await fx.drill({ jobs: [], due: true });
    expect(second.drills).toEqual([]);
    expect(second.notDue[0]).toMatchObject({ job: 'site' });
    expect(second.notDue[0]!.reason).toMatch(/^not due/);
    clock.advance(7 * 86_400_000);
    const third = await fx.drill({ jobs: ['site'], due: true });
    expect(third.drills).toHaveLength(1);
  });

  it('fails with the timeout when the drill takes longer than jobs.<name>.drill.timeout', async () => {
    fx = await withSite(`[{ command: ["true"] }]`);
    await fx.backup('site');
    fx.config.jobs.site!.drill!.timeout = 1;
    const r = (await fx.drill({ jobs: ['site'] })).drills[0]!;
    expect(r.verdict).toBe('fail');
    expect(r.error?.code).toBe('E_DRILL_TIMEOUT');
    expect(r.steps.find((s) => s.status === 'fail')!.message).toContain('did not finish within 1 ms');
    expect(await entries(fx.scratchRoot)).toEqual([]);
  });

  it('fails (not skips) when there is no snapshot, recording the failure', async () => {
    fx = await withSite();
    const run = await fx.drill({ jobs: ['site'] });
    expect(run.exitCode).toBe(4);
    expect(run.drills[0]!.steps[0]).toMatchObject({ name: 'select snapshot', status: 'fail' });
    const rec = (await fx.journal()).find((j) => j.kind === 'drill')!;
    expect(rec.outcome).toBe('failure');
  });
});
