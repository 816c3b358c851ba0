import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/main.js';
import type { ProgramIo } from '../../../src/cli/program.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures/config');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-config-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Run the CLI with captured output and a controlled environment. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const io: ProgramIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    env: {
      HOME: dir,
      LIFEBOAT_STATE_DIR: join(dir, 'state'),
      TZ: 'UTC',
      LIFEBOAT_FAKE_NOW: '2025-01-01T00:00:00Z',
      ...env,
    },
    stderrIsTty: false,
  };
  const code = await runCli(['node', 'lifeboat', ...args], io);
  return { code, out, err };
}

describe('lifeboat config validate', () => {
  it('says ok with a summary for a valid file', async () => {
    const r = await cli(['--config', join(FIXTURES, 'full.yaml'), 'config', 'validate']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^ok: 5 jobs \(1 files, 1 postgres, 1 mysql, 1 snapshot, 1 image\), 2 repositories \(1 offsite\), 3 policies — .*full\.yaml\n$/,
    );
  });

  it('--json prints one document with the counts', async () => {
    const r = await cli(['--config', join(FIXTURES, 'full.yaml'), '--json', 'config', 'validate']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ ok: true, jobs: 5, repositories: 2, policies: 3, warnings: [] });
  });

  it('lists every problem with line:column and exits 2', async () => {
    const r = await cli(['--config', join(FIXTURES, 'broken.yaml'), 'config', 'validate']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('error: 5 problems in the configuration');
    expect(r.err).toContain('9:10 policies.standard.rpo: "1 hour": unknown unit "hour" — write 1h');
    expect(r.err).toContain('16:5 jobs.web.shedule: unknown key `shedule` — did you mean `schedule`?');
    expect(r.err).toContain('17:13 jobs.web.policy: unknown policy `standrd` — did you mean `standard`?');
  });

  it('--json puts the problems in the error document', async () => {
    const r = await cli(['--config', join(FIXTURES, 'broken.yaml'), '--json', 'config', 'validate']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.out);
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe('E_CONFIG');
    expect(doc.error.issues).toHaveLength(5);
    expect(doc.error.issues[0]).toMatchObject({ path: 'policies.standard.rpo', line: 9, column: 10 });
  });

  it('prints warnings on stderr and still exits 0', async () => {
    const file = join(dir, 'lifeboat.yaml');
    await writeFile(
      file,
      'repositories:\n  local: { url: "file:///srv/b", password: hunter2hunter2 }\npolicies:\n  p: { rpo: 1h }\njobs:\n  web: { kind: files, paths: [/srv] }\n',
    );
    await chmod(file, 0o644);
    const r = await cli(['config', 'validate'], { LIFEBOAT_CONFIG: file });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: 1 job \(1 files\), 1 repository, 1 policy — .* \(2 warnings\)\n$/);
    expect(r.err).toContain(
      'warning: 2:44 repositories.local.password: a literal secret in a file other users can read (mode 0644)',
    );
    expect(r.err).toContain('warning: 6:3 jobs.web: job `web` has no schedule');
    expect(r.err).not.toContain('hunter2hunter2');
  });

  it('a missing file says how to create one', async () => {
    const r = await cli(['config', 'validate'], { LIFEBOAT_CONFIG: join(dir, 'nope.yaml') });
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      `error: no configuration file at ${join(dir, 'nope.yaml')} (from $LIFEBOAT_CONFIG)`,
    );
    expect(r.err).toContain('hint: `lifeboat init` writes a commented starter configuration there');
  });

  it('has help with examples', async () => {
    const r = await cli(['config', 'validate', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Examples:');
    expect(r.out).toContain('lifeboat config validate --json');
  });
});

describe('lifeboat config schema', () => {
  it('prints a JSON Schema', async () => {
    const r = await cli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(schema.properties)).toEqual([
      'version',
      'defaults',
      'repositories',
      'policies',
      'jobs',
      'notifications',
    ]);
  });
});

describe('lifeboat init', () => {
  it('writes a starter with mode 0600 that validates, and says what to do next', async () => {
    const file = join(dir, 'conf', 'lifeboat.yaml');
    const r = await cli(['--config', file, 'init']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`wrote ${file} (mode 0600)`);
    expect(r.out).toContain('1. export LIFEBOAT_PASSWORD=');
    expect(r.out).toContain(`lifeboat --config ${file} config validate`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).toContain(`url: file://${join(dir, 'state', 'repository')}`);
    const v = await cli(['--config', file, 'config', 'validate']);
    expect(v.err).toBe('');
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^ok: 1 job \(1 files\), 1 repository, 1 policy/);
  });

  it('uses $LIFEBOAT_CONFIG like every other command', async () => {
    const file = join(dir, 'env.yaml');
    const r = await cli(['init', '--json'], { LIFEBOAT_CONFIG: file });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, file, mode: '0600' });
  });

  it('never overwrites an existing file', async () => {
    const file = join(dir, 'lifeboat.yaml');
    await writeFile(file, '# mine\n');
    const r = await cli(['--config', file, 'init']);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`error: ${file} already exists; lifeboat init never overwrites a configuration`);
    expect(await readFile(file, 'utf8')).toBe('# mine\n');
  });
});
