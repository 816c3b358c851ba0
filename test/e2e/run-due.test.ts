import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMetadataObject } from '../../src/repository/metadataObject.js';
import { associatedData } from '../../src/repository/crypto.js';
import { compactTime, journalKey } from '../../src/repository/layout.js';
import { startRecorder, deadUrl, type HttpRecorder } from '../integration/notify/httpRecorder.js';
import { configHead, ensureBuilt, makeSandbox, type Sandbox } from './runHarness.js';

const SECRET = 'hooktoken-5d41402abc4b2a76';

interface RunDoc {
  ok: boolean;
  locked?: unknown;
  plan: Array<{
    id: string;
    kind: string;
    job?: string;
    due: boolean;
    selected: boolean;
    available: boolean;
    reason: string;
  }>;
  activities: Array<{
    id: string;
    kind: string;
    job?: string;
    outcome: string;
    snapshotIds: string[];
    runIds: string[];
  }>;
  notes: string[];
  recovered: Array<{ activity: string; repository: string; startedAt: string; runId?: string }>;
  warnings: string[];
  exitCode: number;
}

const doc = (stdout: string): RunDoc => JSON.parse(stdout) as RunDoc;
const backupsRun = (d: RunDoc) =>
  d.activities
    .filter((a) => a.kind === 'backup')
    .map((a) => `${a.job}:${a.outcome}`)
    .sort();

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

beforeAll(ensureBuilt, 120_000);

