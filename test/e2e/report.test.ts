/**
 * `lifeboat report` and `lifeboat runbook` end to end, on the built CLI: real backups, a real
 * check, one drill that passes and one that breaches its RTO (32,000 small files take well over
 * the 1s RTO to restore), then reports in every format, the evidence bundle, the exit codes,
 * and the bad inputs: a window with no data, a repository that cannot be opened, journal
 * records of a job no longer configured and from a newer lifeboat.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { associatedData } from '../../src/repository/crypto.js';
import { compactTime, journalKey } from '../../src/repository/layout.js';
import { encodeMetadataObject } from '../../src/repository/metadataObject.js';
import { LIFEBOAT_BIN } from '../helpers/binary.js';
import { configHead, ensureBuilt, makeSandbox, PASSWORD, type Sandbox } from './runHarness.js';

const exec = promisify(execFile);
const XSD = fileURLToPath(new URL('../unit/report/junit.xsd', import.meta.url));
const OFFSITE_PW = 'offsite report password';
const T0 = '2024-06-01T10:00:00Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();

interface ReportDoc {
  schema: string;
  status: string;
  summary: Record<string, number>;
  jobs: Array<{
    job: string;
    status: string;
    controls: Array<{
      id: string;
      status: string;
      measured: string;
      evidence: Array<{ kind: string; id: string }>;
    }>;
  }>;
  repositories: Array<{ name: string; opened: boolean; error: { code: string } | null }>;
  unconfiguredJobs: Array<{ job: string; runs: number }>;
  warnings: string[];
}

let sb: Sandbox;

function config(dir: string, extraJob = ''): string {
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
    '  quick: { rpo: 1h, rto: 1h, drill: { every: 7d }, check: { every: 7d, readData: "10%" } }',
    '  strict: { rpo: 1h, rto: 1s, drill: { every: 7d } }',
    'jobs:',
    '  fast:',
    '    kind: files',
    `    paths: [${join(dir, 'src/fast')}]`,
    '    schedule: "0 * * * *"',
    '    policy: quick',
    '    repositories: [local]',
    '  slow:',
    '    kind: files',
    `    paths: [${join(dir, 'src/slow')}]`,
    '    schedule: "0 * * * *"',
    '    policy: strict',
    '    repositories: [local]',
    '    dependsOn: [fast]',
    extraJob,
    '',
  ].join('\n');
}

const control = (doc: ReportDoc, job: string, id: string) =>
  doc.jobs.find((j) => j.job === job)!.controls.find((c) => c.id === id)!;

async function reportJson(now: string, ...args: string[]) {
  const r = await sb.run(now, '--json', 'report', ...args);
  if (!r.stdout.trim()) throw new Error(`no report (exit ${r.code}, signal ${r.signal}): ${r.stderr}`);
  return { ...r, doc: JSON.parse(r.stdout) as ReportDoc };
}

beforeAll(async () => {
  await ensureBuilt();
  sb = await makeSandbox('report', (dir) => config(dir), ['src/fast'], { LB_OFF_PW: OFFSITE_PW });
  // Many small files: restoring them takes far longer than the strict policy's RTO of 1s (8,000 took
  // 0.5 s once small files were written by the workers; 32,000 take ~2 s here).
  for (let d = 0; d < 80; d++) {
    const sub = join(sb.dir, 'src/slow', `d${d}`);
    await mkdir(sub, { recursive: true });
    await Promise.all(
      Array.from({ length: 400 }, (_, i) => writeFile(join(sub, `f${i}.txt`), `file ${d}/${i}\n`)),
    );
  }
  for (const repo of ['local', 'offsite']) expect((await sb.run(T0, 'repo', 'init', repo)).code).toBe(0);
  expect((await sb.run(T0, 'backup', 'fast', 'slow')).code).toBe(0);
  expect((await sb.run(at(1), 'check', '--repository', 'local', '--read-data-subset', '10%')).code).toBe(0);
  const pass = await sb.run(at(2), 'drill', 'fast');
  expect(pass.code, pass.stderr).toBe(0);
  const breach = await sb.run(at(3), 'drill', 'slow');
  expect(breach.code, breach.stdout + breach.stderr).toBe(4);
}, 300_000);

afterAll(async () => {
  await sb?.cleanup();
});

describe('lifeboat report', () => {
  it('--fail-on breach exits 4 and names the breached control', async () => {
    const r = await reportJson(at(10));
    expect(r.code).toBe(4);
    expect(r.doc.schema).toBe('lifeboat.report/v1');
    expect(r.doc.status).toBe('fail');
    const rto = control(r.doc, 'slow', 'rto');
    expect(rto.status).toBe('fail');
    expect(rto.measured).toMatch(/restore took \d+s( \d+ms)? of an RTO of 1s/);
    expect(rto.evidence[0]!.kind).toBe('drill');
    expect(control(r.doc, 'fast', 'rto').status).toBe('pass');
    expect(control(r.doc, 'fast', 'drill-verification').status).toBe('pass');
    expect(control(r.doc, 'fast', 'integrity')).toMatchObject({ status: 'pass' });
    expect(control(r.doc, 'fast', 'encryption').measured).toMatch(/^local: opened with key slot [0-9a-f]{8}/);
    expect(r.stderr).toContain('failed controls: slow/rto');

    const human = await sb.run(at(10), 'report');
    expect(human.code).toBe(4);
    expect(human.stdout).toMatch(/^slow \(files, policy strict, repositories local\): FAIL$/m);
    expect(human.stdout).toMatch(/^ {2}FAIL {5}rto {18}last drill failed .* of an RTO of 1s/m);
  });

  it('--fail-on never exits 0; a job that meets its policy exits 0', async () => {
    expect((await sb.run(at(10), 'report', '--fail-on', 'never')).code).toBe(0);
    const fast = await reportJson(at(10), '--job', 'fast');
    expect(fast.doc.jobs.map((j) => j.job)).toEqual(['fast']);
    expect(fast.doc.summary.fail).toBe(0);
    expect(fast.code).toBe(0);
    // A warning (the newest restore point is 50m old of a 1h RPO) fails only with --fail-on warning.
    expect((await sb.run(at(50), 'report', '--job', 'fast')).code).toBe(0);
    expect((await sb.run(at(50), 'report', '--job', 'fast', '--fail-on', 'warning')).code).toBe(4);
  });

  it('writes JUnit XML that validates against the JUnit schema', async () => {
    const file = join(sb.dir, 'out', 'junit.xml');
    const r = await sb.run(at(10), 'report', '--format', 'junit', '--output', file);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    const xml = await readFile(file, 'utf8');
    expect(xml).toMatch(/<testsuite name="slow" tests="\d+" failures="1"/);
    expect(xml).toMatch(
      /<failure message="rto failed: measured [^"]*; target restore takes less than 1s" type="rto">/,
    );
    const lint = await exec('xmllint', ['--noout', '--schema', XSD, file]);
    expect(lint.stderr).toContain('validates');
  });

  it('writes Markdown and a self-contained HTML report', async () => {
    const md = await sb.run(at(10), 'report', '--format', 'markdown');
    expect(md.stdout).toContain('# lifeboat compliance report');
    expect(md.stdout).toMatch(/\| ❌ fail \| rto \| last drill failed/);
    const file = join(sb.dir, 'out', 'report.html');
    await sb.run(at(10), 'report', '--format', 'html', '--output', file);
    const html = await readFile(file, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.match(/<svg class="chart timeline"/g)).toHaveLength(2);
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it('--evidence-dir writes the report, the raw records and a manifest sha256sum -c accepts', async () => {
    const dir = join(sb.dir, 'evidence');
    const r = await sb.run(at(10), 'report', '--evidence-dir', dir, '--fail-on', 'never');
    expect(r.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual([
      'SHA256SUMS',
      'journal.jsonl',
      'report.html',
      'report.json',
      'snapshots.jsonl',
    ]);
    const check = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir });
    expect(check.stdout.trim().split('\n')).toHaveLength(4);
    const records = (await readFile(join(dir, 'journal.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { repository: string; record: { id: string; kind: string } });
    const doc = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as ReportDoc;
    // Every run the report points at is in the bundle.
    const ids = new Set(records.map((x) => x.record.id));
    for (const job of doc.jobs) {
      for (const c of job.controls) {
        for (const e of c.evidence)
          if (e.kind !== 'snapshot') expect(ids.has(e.id), `${c.id} ${e.id}`).toBe(true);
      }
    }
    expect(records.filter((x) => x.record.kind === 'drill')).toHaveLength(2);
    // Tampering is detected; a second bundle into the same directory is refused.
    await writeFile(
      join(dir, 'report.json'),
      (await readFile(join(dir, 'report.json'), 'utf8')).replace('"fail"', '"pass"'),
    );
    await expect(exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir })).rejects.toMatchObject({ code: 1 });
    const again = await sb.run(at(10), 'report', '--evidence-dir', dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/evidence directory .* is not empty/);
  });

  it('a window with no data: controls fail or are unknown, never pass on nothing', async () => {
    const r = await reportJson(at(40 * 24 * 60), '--since', '1d', '--job', 'slow');
    expect(r.code).toBe(4);
    expect(control(r.doc, 'slow', 'rpo-window')).toMatchObject({ status: 'fail' });
    expect(control(r.doc, 'slow', 'rpo-window').measured).toMatch(/still open/);
    expect(control(r.doc, 'slow', 'backup-success-rate')).toMatchObject({
      status: 'unknown',
      measured: 'no backup in the window',
    });
    expect(control(r.doc, 'slow', 'rto')).toMatchObject({
      status: 'unknown',
      measured: 'no drill in the window',
    });
    const bad = await sb.run(at(10), 'report', '--since', '30');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since '30' is not a duration/);
  });

  it('reports records of a job no longer configured and records from a newer lifeboat', async () => {
    await sb.append('repo', {
      kind: 'backup',
      job: 'retired',
      startedAt: at(5),
      endedAt: at(6),
      outcome: 'failure',
      error: { code: 'E_SOURCE', message: 'gone' },
    });
    const repo = await sb.open('repo');
    try {
      const { storage, master } = repo.internals();
      const name = `${compactTime(Date.parse(at(7)))}-00000000000000ff`;
      const record = { v: 2, id: '00000000000000ff', kind: 'teleport', startedAt: at(7), endedAt: at(7) };
      const bytes = encodeMetadataObject(master.encryption, associatedData.journal(name), record, false);
      await storage.put(journalKey(name), bytes, { ifNoneMatch: true, size: bytes.length });
    } finally {
      await repo.close();
    }
    const r = await reportJson(at(10), '--fail-on', 'never');
    expect(r.code).toBe(0);
    expect(r.doc.unconfiguredJobs).toEqual([{ job: 'retired', runs: 1, restorePoints: 0, lastRunAt: at(5) }]);
    expect(r.doc.warnings.join('\n')).toMatch(/1 written by a newer lifeboat: upgrade to read them/);
    expect(r.doc.warnings.join('\n')).toMatch(/job retired is not in the configuration/);
  });

  it('a repository that cannot be opened: its controls are unknown and the exit code says so', async () => {
    const file = join(sb.dir, 'broken.yaml');
    const extra = [
      '  lost:',
      '    kind: files',
      `    paths: [${join(sb.dir, 'src/fast')}]`,
      '    policy: quick',
      '    repositories: [gone]',
    ].join('\n');
    const text = config(sb.dir, extra).replace(
      'policies:',
      [
        '  gone:',
        `    url: file://${join(sb.dir, 'nowhere')}`,
        '    password: env:LB_E2E_PW',
        'policies:',
      ].join('\n'),
    );
    await writeFile(file, text, { mode: 0o600 });
    const r = await sb.run(at(10), '--config', file, '--json', 'report', '--job', 'lost');
    expect(r.code).toBe(10);
    const doc = JSON.parse(r.stdout) as ReportDoc;
    expect(doc.jobs[0]!.controls.every((c) => c.status === 'unknown')).toBe(true);
    expect(doc.repositories).toEqual([
      expect.objectContaining({
        name: 'gone',
        opened: false,
        error: expect.objectContaining({ code: 'E_REPO_MISSING' }),
      }),
    ]);
    // A wrong password: exit 12.
    const wrong = await sb.runWith(
      { LB_E2E_PW: 'not the password' },
      at(10),
      '--config',
      file,
      'report',
      '--job',
      'fast',
    );
    expect(wrong.code).toBe(12);
    expect(wrong.stdout).toMatch(/UNKNOWN/);
  });
  it('immutableFor on storage that cannot lock objects fails as "immutability unavailable"', async () => {
    const file = join(sb.dir, 'immutable.yaml');
    const extra = [
      '  sealed:',
      '    kind: files',
      `    paths: [${join(sb.dir, 'src/fast')}]`,
      '    policy: locked',
      '    repositories: [local]',
    ].join('\n');
    const text = config(sb.dir, extra).replace(
      'policies:',
      'policies:\n  locked: { rpo: 1h, immutableFor: 7d }',
    );
    await writeFile(file, text, { mode: 0o600 });
    const r = await sb.run(at(10), '--config', file, '--json', 'report', '--job', 'sealed');
    expect(r.code).toBe(4);
    const doc = JSON.parse(r.stdout) as ReportDoc;
    expect(control(doc, 'sealed', 'immutability')).toMatchObject({
      status: 'fail',
      measured: expect.stringMatching(/^immutability unavailable for repository local/),
    });
  });
});

describe('lifeboat runbook', () => {
  it('lists jobs in recovery order with commands that work as printed', async () => {
    const r = await sb.run(at(10), 'runbook');
    expect(r.code).toBe(0);
    const md = r.stdout;
    expect(md).toMatch(/## Recovery order\n\n1\. fast\n2\. slow \(after fast\)/);
    expect(md).toMatch(/\| local \| yes \| 1 \| `[0-9a-f]{12}` 2024-06-01 10:00 UTC \| 10m \|/);
    expect(md).toMatch(/Last drill: breach on 2024-06-01 10:03 UTC in local, restore took/);
    // Run the printed scratch restore of `fast` exactly as written (lifeboat → the built binary).
    const line = md
      .split('\n')
      .find((l) => / restore fast --target \S+$/.test(l.trim()))!
      .trim();
    expect(line.startsWith(`lifeboat --config ${sb.configFile} restore fast --target `)).toBe(true);
    const shell = line.replace(/^lifeboat /, `${process.execPath} ${LIFEBOAT_BIN} `);
    await exec('sh', ['-c', shell], { env: { ...process.env, LB_E2E_PW: PASSWORD, LB_OFF_PW: OFFSITE_PW } });
    const target = line.split(' --target ')[1]!;
    const restored = await readFile(join(target, sb.dir, 'src/fast/file.txt'), 'utf8');
    expect(restored).toBe('content of src/fast\n');

    const html = join(sb.dir, 'out', 'runbook.html');
    expect((await sb.run(at(10), 'runbook', '--format', 'html', '--output', html)).code).toBe(0);
    expect(await readFile(html, 'utf8')).toMatch(/<pre>lifeboat --config .* restore slow --target /);
  });
});
