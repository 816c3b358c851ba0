import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLifeboat } from '../helpers/binary.js';

// The files job end to end through the built binary, as a user would run it.
let dir: string;
let source: string;
let config: string;
const env = { LIFEBOAT_TEST_PW: 'correct horse battery staple' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lb-e2e-files-'));
  source = join(dir, 'site');
  await mkdir(join(source, 'pages'), { recursive: true });
  await writeFile(join(source, 'pages', 'index.html'), '<h1>hello</h1>\n');
  await writeFile(join(source, 'data.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
  config = join(dir, 'lifeboat.yaml');
  await writeFile(
    config,
    [
      'defaults:',
      `  stateDir: ${join(dir, 'state')}`,
      'repositories:',
      '  main:',
      `    url: file://${join(dir, 'repo')}`,
      '    password: env:LIFEBOAT_TEST_PW',
      'policies:',
      '  standard: { rpo: 1d, rto: 1h }',
      'jobs:',
      '  site:',
      '    kind: files',
      `    paths: [${source}]`,
      '    policy: standard',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lb = (...args: string[]) => runLifeboat(['--config', config, ...args], { env });

describe('files job through the CLI', () => {
  it('reports a missing repository with exit 10', async () => {
    const r = await lb('backup', 'site');
    expect(r.code).toBe(10);
    expect(r.stdout + r.stderr).toContain('repo init');
  });

  it('creates the repository, backs up, lists and restores', async () => {
    expect((await lb('repo', 'init')).code).toBe(0);
    const backup = await lb('--json', 'backup', 'site');
    expect(backup.code).toBe(0);
    const doc = JSON.parse(backup.stdout);
    expect(doc.results[0]).toMatchObject({ job: 'site', outcome: 'success' });
    const id: string = doc.results[0].snapshotId;

    const snaps = JSON.parse((await lb('--json', 'snapshots', '--job', 'site')).stdout);
    expect(snaps.repositories[0].snapshots.map((s: { id: string }) => s.id)).toEqual([id]);
    expect(snaps.repositories[0].snapshots[0].fingerprint.files).toBe(2);

    const ls = await lb('ls', id.slice(0, 8), source.slice(1), '-r');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('pages/index.html');

    const target = join(dir, 'restored');
    const restore = await lb('restore', 'site', '--target', target);
    expect(restore.code).toBe(0);
    expect(await readFile(join(target, source, 'pages', 'index.html'), 'utf8')).toBe('<h1>hello</h1>\n');

    // A second restore into the same, now non-empty, target is refused without an overwrite mode.
    const again = await lb('restore', 'site', '--target', target);
    expect(again.code).toBe(2);
  });

  it('refuses a wrong password with exit 12 and never prints it', async () => {
    const r = await runLifeboat(['--config', config, 'snapshots'], {
      env: { LIFEBOAT_TEST_PW: 'not-the-password' },
    });
    expect(r.code).toBe(12);
    expect(r.stdout + r.stderr).not.toContain('not-the-password');
  });

  it('prints one JSON document with --json even on failure', async () => {
    const r = await lb('--json', 'restore', 'nope', '--target', join(dir, 'x'));
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'E_USAGE' } });
  });
});

describe('npm run demo', () => {
  it('backs up, restores and verifies the sample site', async () => {
    const r = await runLifeboat(['--json', 'demo'], { timeoutMs: 180_000 });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.verification.ok).toBe(true);
    expect(doc.first.stats.files).toBeGreaterThan(50);
    expect(doc.second.stats.addedBytes).toBe(0);
  });
});