describe('run --due at controlled times', () => {
  let sb: Sandbox;
  let hooks: HttpRecorder;

  beforeAll(async () => {
    hooks = await startRecorder();
    sb = await makeSandbox(
      'due',
      (dir) =>
        [
          configHead(dir),
          'policies:',
          '  hourly: { rpo: 1h }',
          '  daily: { rpo: 2d }',
          'jobs:',
          '  web:',
          '    kind: files',
          `    paths: [${join(dir, 'src/web')}]`,
          '    schedule: "0 * * * *"',
          '    policy: hourly',
          '  docs:',
          '    kind: files',
          `    paths: [${join(dir, 'src/docs')}]`,
          '    schedule: { cron: "30 2 * * *", timezone: Europe/Berlin }',
          '    policy: daily',
          '    notifications: { healthchecks: { url: env:HC_DOCS_URL } }',
          'notifications:',
          '  webhooks: [{ url: env:HOOK_URL, events: [success, failure, breach] }]',
          '  healthchecks: { url: env:HC_URL }',
          `  prometheus: { textfileDir: ${join(dir, 'textfile')} }`,
          '',
        ].join('\n'),
      ['src/web', 'src/docs', 'textfile'],
      {
        HOOK_URL: `${hooks.url}/hook/${SECRET}`,
        HC_URL: `${hooks.url}/ping/${SECRET}`,
        HC_DOCS_URL: `${hooks.url}/docs-ping/${SECRET}`,
      },
    );
    expect((await sb.run('2024-10-26T10:00:00Z', 'repo', 'init')).code).toBe(0);
  });

  afterAll(async () => {
    await hooks.close();
    await sb.cleanup();
  });

  it('dry-run explains the plan and changes nothing', async () => {
    const r = await sb.run('2024-10-26T10:05:00Z', '--json', 'run', '--due', '--dry-run');
    expect(r.code).toBe(0);
    const d = doc(r.stdout);
    expect(d.plan.map((p) => [p.id, p.due, p.selected])).toEqual([
      ['backup:web', true, true],
      ['backup:docs', true, true],
    ]);
    expect(d.plan[0]!.reason).toMatch(/^due: no good backup since .*, schedule hourly \(0 \* \* \* \*\)$/);
    expect(d.activities).toEqual([]);
    expect(await sb.snapshots('repo')).toEqual([]);
    expect(hooks.requests).toEqual([]);
  });

  it('runs exactly the due backups at each invocation, catching up a missed window once', async () => {
    const steps: Array<[string, string[]]> = [
      ['2024-10-26T10:05:00Z', ['docs:success', 'web:success']],
      ['2024-10-26T10:10:00Z', []],
      ['2024-10-26T10:55:00Z', []],
      ['2024-10-26T11:01:00Z', ['web:success']],
      // The machine was off for three days (including the fall-back night in Berlin).
      ['2024-10-29T09:07:00Z', ['docs:success', 'web:success']],
      ['2024-10-29T09:12:00Z', []],
    ];
    for (const [now, expected] of steps) {
      const r = await sb.run(now, '--json', 'run', '--due');
      expect({ now, code: r.code, stderr: r.stderr }).toEqual({ now, code: 0, stderr: '' });
      const d = doc(r.stdout);
      expect({ now, backups: backupsRun(d) }).toEqual({ now, backups: expected });
      if (now === '2024-10-29T09:07:00Z') {
        const docsItem = d.plan.find((p) => p.id === 'backup:docs')!;
        expect(docsItem.reason).toMatch(/3 scheduled runs missed since the last attempt, caught up once/);
        const webItem = d.plan.find((p) => p.id === 'backup:web')!;
        expect(webItem.reason).toMatch(/70 scheduled runs missed since the last attempt, caught up once/);
      }
    }

    // The snapshots and the journal show exactly these runs, at the pinned times.
    const list = await sb.run('2024-10-29T09:13:00Z', '--json', 'snapshots');
    const snaps = (
      JSON.parse(list.stdout) as {
        repositories: Array<{ snapshots: Array<{ job: string; startedAt: string }> }>;
      }
    ).repositories[0]!.snapshots.map((s) => `${s.job}@${s.startedAt}`).sort();
    expect(snaps).toEqual([
      'docs@2024-10-26T10:05:00.000Z',
      'docs@2024-10-29T09:07:00.000Z',
      'web@2024-10-26T10:05:00.000Z',
      'web@2024-10-26T11:01:00.000Z',
      'web@2024-10-29T09:07:00.000Z',
    ]);
    const { records, problems } = await sb.journal('repo');
    expect(problems).toEqual([]);
    expect(records.map((r) => `${r.kind}:${r.job}:${r.outcome}@${r.startedAt}`).sort()).toEqual([
      'backup:docs:success@2024-10-26T10:05:00.000Z',
      'backup:docs:success@2024-10-29T09:07:00.000Z',
      'backup:web:success@2024-10-26T10:05:00.000Z',
      'backup:web:success@2024-10-26T11:01:00.000Z',
      'backup:web:success@2024-10-29T09:07:00.000Z',
    ]);
  });

  it('notified the webhook and healthchecks, and wrote Prometheus metrics', async () => {
    const hookBodies = hooks.requests
      .filter((r) => r.path.startsWith('/hook/'))
      .map(
        (r) =>
          JSON.parse(r.body) as {
            event: string;
            job: string;
            evidence: { snapshotIds: string[]; runIds: string[] };
          },
      );
    expect(
      hookBodies
        .filter((b) => b.event === 'success')
        .map((b) => b.job)
        .sort(),
    ).toEqual(['docs', 'docs', 'web', 'web', 'web']);
    for (const b of hookBodies.filter((x) => x.event === 'success')) {
      expect(b.evidence.snapshotIds[0]).toMatch(/^[0-9a-f]{64}$/);
      expect(b.evidence.runIds[0]).toMatch(/^[0-9a-f]{16}$/);
    }
    // Six real runs: a start and a success ping each.
    const pings = hooks.requests
      .filter((r) => r.path.startsWith('/ping/'))
      .map((r) => r.path.replace(SECRET, 'S'));
    expect(pings).toEqual(Array.from({ length: 6 }, () => ['/ping/S/start', '/ping/S']).flat());
    // The docs job's own check hears only about the runs that had docs activities.
    const docsRuns = hookBodies.filter((b) => b.job === 'docs').length;
    const docsPings = hooks.requests
      .filter((r) => r.path.startsWith('/docs-ping/'))
      .map((r) => r.path.replace(SECRET, 'S'));
    expect(docsRuns).toBeGreaterThan(0);
    expect(docsPings).toEqual(
      Array.from({ length: docsRuns }, () => ['/docs-ping/S/start', '/docs-ping/S']).flat(),
    );

    const prom = await readFile(join(sb.dir, 'textfile', 'lifeboat.prom'), 'utf8');
    expect(prom).toContain('# TYPE lifeboat_restore_point_age_seconds gauge\n');
    // The last run was at 09:12, five minutes after the newest backups.
    expect(prom).toContain('lifeboat_restore_point_age_seconds{job="web",repository="local"} 300\n');
    expect(prom).toContain('lifeboat_restore_point_age_seconds{job="docs",repository="local"} 300\n');
    expect(prom).toContain(
      `lifeboat_last_success_timestamp_seconds{job="web",repository="local"} ${Date.parse('2024-10-29T09:07:00Z') / 1000}\n`,
    );
    expect(prom).toContain('lifeboat_rpo_target_seconds{job="web"} 3600\n');
    expect(prom).toContain('lifeboat_rpo_target_seconds{job="docs"} 172800\n');
    expect(prom).toContain('lifeboat_job_runs_total{job="web",outcome="success"} 3\n');
    expect(prom).toMatch(/lifeboat_repository_bytes\{repository="local"\} [1-9]\d*\n/);
  });
});

