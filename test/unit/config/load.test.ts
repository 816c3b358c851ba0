import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configPath, formatIssueLine, loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { redact } from '../../../src/platform/redact.js';
import { BASE, machine, NOW, parse, problemLines } from './helpers.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures/config');

describe('the fixtures', () => {
  it('full.yaml is valid and resolves every job kind', async () => {
    const { config, warnings } = parse(await readFile(join(FIXTURES, 'full.yaml'), 'utf8'));
    expect(warnings).toEqual([]);
    expect(Object.values(config.jobs).map((j) => j.kind)).toEqual([
      'files',
      'postgres',
      'mysql',
      'snapshot',
      'image',
    ]);
    const web = config.jobs.web!;
    expect(web).toMatchObject({
      name: 'web',
      policy: 'standard',
      repositories: ['local', 'offsite'],
      schedule: { cron: '0 * * * *', timezone: 'Europe/Berlin' },
      dependsOn: ['shop-db'],
    });
    expect(config.jobs['shop-mysql']!.schedule).toEqual({ cron: '*/15 * * * *', timezone: 'UTC' });
    expect(config.policies.standard).toMatchObject({
      rpo: 3_600_000,
      rto: 1_800_000,
      copies: 2,
      offsite: 1,
      immutableFor: 30 * 86_400_000,
      check: { every: 7 * 86_400_000, readData: 0.1 },
      drill: {
        every: 7 * 86_400_000,
        snapshot: 'latest',
        window: 30 * 86_400_000,
        provisioningCounts: false,
      },
    });
    expect(config.repositories.local).toMatchObject({ packSize: 16 * 2 ** 20, offsite: false });
    expect(config.defaults).toEqual({
      stateDir: '/var/lib/lifeboat',
      scratchRoot: '/var/tmp/lifeboat-scratch',
      host: 'web-01',
      timezone: 'Europe/Berlin',
      concurrency: 2,
      reportWindow: 30 * 86_400_000,
    });
  });

  it('broken.yaml lists every mistake at its line:column', async () => {
    const text = await readFile(join(FIXTURES, 'broken.yaml'), 'utf8');
    expect(problemLines(text)).toEqual([
      '9:10 policies.standard.rpo: "1 hour": unknown unit "hour" — write 1h',
      '10:13 policies.standard.copies: expected a number, got the text "two"',
      '16:5 jobs.web.shedule: unknown key `shedule` — did you mean `schedule`?',
      '17:13 jobs.web.policy: unknown policy `standrd` — did you mean `standard`?',
      '20:15 jobs.db.schedule: "0 0 30 2 *" never fires: day 30 does not exist in February — the longest of these months has 29 days; use "L" for the last day of the month',
    ]);
  });
});

describe('defaults', () => {
  it('fills in machine defaults, every repository and the only policy', () => {
    const { config } = parse(BASE);
    expect(config.defaults).toEqual({
      stateDir: '/home/tester/.local/state/lifeboat',
      scratchRoot: '/home/tester/.local/state/lifeboat/scratch',
      host: 'test-host',
      timezone: 'UTC',
      concurrency: 2,
      reportWindow: 30 * 86_400_000,
    });
    expect(config.version).toBe(1);
    expect(config.jobs.web).toMatchObject({
      policy: 'standard',
      repositories: ['local'],
      include: [],
      exclude: [],
      oneFileSystem: false,
      xattrs: false,
      tags: [],
      dependsOn: [],
      schedule: { cron: '0 * * * *', timezone: 'UTC' },
    });
    expect(config.policies.standard).toMatchObject({ copies: 1, offsite: 0, drill: undefined });
    expect(config.notifications).toEqual({ webhooks: [] });
  });

  it('root, XDG_STATE_HOME, LIFEBOAT_STATE_DIR and TZ change the defaults', async () => {
    const { parseConfigText } = await import('../../../src/config/load.js');
    const as = (facts: Partial<typeof machine>) =>
      parseConfigText(BASE, { now: NOW, machine: { ...machine, ...facts } }).config.defaults;
    expect(as({ uid: 0 }).stateDir).toBe('/var/lib/lifeboat');
    expect(as({ env: { XDG_STATE_HOME: '/x/state' } }).stateDir).toBe('/x/state/lifeboat');
    expect(as({ env: { LIFEBOAT_STATE_DIR: '/srv/lb' } }).stateDir).toBe('/srv/lb');
    expect(as({ env: { TZ: 'europe/berlin' } }).timezone).toBe('Europe/Berlin');
    expect(as({ env: { TZ: ':/etc/localtime' }, systemTimeZone: 'Asia/Tokyo' }).timezone).toBe('Asia/Tokyo');
  });
});

