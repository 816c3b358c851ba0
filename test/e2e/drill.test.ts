/**
 * `lifeboat drill` through the built binary, as CI and people run it: a JUnit report of a
 * failing drill (exit 4), a drill interrupted with SIGINT in the middle of restoring into
 * an ephemeral PostgreSQL server and one interrupted while an image is mounted on a loop
 * device — both must leave no server process, no loop device, no mount, no scratch
 * directory and no state file behind — and a drill killed with SIGKILL whose leftovers
 * `lifeboat drill cleanup` removes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { runChecked } from '../../src/platform/exec.js';
import { openRepository } from '../../src/repository/repository.js';
import { isMountPoint, loopDevicesOf, processesMentioning } from '../../src/scratch/index.js';
import { LocalStorage } from '../../src/storage/local.js';
import { LIFEBOAT_BIN, runLifeboat } from '../helpers/binary.js';
import { describeWith, probeExt4 } from '../helpers/loop.js';
import { assertPgUp, pgRunnable, PG } from '../integration/postgres/pgTestServer.js';
import { ensureBuilt } from './runHarness.js';

const PASSWORD = 'e2e drill password';
const env = { LB_E2E_DRILL_PW: PASSWORD };
const ext4 = await probeExt4();

interface Sandbox {
  dir: string;
  config: string;
  scratch: string;
  stateDir: string;
  repo: string;
}

async function sandbox(jobs: (dir: string) => Promise<string> | string): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-e2e-drill-'));
  const sb = {
    dir,
    config: join(dir, 'lifeboat.yaml'),
    scratch: join(dir, 'scratch'),
    stateDir: join(dir, 'state'),
    repo: join(dir, 'repo'),
  };
  await writeFile(
    sb.config,
    [
      'defaults:',
      `  stateDir: ${sb.stateDir}`,
      `  scratchRoot: ${sb.scratch}`,
      'repositories:',
      `  main: { url: ${pathToFileURL(sb.repo).href}, password: env:LB_E2E_DRILL_PW }`,
      'policies:',
      '  std: { rpo: 1d, rto: 10m, drill: { every: 1d } }',
      'jobs:',
      await jobs(dir),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // The sandbox must be reachable by the account an ephemeral server runs as.
  await runChecked(['chmod', '0755', dir]);
  const init = await lb(sb, 'repo', 'init');
  if (init.code !== 0) throw new Error(`repo init failed: ${init.stderr}`);
  return sb;
}

const lb = (sb: Sandbox, ...args: string[]) =>
  runLifeboat(['--config', sb.config, ...args], { env, timeoutMs: 180_000 });

/** Start `lifeboat drill`, wait until `ready(stderr)` holds (or the state shows it), then send `signal`. */
async function interruptDrill(
  sb: Sandbox,
  args: string[],
  ready: () => Promise<boolean>,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [LIFEBOAT_BIN, '--config', sb.config, 'drill', ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, sig) => resolve({ code, signal: sig })),
  );
  const deadline = Date.now() + 120_000;
  let exited = false;
  void closed.then(() => (exited = true));
  while (!(await ready()) && !exited) {
    if (Date.now() > deadline) throw new Error(`never got ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  if (exited) throw new Error(`the drill ended before it could be interrupted:\n${stdout}\n${stderr}`);
  child.kill(signal);
  const end = await closed;
  return { ...end, stderr, stdout };
}

async function stateFiles(sb: Sandbox): Promise<string[]> {
  return readdir(join(sb.stateDir, 'drills', 'scratch')).catch(() => [] as string[]);
}

async function scratchDirs(sb: Sandbox): Promise<string[]> {
  return (await readdir(sb.scratch).catch(() => [] as string[])).filter((n) =>
    n.startsWith('lifeboat-drill-'),
  );
}

async function drillRecords(sb: Sandbox) {
  const repo = await openRepository(LocalStorage.fromUrl(pathToFileURL(sb.repo).href), PASSWORD, {
    clock: { now: () => Date.now() },
    host: 'e2e',
  });
  try {
    return (await repo.listJournal()).records.filter((r) => r.kind === 'drill');
  } finally {
    await repo.close();
  }
}

beforeAll(async () => {
  await ensureBuilt();
});

describe('drill reports for CI', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox(async (dir) => {
      const site = join(dir, 'site');
      await mkdir(site);
      await writeFile(join(site, 'index.html'), '<h1>hi</h1>\n');
      return [
        '  site:',
        '    kind: files',
        `    paths: [${site}]`,
        '    policy: std',
        '    drill:',
        '      assertions:',
        '        - command: ["test", "-f", "index.html"]',
        `        - command: ["sh", "-c", "echo '<oops> & \\"quotes\\"' >&2; exit 1"]`,
      ].join('\n');
    });
    expect((await lb(sb, 'backup', 'site')).code).toBe(0);
  });
  afterAll(async () => {
    await rm(sb.dir, { recursive: true, force: true });
  });

  it('writes one testsuite per drill and one testcase per step, exits 4 for a failed drill', async () => {
    const report = join(sb.dir, 'drills.xml');
    const r = await lb(sb, 'drill', '--format', 'junit', '--output', report);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('site: FAIL');
    expect(r.stdout).toContain(`report (junit) written to ${report}`);
    const xml = await readFile(report, 'utf8');
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')).toBe(true);
    expect(xml.match(/<testsuite /g)).toHaveLength(1);
    expect(xml).toContain('<testsuite name="drill site" tests="8" failures="1"');
    expect(xml).toContain('<testcase classname="lifeboat.drill.site" name="restore"');
    expect(xml).toContain('&lt;oops&gt; &amp; \\&quot;quotes\\&quot;'.replace(/\\/g, ''));
    expect(xml).toMatch(/<failure type="fail" message="exited 1: [^"]*">[^<]*measured: exit 1<\/failure>/);
    expect(xml.match(/<testcase /g)).toHaveLength(8);
    expect(xml.trimEnd().endsWith('</testsuites>')).toBe(true);

    const json = await lb(sb, '--json', 'drill', 'site');
    expect(json.code).toBe(4);
    const doc = JSON.parse(json.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.drills[0]).toMatchObject({ job: 'site', verdict: 'fail', scratch: 'directory' });
  });
});

describe('lifeboat demo', () => {
  it('runs a drill of the sample site and shows its verdict and restore time', async () => {
    const r = await runLifeboat(['demo'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/drill: {9}PASS — restore took \d+(\.\d+)? m?s of an RTO of 15m/);
  });
});

describe.runIf(pgRunnable)('interrupted database drills', () => {
  let sb: Sandbox;
  const database = `lb_e2e_drill_${process.pid}`;
  const admin = () => new pg.Client({ ...PG, database: 'postgres' });

  beforeAll(async () => {
    assertPgUp();
    const c = admin();
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${database}`);
    await c.query(`CREATE DATABASE ${database}`);
    await c.end();
    const d = new pg.Client({ ...PG, database });
    await d.connect();
    // Big enough that restoring takes a few seconds: the interrupt lands mid-restore.
    await d.query(
      `CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v, repeat('x', 100) AS pad FROM generate_series(1, 300000) g`,
    );
    await d.query('ALTER TABLE t ADD PRIMARY KEY (id)');
    await d.end();
    sb = await sandbox(() =>
      [
        '  big:',
        '    kind: postgres',
        `    connection: { host: ${PG.host}, port: ${PG.port}, user: ${PG.user} }`,
        `    databases: [${database}]`,
        '    policy: std',
      ].join('\n'),
    );
    const backup = await lb(sb, 'backup', 'big');
    expect(backup.code, backup.stderr).toBe(0);
  });
  afterAll(async () => {
    await rm(sb?.dir ?? '/nonexistent', { recursive: true, force: true });
    const c = admin();
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await c.end();
  });

  /** True once the drill's ephemeral server runs and the table data is being loaded (a backend in COPY). */
  const restoring = async () =>
    (await processesMentioning(sb.scratch)).length > 0 &&
    (await processesMentioning(`${database} [local] COPY`)).length > 0;

  it('SIGINT mid-restore stops the ephemeral server and removes everything', async () => {
    const r = await interruptDrill(sb, ['big'], restoring, 'SIGINT');
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('interrupted by SIGINT');
    expect(await processesMentioning(sb.scratch)).toEqual([]);
    expect(await scratchDirs(sb)).toEqual([]);
    expect(await stateFiles(sb)).toEqual([]);
    const records = await drillRecords(sb);
    expect(records.at(-1)).toMatchObject({ job: 'big', outcome: 'interrupted' });
  });

  it('leftovers of a drill killed with SIGKILL are removed by `lifeboat drill cleanup`', async () => {
    const r = await interruptDrill(sb, ['big'], restoring, 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    expect((await processesMentioning(sb.scratch)).length).toBeGreaterThan(0);
    expect(await scratchDirs(sb)).toHaveLength(1);
    expect(await stateFiles(sb)).toHaveLength(1);

    const cleanup = await lb(sb, 'drill', 'cleanup');
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.stdout).toMatch(/removed ephemeral-postgres of big/);
    expect(await processesMentioning(sb.scratch)).toEqual([]);
    expect(await scratchDirs(sb)).toEqual([]);
    expect(await stateFiles(sb)).toEqual([]);
    expect((await lb(sb, 'drill', 'cleanup')).stdout).toContain('nothing to clean up');
  });
});