describe('failures, overlaps, interruptions and damaged journals', () => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await makeSandbox(
      'safety',
      (dir) =>
        [
          configHead(dir),
          'policies:',
          '  hourly: { rpo: 1h }',
          'jobs:',
          '  good:',
          '    kind: files',
          `    paths: [${join(dir, 'src/good')}]`,
          '    schedule: "0 * * * *"',
          '  broken:',
          '    kind: files',
          `    paths: [${join(dir, 'src/missing')}]`,
          '    schedule: "0 * * * *"',
          '',
        ].join('\n'),
      ['src/good'],
    );
    expect((await sb.run('2024-06-01T10:00:00Z', 'repo', 'init')).code).toBe(0);
  });

  afterAll(async () => {
    await sb.cleanup();
  });

  it('a failing job does not stop the others; the exit code is the worst one', async () => {
    const r = await sb.run('2024-06-01T10:05:00Z', '--json', 'run', '--due');
    expect(r.code).toBe(1);
    const d = doc(r.stdout);
    expect(backupsRun(d)).toEqual(['broken:failure', 'good:success']);
    expect(d.exitCode).toBe(1);
    expect(d.ok).toBe(false);
  });

  it('retries the failed job once after 15 minutes, then waits for its next scheduled run', async () => {
    const soon = doc((await sb.run('2024-06-01T10:10:00Z', '--json', 'run', '--due')).stdout);
    expect(backupsRun(soon)).toEqual([]);
    expect(soon.plan.find((p) => p.id === 'backup:broken')!.reason).toBe(
      'not due: last backup failed 5m ago; one retry at 10:20 UTC',
    );
    const retry = doc((await sb.run('2024-06-01T10:21:00Z', '--json', 'run', '--due')).stdout);
    expect(backupsRun(retry)).toEqual(['broken:failure']);
    const after = doc((await sb.run('2024-06-01T10:40:00Z', '--json', 'run', '--due')).stdout);
    expect(backupsRun(after)).toEqual([]);
    expect(after.plan.find((p) => p.id === 'backup:broken')!.reason).toBe(
      'not due: last backup failed 19m ago; next run 11:00 UTC',
    );
  });

  it('an overlapping invocation exits 0 quietly with a note on stderr', async () => {
    await mkdir(sb.stateDir, { recursive: true });
    const lock = join(sb.stateDir, 'run.lock');
    await writeFile(
      lock,
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        startedAt: '2024-06-01T11:00:00.000Z',
        command: 'run --due',
      }),
    );
    const r = await sb.run('2024-06-01T11:01:00Z', 'run', '--due');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^another lifeboat run is in progress \\(pid ${process.pid} on `));
    expect((await sb.snapshots('repo')).length).toBe(1);

    // A lock left by a process that is gone is taken over.
    await writeFile(
      lock,
      JSON.stringify({
        pid: await deadPid(),
        host: hostname(),
        startedAt: '2024-06-01T11:00:00.000Z',
        command: 'run',
      }),
    );
    const taken = await sb.run('2024-06-01T11:02:00Z', '--json', 'run', '--due');
    expect(backupsRun(doc(taken.stdout))).toEqual(['broken:failure', 'good:success']);
    expect(await readdir(sb.stateDir)).not.toContain('run.lock');
  });

  it('records a run that was killed (its marker outlived its process) as interrupted', async () => {
    const running = join(sb.stateDir, 'running');
    await mkdir(running, { recursive: true });
    await writeFile(
      join(running, '00112233aabbccdd.json'),
      JSON.stringify({
        v: 1,
        pid: await deadPid(),
        host: hostname(),
        activity: 'backup:good',
        kind: 'backup',
        job: 'good',
        repository: 'local',
        startedAt: '2024-06-01T12:00:05.000Z',
      }),
    );
    const r = await sb.run('2024-06-01T12:10:00Z', '--json', 'run', '--due');
    const d = doc(r.stdout);
    expect(d.recovered).toEqual([
      expect.objectContaining({
        activity: 'backup:good',
        repository: 'local',
        startedAt: '2024-06-01T12:00:05.000Z',
      }),
    ]);
    // The interrupted attempt counts: `good` is retried once after the delay, not at once.
    expect(backupsRun(d)).toEqual(['broken:failure']);
    expect(await readdir(running)).toEqual([]);
    const { records } = await sb.journal('repo');
    const interrupted = records.filter((x) => x.outcome === 'interrupted');
    expect(interrupted).toEqual([
      expect.objectContaining({
        kind: 'backup',
        job: 'good',
        startedAt: '2024-06-01T12:00:05.000Z',
        error: expect.objectContaining({ code: 'E_INTERRUPTED' }),
      }),
    ]);
    const later = doc((await sb.run('2024-06-01T12:20:00Z', '--json', 'run', '--due')).stdout);
    expect(backupsRun(later)).toEqual(['good:success']);
  });

  it('a corrupted journal record and one from a newer version are warnings; the run still works', async () => {
    const repo = await sb.open('repo');
    try {
      const { storage, master } = repo.internals();
      const newerName = `${compactTime(Date.parse('2024-06-01T12:30:00Z'))}-aaaaaaaaaaaaaaaa`;
      const newer = encodeMetadataObject(
        master.encryption,
        associatedData.journal(newerName),
        { v: 2, id: 'aaaaaaaaaaaaaaaa', kind: 'backup', job: 'good', outcome: 'success' },
        false,
      );
      await storage.put(journalKey(newerName), newer);
      const brokenName = `${compactTime(Date.parse('2024-06-01T12:31:00Z'))}-bbbbbbbbbbbbbbbb`;
      await storage.put(journalKey(brokenName), Buffer.from('not a sealed object at all'));
    } finally {
      await repo.close();
    }
    const r = await sb.run('2024-06-01T13:01:00Z', '--json', 'run', '--due');
    const d = doc(r.stdout);
    expect(backupsRun(d)).toEqual(['broken:failure', 'good:success']);
    expect(r.stderr).toMatch(
      /warning: repository local: journal record journal\/\S+-aaaaaaaaaaaaaaaa skipped: it has schema version 2, newer than this lifeboat reads \(1\) \(a newer lifeboat wrote it; upgrade to read it\)/,
    );
    expect(r.stderr).toMatch(
      /warning: repository local: journal record journal\/\S+-bbbbbbbbbbbbbbbb skipped: /,
    );
    expect(d.warnings).toHaveLength(2);
  });

  it('an unreachable webhook and a missing metrics directory are warnings without secrets; backups still run', async () => {
    const dir = sb.dir;
    const hook = `${await deadUrl()}/hook/${SECRET}?token=${SECRET}`;
    const cfg = await readFile(sb.configFile, 'utf8');
    await writeFile(
      sb.configFile,
      cfg +
        [
          'notifications:',
          '  webhooks: [{ url: env:HOOK_URL, events: [success, failure], timeout: 2s }]',
          `  prometheus: { textfileDir: ${join(dir, 'no-such-dir')} }`,
          '',
        ].join('\n'),
      { mode: 0o600 },
    );
    const r = await sb.runWith({ HOOK_URL: hook }, '2024-06-01T14:01:00Z', 'run', '--due');
    expect(r.stdout).toMatch(/✔ backup good → local: snapshot [0-9a-f]{12}/);
    expect(r.stderr).toContain(
      `metrics not written: the Prometheus textfile directory ${join(dir, 'no-such-dir')} does not exist`,
    );
    expect(r.stderr).toMatch(
      /warning: webhook http:\/\/127\.0\.0\.1:\d+\/… failed after 3 attempts: ECONNREFUSED/,
    );
    expect(r.stderr + r.stdout).not.toContain(SECRET);
    expect(r.code).toBe(1); // the broken job, not the notifications
    expect(await readdir(dir)).not.toContain('no-such-dir');
  });
});

describe('run without --due', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await makeSandbox(
      'all',
      (dir) =>
        [
          configHead(dir),
          'policies:',
          '  p: { rpo: 1h, drill: { every: 7d } }',
          'jobs:',
          '  web:',
          '    kind: files',
          `    paths: [${join(dir, 'src/web')}]`,
          '    schedule: "0 * * * *"',
          '  manual:',
          '    kind: files',
          `    paths: [${join(dir, 'src/manual')}]`,
          '',
        ].join('\n'),
      ['src/web', 'src/manual'],
    );
    expect((await sb.run('2024-06-01T10:00:00Z', 'repo', 'init')).code).toBe(0);
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  it('runs every activity of the named job now, even when not due, drills included', async () => {
    const first = doc((await sb.run('2024-06-01T10:05:00Z', '--json', 'run', '--job', 'web')).stdout);
    expect(backupsRun(first)).toEqual(['web:success']);
    const again = await sb.run('2024-06-01T10:06:00Z', '--json', 'run', '--job', 'web');
    expect(again.code).toBe(0);
    const d = doc(again.stdout);
    expect(backupsRun(d)).toEqual(['web:success']);
    expect(d.plan.find((p) => p.id === 'backup:web')).toMatchObject({ due: false, selected: true });
    expect(d.activities.filter((a) => a.kind === 'drill')).toMatchObject([
      { job: 'web', outcome: 'success' },
    ]);
  });

  it('a job without a schedule never runs by --due, but runs when named', async () => {
    const due = doc(
      (await sb.run('2024-06-01T11:05:00Z', '--json', 'run', '--due', '--job', 'manual')).stdout,
    );
    expect(backupsRun(due)).toEqual([]);
    expect(due.plan[0]!.reason).toMatch(/^not due: no schedule; the job runs only when started by hand/);
    const named = doc((await sb.run('2024-06-01T11:06:00Z', '--json', 'run', '--job', 'manual')).stdout);
    expect(backupsRun(named)).toEqual(['manual:success']);
  });

  it('human output of a dry run lists each activity with its reason', async () => {
    const r = await sb.run('2024-06-01T12:01:00Z', 'run', '--due', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /run\s+backup\s+web\s+local\s+due: last good backup 1h 55m ago, schedule hourly \(0 \* \* \* \*\); 2 scheduled runs missed/,
    );
    expect(r.stdout).toMatch(/skip\s+backup\s+manual\s+local\s+not due: no schedule/);
    expect(r.stdout).toMatch(/skip\s+drill\s+web\s+local\s+not due: last successful drill 1h 55m ago/);
  });
});

describe('checks and retention when they are due', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await makeSandbox(
      'maint',
      (dir) =>
        [
          configHead(dir),
          'policies:',
          '  p: { rpo: 1h, retention: { last: 1 }, check: { every: 1d } }',
          'jobs:',
          '  web:',
          '    kind: files',
          `    paths: [${join(dir, 'src/web')}]`,
          '    schedule: "0 * * * *"',
          '',
        ].join('\n'),
      ['src/web'],
    );
    expect((await sb.run('2024-06-01T10:00:00Z', 'repo', 'init')).code).toBe(0);
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  const ran = (d: RunDoc) => d.activities.map((a) => `${a.id}:${a.outcome}`);

  it('checks the repository once a day and applies retention after new backups, at most daily', async () => {
    const first = await sb.run('2024-06-01T10:05:00Z', '--json', 'run', '--due');
    expect(first.code).toBe(0);
    expect(ran(doc(first.stdout))).toEqual(['backup:web:success', 'check:local:success']);

    const second = await sb.run('2024-06-01T11:05:00Z', '--json', 'run', '--due');
    expect(second.code).toBe(0);
    expect(ran(doc(second.stdout))).toEqual(['backup:web:success', 'retention:local:success']);
    // retention keeps the newest restore point only
    expect((await sb.snapshots('repo')).map((s) => s.startedAt)).toEqual(['2024-06-01T11:05:00.000Z']);

    const third = doc((await sb.run('2024-06-01T11:10:00Z', '--json', 'run', '--due')).stdout);
    expect(ran(third)).toEqual([]);
    expect(third.plan.find((p) => p.id === 'retention:local')!.reason).toMatch(/^not due: /);
    expect(third.plan.find((p) => p.id === 'check:local')!.reason).toBe(
      'not due: last successful check 1h 5m ago; next due 2024-06-02 10:05 UTC',
    );

    const nextDay = doc((await sb.run('2024-06-02T10:06:00Z', '--json', 'run', '--due')).stdout);
    expect(ran(nextDay)).toEqual(['backup:web:success', 'check:local:success']);

    const kinds = (await sb.journal('repo')).records.map((r) => `${r.kind}:${r.outcome}`);
    expect(kinds.filter((k) => k.startsWith('check:'))).toEqual(['check:success', 'check:success']);
    expect(kinds).toContain('forget:success');
    expect(kinds).toContain('prune:success');
  });
});