describe('schema problems', () => {
  it('unknown keys get a did-you-mean at the key', () => {
    expect(problemLines(BASE.replace('    rpo: 1h', '    rpo: 1h\n    retension: { last: 3 }'))).toEqual([
      '8:5 policies.standard.retension: unknown key `retension` — did you mean `retention`?',
    ]);
    expect(problemLines(BASE + 'notifications:\n  slack: x\n')).toEqual([
      '14:3 notifications.slack: unknown key `slack` — allowed keys here: `webhooks`, `healthchecks`, `prometheus`',
    ]);
  });

  it('unknown keys inside a job are checked against that kind', () => {
    expect(
      problemLines(BASE.replace('    paths: [/srv/www]', '    paths: [/srv/www]\n    databases: all')),
    ).toEqual([
      '12:5 jobs.web.databases: unknown key `databases` — allowed keys here: `kind`, `paths`, `include`, `exclude`, `oneFileSystem`, `xattrs`, `schedule`, `policy`, `repositories`, `tags`, `dependsOn`, `drill`, …',
    ]);
  });

  it('missing required keys point at the map that needs them', () => {
    expect(problemLines(BASE.replace('    paths: [/srv/www]\n', ''))).toEqual([
      '9:3 jobs.web.paths: missing required key `paths` — a list',
    ]);
  });

  it('an unknown job kind suggests the right one', () => {
    expect(problemLines(BASE.replace('kind: files', 'kind: file'))).toEqual([
      '10:11 jobs.web.kind: unknown kind the text "file" — did you mean `files`?',
    ]);
    expect(problemLines(BASE.replace('    kind: files\n', ''))).toEqual([
      '9:3 jobs.web.kind: missing `kind` — one of files, postgres, mysql, snapshot, image',
    ]);
  });

  it('enum values suggest the nearest', () => {
    const text = BASE.replace('    rpo: 1h', '    rpo: 1h\n    drill: { every: 7d, snapshot: lates }');
    expect(problemLines(text)).toEqual([
      '8:35 policies.standard.drill.snapshot: expected one of latest, random, got the text "lates" — did you mean `latest`?',
    ]);
  });

  it('wrong types say what was found', () => {
    expect(problemLines(BASE.replace('    paths: [/srv/www]', '    paths: /srv/www'))).toEqual([
      '11:12 jobs.web.paths: expected a list, got the text "/srv/www"',
    ]);
    expect(problemLines('defaults: { concurrency: 0 }\n' + BASE)).toEqual([
      '1:26 defaults.concurrency: must be at least 1, got the number 0',
    ]);
  });

  it('never repeats a secret value in a message', () => {
    const lines = problemLines(BASE.replace('password: env:LIFEBOAT_PASSWORD', 'password: 123456789'));
    expect(lines).toEqual(['4:15 repositories.local.password: expected a text, got a number']);
  });

  it('invalid names are reported at the name', () => {
    expect(problemLines(BASE.replace('  web:', '  "my web":'))).toEqual([
      '9:3 jobs["my web"]: invalid name `my web` — names use letters, digits, ".", "_" and "-", starting with a letter or digit',
    ]);
  });

  it('paths must be absolute and ~ is not expanded', () => {
    expect(problemLines(BASE.replace('[/srv/www]', '[srv/www, ~/site]'))).toEqual([
      '11:13 jobs.web.paths[0]: "srv/www" is not an absolute path — paths in lifeboat.yaml start with /',
      '11:22 jobs.web.paths[1]: "~/site": ~ is not expanded — write the full path, e.g. /home/you/…',
    ]);
  });

  it('repository URLs are checked', () => {
    expect(problemLines(BASE.replace('file:///var/backups/lifeboat', 'file://var/backups'))).toEqual([
      '3:10 repositories.local.url: "file://var/backups" has no absolute path — file URLs have three slashes: file:///var/backups',
    ]);
    expect(problemLines(BASE.replace('file:///var/backups/lifeboat', '/var/backups'))).toEqual([
      '3:10 repositories.local.url: "/var/backups" is a path, not a URL — write file:///var/backups',
    ]);
    expect(problemLines(BASE.replace('file:///var/backups/lifeboat', 'sftp://host/x'))[0]).toContain(
      'unsupported repository scheme "sftp://"',
    );
    expect(problemLines(BASE.replace('file:///var/backups/lifeboat', 's3://My_Bucket/x'))[0]).toContain(
      '"My_Bucket" is not a valid S3 bucket name',
    );
  });

  it('a secret reference typo is caught instead of becoming a literal password', () => {
    expect(problemLines(BASE.replace('env:LIFEBOAT_PASSWORD', 'evn:LIFEBOAT_PASSWORD'))).toEqual([
      '4:15 repositories.local.password: unknown secret reference "evn:" — did you mean `env:`? (to use a value that starts with "evn:", write literal:evn:…)',
    ]);
  });

  it('a retention that keeps nothing is refused', () => {
    const text = BASE.replace('    rpo: 1h', '    rpo: 1h\n    retention: { last: 0 }');
    expect(problemLines(text)[0]).toContain('policies.standard.retention: this retention keeps nothing');
  });

  it('version 2 is refused', () => {
    expect(problemLines('version: 2\n' + BASE)).toEqual([
      '1:10 version: this lifeboat reads configuration version 1, got the number 2',
    ]);
  });

  it('a schedule in object form is checked field by field', () => {
    const text = BASE.replace(
      "schedule: '0 * * * *'",
      "schedule: { cron: '0 * * * *', timezone: Europe/Berln }",
    );
    expect(problemLines(text)).toEqual([
      '12:46 jobs.web.schedule.timezone: unknown time zone "Europe/Berln" — did you mean `Europe/Berlin`?',
    ]);
    const bad = BASE.replace("schedule: '0 * * * *'", "schedule: { cron: '0 25 * * *' }");
    expect(problemLines(bad)[0]).toMatch(
      /^12:23 jobs\.web\.schedule\.cron: hour field "25": value 25 is outside 0-23/,
    );
  });
});