describeWith(ext4, 'interrupted image drills', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox(async (dir) => {
      const image = join(dir, 'disk.img');
      await writeFile(image, '');
      await runChecked(['truncate', '-s', '48M', image]);
      await runChecked(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
      return [
        '  disk:',
        '    kind: image',
        `    device: ${image}`,
        '    blockSize: 1MiB',
        '    policy: std',
        '    drill: { assertions: [{ command: ["sleep", "59.71"] }] }',
      ].join('\n');
    });
    const backup = await lb(sb, 'backup', 'disk');
    expect(backup.code, backup.stderr).toBe(0);
  });
  afterAll(async () => {
    await rm(sb?.dir ?? '/nonexistent', { recursive: true, force: true });
  });

  it('SIGINT while the image is mounted detaches the loop device and unmounts it', async () => {
    let image = '';
    const r = await interruptDrill(
      sb,
      ['disk'],
      async () => {
        const [dir] = await scratchDirs(sb);
        if (!dir) return false;
        image = join(sb.scratch, dir, 'image.img');
        return (
          (await isMountPoint(join(sb.scratch, dir, 'mnt'))) &&
          (await processesMentioning('59.71')).length > 0
        );
      },
      'SIGINT',
    );
    expect(r.code, r.stderr).toBe(130);
    expect(image).not.toBe('');
    expect(await loopDevicesOf(image)).toEqual([]);
    expect(await isMountPoint(join(image, '..', 'mnt'))).toBe(false);
    expect(await scratchDirs(sb)).toEqual([]);
    expect(await stateFiles(sb)).toEqual([]);
  });
});
