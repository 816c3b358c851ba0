import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configHead, ensureBuilt, makeSandbox, type Sandbox } from './runHarness.js';

interface StatusDoc {
  ok: boolean;
  breached: string[];
  exitCode: number;
  jobs: Array<{
    job: string;
    state: string;
    repositories: Array<{
      repository: string;
      state: string;
      reason: string;
      ageMs?: number;
      newestSnapshotId?: string;
    }>;
    nextRunAt?: string;
    drill: { state: string; reason: string; measuredMs?: number; rtoMs?: number; lastRunId?: string };
    copies?: { state: string; have: number; required: number; haveOffsite: number; requiredOffsite: number };
  }>;
  repositories: Array<{ repository: string; ok: boolean; error?: { code: string; message: string } }>;
}

const OFFSITE_PW = 'offsite e2e password';
const T0 = '2024-06-01T10:00:00Z';
const MIN = 60_000;

let sb: Sandbox;

function config(dir: string, dbRepositories: string, dbPolicy = 'strict'): string {
  return [
    configHead(
      dir,
      [
        '  offsite:',
        `    url: file://${join(dir, 'offsite')}`,
        '    password: env:LB_OFF_PW',
        '    offsite: true',
      ].join('\n'),
    ),
    'policies:',
    '  plain: { rpo: 1h }',
    '  strict: { rpo: 1h, rto: 30m, copies: 2, offsite: 1, drill: { every: 7d } }',
    'jobs:',
    '  web:',
    '    kind: files',
    `    paths: [${join(dir, 'src/web')}]`,
    '    schedule: "0 * * * *"',
    '    policy: plain',
    '    repositories: [local]',
    '  db:',
    '    kind: files',
    `    paths: [${join(dir, 'src/db')}]`,
    '    schedule: "0 * * * *"',
    `    policy: ${dbPolicy}`,
    `    repositories: [${dbRepositories}]`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  await ensureBuilt();
  sb = await makeSandbox('status', (dir) => config(dir, 'local, offsite'), ['src/web', 'src/db'], {
    LB_OFF_PW: OFFSITE_PW,
  });
  expect((await sb.run(T0, 'repo', 'init', 'local')).code).toBe(0);
  expect((await sb.run(T0, 'repo', 'init', 'offsite')).code).toBe(0);
  // Backups only (not `run`, which would also copy offsite and drill): the offsite copy lags, no drill yet.
  expect((await sb.run(T0, 'backup', 'web', 'db')).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await sb.cleanup();
});

const status = async (now: string, ...args: string[]) => {
  const r = await sb.run(now, '--json', 'status', ...args);
  return { code: r.code, doc: JSON.parse(r.stdout) as StatusDoc, stderr: r.stderr };
};

describe('lifeboat status', () => {
  it.each([
    ['2024-06-01T10:10:00Z', 'ok', 0],
    ['2024-06-01T10:48:00Z', 'at-risk', 0],
    ['2024-06-01T11:00:00Z', 'breached', 4],
  ])('at %s the hourly job with an RPO of 1h is %s (exit %i)', async (now, state, code) => {
    const r = await status(now, 'web');
    expect(r.code).toBe(code);
    const web = r.doc.jobs[0]!;
    expect(web).toMatchObject({ job: 'web', state, drill: { state: 'not-required' } });
    expect(web.repositories).toEqual([
      expect.objectContaining({ repository: 'local', state, ageMs: Date.parse(now) - Date.parse(T0) }),
    ]);
    expect(r.doc.ok).toBe(code === 0);
  });

  it('a lagging offsite copy and a missing drill count, never shown as OK', async () => {
    const r = await status('2024-06-01T10:10:00Z');
    expect(r.code).toBe(4);
    const db = r.doc.jobs.find((j) => j.job === 'db')!;
    expect(db.state).toBe('breached');
    expect(db.repositories.map((x) => [x.repository, x.state])).toEqual([
      ['local', 'ok'],
      ['offsite', 'breached'],
    ]);
    expect(db.repositories[1]!.reason).toBe('no restore point (RPO 1h)');
    expect(db.copies).toMatchObject({
      state: 'breached',
      have: 1,
      required: 2,
      haveOffsite: 0,
      requiredOffsite: 1,
    });
    expect(db.drill.state).toBe('no-drill');
    expect(db.nextRunAt).toBe('2024-06-01T11:00:00.000Z');
    expect(r.doc.breached).toEqual(['db']);

    const human = await sb.run('2024-06-01T10:10:00Z', 'status');
    expect(human.code).toBe(4);
    expect(human.stdout).toMatch(/^web\s+OK\s+local 10m OK \/ 1h\s+11:00 UTC\s+-\s+1\/1$/m);
    expect(human.stdout).toMatch(
      /^db\s+BREACHED\s+local 10m OK, offsite\* none BREACHED \/ 1h\s+11:00 UTC\s+NO DRILL \(no drill yet\)\s+1\/2 \(0\/1 offsite\)$/m,
    );
    expect(human.stdout).toContain(
      'db: offsite: no restore point (RPO 1h); drill: no drill in the last 30d; copies: 1 of 2 copies within the RPO, 0 of 1 offsite',
    );
  });

  it('judges the measured restore time of drills against the RTO', async () => {
    // A restore point in the offsite repository too (backed up there directly; a one-repository
    // policy, since copies: 2 needs two repositories).
    const offsiteFirst = join(sb.dir, 'offsite-first.yaml');
    await writeFile(offsiteFirst, config(sb.dir, 'offsite', 'plain'), { mode: 0o600 });
    const b = await sb.run('2024-06-01T10:20:00Z', '--config', offsiteFirst, 'backup', 'db');
    expect(b.code).toBe(0);

    const drill = await sb.append('repo', {
      kind: 'drill',
      job: 'db',
      startedAt: '2024-06-01T10:25:00.000Z',
      endedAt: '2024-06-01T10:40:00.000Z',
      outcome: 'success',
      details: { measuredRtoMs: 10 * MIN },
    });
    const ok = await status('2024-06-01T10:41:00Z', 'db');
    expect(ok.code).toBe(0);
    expect(ok.doc.jobs[0]).toMatchObject({
      state: 'ok',
      drill: { state: 'ok', measuredMs: 10 * MIN, rtoMs: 30 * MIN, lastRunId: drill.id },
      copies: { state: 'ok', have: 2, haveOffsite: 1 },
    });

    await sb.append('repo', {
      kind: 'drill',
      job: 'db',
      startedAt: '2024-06-01T10:42:00.000Z',
      endedAt: '2024-06-01T10:43:00.000Z',
      outcome: 'failure',
      error: { code: 'E_POLICY_BREACH', message: 'assertion failed' },
    });
    const failed = await status('2024-06-01T10:44:00Z', 'db');
    expect(failed.code).toBe(4);
    expect(failed.doc.jobs[0]!.drill).toMatchObject({
      state: 'breached',
      reason: 'last drill failed 1m ago',
    });
  });

  it('a repository that cannot be opened is UNKNOWN, with its exit code', async () => {
    const r = await sb.runWith(
      { LB_OFF_PW: 'not the password' },
      '2024-06-01T10:45:00Z',
      '--json',
      'status',
      'db',
    );
    const d = JSON.parse(r.stdout) as StatusDoc;
    expect(r.code).toBe(12);
    expect(d.repositories.find((x) => x.repository === 'offsite')).toMatchObject({
      ok: false,
      error: { code: 'E_ACCESS_DENIED' },
    });
    const db = d.jobs[0]!;
    expect(db.repositories.find((x) => x.repository === 'offsite')!.state).toBe('unknown');
    // One copy is known; whether the offsite one exists cannot be told.
    expect(db.copies!.state).toBe('unknown');
    expect(db.state).not.toBe('ok');

    const human = await sb.runWith({ LB_OFF_PW: 'not the password' }, '2024-06-01T10:45:00Z', 'status', 'db');
    expect(human.stdout).toMatch(/offsite\* \? UNKNOWN/);
    expect(human.stdout).toMatch(/repository offsite cannot be opened: /);
  });
});
