import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIFEBOAT_BIN } from '../helpers/binary.js';
import { ensureBuilt } from './runHarness.js';

// What the built CLI loads for a command: each command's module and its dependencies are
// imported only when that command runs (src/cli/commands/index.ts). A module loader hook
// (node --import, module.register) writes down every module the process loads.
let dir: string;
let config: string;
let register: string;
const env = { LIFEBOAT_TEST_PW: 'startup test password' };

beforeAll(async () => {
  await ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'lb-e2e-startup-'));
  const hooks = join(dir, 'hooks.mjs');
  await writeFile(
    hooks,
    "import { appendFileSync } from 'node:fs';\n" +
      'export async function load(url, context, next) {\n' +
      '  appendFileSync(process.env.LIFEBOAT_TEST_LOADED, url + "\\n");\n' +
      '  return next(url, context);\n' +
      '}\n',
  );
  register = join(dir, 'register.mjs');
  await writeFile(
    register,
    "import { register } from 'node:module';\n" + `register(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  const source = join(dir, 'site');
  await mkdir(join(source, 'pages'), { recursive: true });
  await writeFile(join(source, 'pages', 'index.html'), '<h1>hello</h1>\n');
  config = join(dir, 'lifeboat.yaml');
  await writeFile(
    config,
    [
      `defaults: { stateDir: ${join(dir, 'state')} }`,
      'repositories:',
      `  main: { url: file://${join(dir, 'repo')}, password: env:LIFEBOAT_TEST_PW }`,
      'policies:',
      '  standard: { rpo: 1d, rto: 1h }',
      'jobs:',
      `  site: { kind: files, paths: [${source}], policy: standard }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let runs = 0;
/** Run `lifeboat ARGS` under the hook; the modules it loaded, as paths relative to dist/ or node_modules/. */
async function loadedBy(...args: string[]): Promise<string[]> {
  const list = join(dir, `loaded-${runs++}.txt`);
  await promisify(execFile)(process.execPath, ['--import', register, LIFEBOAT_BIN, ...args], {
    env: { ...process.env, ...env, NO_COLOR: '1', LIFEBOAT_TEST_LOADED: list },
  });
  return (await readFile(list, 'utf8'))
    .split('\n')
    .filter((url) => url.startsWith('file:'))
    .map((url) => {
      const inPackage = url.lastIndexOf('/node_modules/');
      if (inPackage >= 0) return url.slice(inPackage + 1);
      return url.replace(/^.*?\/dist\//, 'dist/');
    });
}

const packagesIn = (loaded: string[]) =>
  new Set(
    loaded
      .filter((m) => m.startsWith('node_modules/'))
      .map((m) =>
        m
          .split('/')
          .slice(1, m.startsWith('node_modules/@') ? 3 : 2)
          .join('/'),
      ),
  );

describe('start-up cost', () => {
  it('--version and --help load no command and no heavy dependency', async () => {
    for (const args of [['--version'], ['--help']]) {
      const loaded = await loadedBy(...args);
      expect(loaded).toContain('dist/cli/main.js');
      expect([...packagesIn(loaded)]).toEqual(['commander']);
      expect(loaded.filter((m) => /^dist\/(app|config|repository|sources|storage|report)\//.test(m))).toEqual(
        [],
      );
      expect(loaded.filter((m) => /^dist\/cli\/commands\/(?!index\.js)/.test(m))).toEqual([]);
    }
  });

  it('a command loads its own module only; its help is the real one', async () => {
    const loaded = await loadedBy('backup', '--help');
    expect(loaded.filter((m) => m.startsWith('dist/cli/commands/'))).toEqual([
      'dist/cli/commands/index.js',
      'dist/cli/commands/backup.js',
    ]);
  });

  it('a files backup to a local repository loads no database, image, S3 or report code', async () => {
    await loadedBy('--config', config, 'repo', 'init');
    const loaded = await loadedBy('--config', config, 'backup', 'site');
    expect(loaded).toContain('dist/sources/files/walk.js');
    const packages = packagesIn(loaded);
    for (const name of ['ora', 'pg', 'mysql2', '@aws-sdk/client-s3']) expect(packages).not.toContain(name);
    expect(
      loaded.filter((m) =>
        /^dist\/(sources\/(mysql|postgres|image|snapshot)|storage\/s3|report|scratch)\//.test(m),
      ),
    ).toEqual([]);
    // The hook does see packages: the configuration is read with yaml.
    expect(packages).toContain('yaml');
  });

  it('snapshots without snapshot jobs loads no source code', async () => {
    // The repository is the one the backup test above created.
    const loaded = await loadedBy('--config', config, 'snapshots');
    expect(loaded).toContain('dist/app/snapshots.js');
    expect(loaded.filter((m) => /^dist\/(sources|app\/kinds)\//.test(m))).toEqual([]);
  });
});

/** Whether this machine's zone is UTC by /etc/localtime (where Intl would look with TZ unset). */
function localtimeIsUtc(): boolean {
  try {
    return /zoneinfo\/(Etc\/)?UTC$/.test(readlinkSync('/etc/localtime'));
  } catch {
    return false;
  }
}

describe('start-up memory', () => {
  // Intl's first use pages in ~8 MiB of ICU data, which would sit under the key derivation of every command.
  it.runIf(localtimeIsUtc())('reading a configuration with UTC schedules does not use Intl', async () => {
    const scheduled = join(dir, 'scheduled.yaml');
    await writeFile(
      scheduled,
      (await readFile(config, 'utf8')).replace(
        'policy: standard }',
        'policy: standard, schedule: "0 3 * * *" }',
      ),
      { mode: 0o600 },
    );
    const probe = join(dir, 'intl-probe.cjs');
    await writeFile(
      probe,
      'const D = Intl.DateTimeFormat; let used = false;\n' +
        'Intl.DateTimeFormat = function (...a) { used = true; return new D(...a); };\n' +
        "process.on('exit', () => { if (used) process.stderr.write('Intl.DateTimeFormat used\\n'); });\n",
    );
    const { TZ: _tz, ...withoutTz } = process.env;
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--require', probe, LIFEBOAT_BIN, '--config', scheduled, 'config', 'validate'],
      { env: { ...withoutTz, ...env, NO_COLOR: '1' } },
    );
    expect(stdout).toMatch(/^ok: 1 job/);
    expect(stderr).not.toContain('no schedule');
    expect(stderr).not.toContain('Intl.DateTimeFormat used');
  });
});

describe('bin/lifeboat as a program', () => {
  it('starts Node with the larger old generation, also through a symlink, and stays a Node script', async () => {
    const link = join(dir, 'lifeboat-link');
    await symlink(LIFEBOAT_BIN, link);
    // The shell line re-executes Node on the script: a child of the program sees Node's own argv.
    const { stdout } = await promisify(execFile)(link, ['--version']);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const probe = join(dir, 'argv.cjs');
    // The same launcher line in front of a probe: what Node was started with.
    const launcher = (await readFile(LIFEBOAT_BIN, 'utf8')).split('\n').slice(0, 2).join('\n');
    await writeFile(probe, `${launcher}\nconsole.log(JSON.stringify(process.execArgv));\n`, { mode: 0o755 });
    const shown = await promisify(execFile)(probe, []);
    expect(JSON.parse(shown.stdout)).toEqual(['--initial-old-space-size=64']);
    // Run by Node itself, the launcher line is a harmless expression.
    const direct = await promisify(execFile)(process.execPath, [probe]);
    expect(JSON.parse(direct.stdout)).toEqual([]);
  });
});