describe('YAML problems', () => {
  it('syntax errors carry line:column', () => {
    expect(problemLines('repositories:\n  local: [a, b\njobs: {}\n')).toEqual([
      expect.stringMatching(
        /^3:1 : YAML: .*— check the indentation and closing brackets\/quotes above this position$/,
      ),
    ]);
  });

  it('an unquoted cron expression starting with * gets a hint', () => {
    const lines = problemLines(BASE.replace("schedule: '0 * * * *'", 'schedule: */5 * * * *'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^12:\d+ : YAML: .* — a value starting with \* is read as a YAML alias; quote cron expressions/,
    );
  });

  it('duplicate keys and tabs are explained', () => {
    expect(problemLines('jobs: {}\njobs: {}\n')[0]).toMatch(/^2:1 .*each key may appear once in a map/);
    expect(problemLines('defaults:\n\thost: x\n')[0]).toMatch(/^2:1 .*indent with spaces, not tabs/);
  });

  it('an empty file or a list at the top is explained', () => {
    expect(problemLines('# nothing yet\n')).toEqual([
      '?:? : the file is empty — `lifeboat init` writes a commented starter configuration',
    ]);
    expect(problemLines('- a\n- b\n')[0]).toContain('the top level must be a map of sections');
  });

  it('a section whose entries are all commented out is empty', () => {
    const text = BASE.replace(
      'policies:\n  standard:\n    rpo: 1h\n',
      'policies:\n  # standard:\n  #   rpo: 1h\n',
    );
    expect(problemLines(text)).toEqual([
      '9:3 jobs.web.policy: job `web` names no policy — define one under policies: (e.g. standard: { rpo: 1h }); with a single policy every job uses it',
    ]);
  });

  it('anchors and merge keys work', () => {
    const text =
      BASE + `  api:\n    <<: &files { kind: files, schedule: '0 * * * *' }\n    paths: [/srv/api]\n`;
    expect(Object.keys(parse(text).config.jobs)).toEqual(['web', 'api']);
  });
});

describe('warnings', () => {
  it('a job without schedule and a config without jobs are warned about', () => {
    expect(parse(BASE.replace("    schedule: '0 * * * *'\n", '')).warnings).toEqual([
      '9:3 jobs.web: job `web` has no schedule: it runs only when started by hand, so meeting its rpo of 1h is up to you — add schedule: "0 * * * *" (or run it from your own scheduler)',
    ]);
    const noJobs = BASE.slice(0, BASE.indexOf('jobs:'));
    expect(parse(noJobs).warnings).toEqual([
      '1:1 jobs: no jobs defined: nothing will be backed up — add a job under jobs:, e.g. home: { kind: files, paths: [/home], schedule: "0 * * * *" }',
    ]);
  });

  it('literal secrets are registered for redaction', () => {
    parse(BASE.replace('env:LIFEBOAT_PASSWORD', 'correct-horse-staple'));
    expect(redact('the password is correct-horse-staple')).toBe('the password is ***');
  });

  it('formats issue lines like the CLI does', () => {
    expect(formatIssueLine({ path: 'jobs.web', message: 'm', hint: 'h', line: 3, column: 4 })).toBe(
      '3:4 jobs.web: m — h',
    );
    expect(formatIssueLine({ path: '', message: 'm' })).toBe('(top level): m');
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-load-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the file: --config, then $LIFEBOAT_CONFIG, then ./lifeboat.yaml', () => {
    expect(configPath({ path: 'a.yaml', env: { LIFEBOAT_CONFIG: '/b.yaml' }, cwd: '/w' })).toEqual({
      file: '/w/a.yaml',
      source: 'flag',
    });
    expect(configPath({ env: { LIFEBOAT_CONFIG: 'b.yaml' }, cwd: '/w' })).toEqual({
      file: '/w/b.yaml',
      source: 'env',
    });
    expect(configPath({ env: {}, cwd: '/w' })).toEqual({ file: '/w/lifeboat.yaml', source: 'default' });
  });

  it('reads and validates ./lifeboat.yaml', async () => {
    await writeFile(join(dir, 'lifeboat.yaml'), BASE, { mode: 0o600 });
    const loaded = await loadConfig({ env: {}, cwd: dir, now: NOW, machine });
    expect(loaded.file).toBe(join(dir, 'lifeboat.yaml'));
    expect(loaded.warnings).toEqual([]);
    expect(Object.keys(loaded.config.jobs)).toEqual(['web']);
  });

  it('a missing file names the path and `lifeboat init`', async () => {
    const err = await loadConfig({ path: 'x.yaml', env: {}, cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(
      `no configuration file at ${join(dir, 'x.yaml')} (from --config)`,
    );
    expect((err as ConfigError).hint).toContain(
      '`lifeboat init` writes a commented starter configuration there',
    );
    expect((err as ConfigError).exitCode).toBe(2);
  });

  it('a directory is not a configuration file', async () => {
    await mkdir(join(dir, 'conf'));
    await expect(loadConfig({ path: 'conf', env: {}, cwd: dir })).rejects.toThrow(
      /is a directory, not a configuration file/,
    );
  });

  it('an unreadable file says so', async () => {
    await writeFile(join(dir, 'lifeboat.yaml'), BASE, { mode: 0o000 });
    // root reads any file: as root, drop to the `nobody` user for the read (the directory stays traversable).
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      await chmod(dir, 0o755);
      process.seteuid!(65534);
    }
    try {
      await expect(loadConfig({ env: {}, cwd: dir })).rejects.toThrow(
        /cannot read .*lifeboat\.yaml: permission denied/,
      );
    } finally {
      if (asRoot) process.seteuid!(0);
    }
  });

  it('warns about a literal secret in a world-readable file, not in a private one', async () => {
    const file = join(dir, 'lifeboat.yaml');
    await writeFile(file, BASE.replace('env:LIFEBOAT_PASSWORD', 'literal:s3cret-value'));
    await chmod(file, 0o644);
    const open = await loadConfig({ env: {}, cwd: dir, now: NOW, machine });
    expect(open.warningDetails).toEqual([
      {
        path: 'repositories.local.password',
        message: 'a literal secret in a file other users can read (mode 0644)',
        hint: `chmod 600 ${file}, or use env:NAME, file:/path or command:… instead`,
        line: 4,
        column: 15,
      },
    ]);
    await chmod(file, 0o600);
    expect((await loadConfig({ env: {}, cwd: dir, now: NOW, machine })).warnings).toEqual([]);
  });

  it('reports problems of the file with its name', async () => {
    await writeFile(join(dir, 'lifeboat.yaml'), 'jobs: []\n');
    const err = (await loadConfig({ env: {}, cwd: dir, now: NOW, machine }).catch(
      (e: unknown) => e,
    )) as ConfigError;
    expect(err.file).toBe(join(dir, 'lifeboat.yaml'));
    expect(err.issues).toEqual([
      {
        path: 'repositories',
        message: 'no repositories defined',
        hint: 'add one, e.g. local: { url: file:///var/backups/lifeboat, password: env:LIFEBOAT_PASSWORD }',
        line: 1,
        column: 1,
      },
      { path: 'jobs', message: 'expected a map of names, got a list', line: 1, column: 7 },
    ]);
    expect(err.message).toBe('2 problems in the configuration');
  });
});
