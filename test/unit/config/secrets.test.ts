import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearSecretCache, resolveSecret } from '../../../src/config/secrets.js';
import {
  describeSecretRef,
  isSecretRef,
  readSecretRef,
  splitCommandLine,
} from '../../../src/config/secretRef.js';
import { ConfigError } from '../../../src/errors.js';
import { redact } from '../../../src/platform/redact.js';

describe('readSecretRef', () => {
  it.each([
    ['env:LIFEBOAT_PASSWORD', { kind: 'env', name: 'LIFEBOAT_PASSWORD' }],
    ['file:/etc/lifeboat/pw', { kind: 'file', path: '/etc/lifeboat/pw' }],
    [
      'command:pass show "backup/lifeboat main"',
      {
        kind: 'command',
        argv: ['pass', 'show', 'backup/lifeboat main'],
        text: 'pass show "backup/lifeboat main"',
      },
    ],
    ['literal:env:NOT_A_REF', { kind: 'literal', value: 'env:NOT_A_REF' }],
    ['hunter2-correct', { kind: 'literal', value: 'hunter2-correct' }],
    ['postgres://u:pw@db/shop', { kind: 'literal', value: 'postgres://u:pw@db/shop' }],
  ])('%s', (text, ref) => {
    const r = readSecretRef(text);
    expect(r).toEqual({ ok: true, ref });
    if (r.ok) expect(isSecretRef(r.ref)).toBe(true);
  });

  it.each([
    ['env:1BAD', /does not name an environment variable/, /env:LIFEBOAT_PASSWORD/],
    ['env:', /does not name an environment variable/, undefined],
    ['file:relative/pw', /is not an absolute path/, /file:\/full\/path/],
    ['command:', /no command given/, /command:pass show/],
    ['command:pass "unterminated', /unterminated double quote/, undefined],
    ['evn:X', /unknown secret reference "evn:"/, /did you mean `env:`/],
    ['fiel:/x', /unknown secret reference "fiel:"/, /did you mean `file:`/],
    ['cmd:pass show x', /unknown secret reference "cmd:"/, /did you mean `command:`/],
    ['', /empty secret/, undefined],
    [42, /expected a secret reference/, undefined],
  ])('%j is refused', (text, message, hint) => {
    const r = readSecretRef(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toMatch(message);
      if (hint) expect(r.hint).toMatch(hint);
    }
  });

  it('describes references without values', () => {
    const lit = readSecretRef('s3cr3t-value');
    expect(lit.ok && describeSecretRef(lit.ref)).toBe('a literal value');
    const env = readSecretRef('env:X');
    expect(env.ok && describeSecretRef(env.ref)).toBe('env:X');
  });
});

describe('splitCommandLine', () => {
  it.each([
    ['pass show x', ['pass', 'show', 'x']],
    ['  a   b  ', ['a', 'b']],
    [`a 'b c' "d \\"e\\"" f\\ g`, ['a', 'b c', 'd "e"', 'f g']],
    [`a '' b`, ['a', '', 'b']],
    [`echo $HOME | cat`, ['echo', '$HOME', '|', 'cat']],
  ])('%s', (text, argv) => {
    expect(splitCommandLine(text)).toEqual({ ok: true, argv });
  });
  it('refuses an unterminated quote', () => {
    expect(splitCommandLine(`a 'b`)).toMatchObject({ ok: false, message: 'unterminated single quote' });
  });
});

describe('resolveSecret', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-secrets-'));
    clearSecretCache();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fails = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    return err as ConfigError;
  };

  it('reads env: and registers the value for redaction', async () => {
    expect(await resolveSecret('env:LB_TEST_PW', { env: { LB_TEST_PW: 'from-the-env-123' } })).toBe(
      'from-the-env-123',
    );
    expect(redact('pw from-the-env-123')).toBe('pw ***');
  });

  it('a missing or empty env var names the reference and what to do, never a value', async () => {
    const err = await fails(resolveSecret('env:LB_NOPE', { env: {}, what: 'repositories.local.password' }));
    expect(err.message).toBe('secret env:LB_NOPE for repositories.local.password is not set');
    expect(err.hint).toContain('export LB_NOPE=');
    expect((await fails(resolveSecret('env:LB_EMPTY', { env: { LB_EMPTY: '' } }))).message).toContain(
      'is empty',
    );
  });

  it('reads file: with the trailing newline trimmed', async () => {
    const file = join(dir, 'pw');
    await writeFile(file, 'file-secret-value\n', { mode: 0o600 });
    expect(await resolveSecret(`file:${file}`, { env: {} })).toBe('file-secret-value');
    await writeFile(join(dir, 'crlf'), 'crlf-secret\r\n', { mode: 0o600 });
    expect(await resolveSecret(`file:${join(dir, 'crlf')}`, { env: {} })).toBe('crlf-secret');
  });

  it('refuses a world-readable secret file and warns about a group-readable one', async () => {
    const file = join(dir, 'pw');
    await writeFile(file, 'loose-secret\n');
    await chmod(file, 0o644);
    const err = await fails(resolveSecret(`file:${file}`, { env: {} }));
    expect(err.message).toBe(`secret file:${file} is readable by every user (mode 0644); refusing to use it`);
    expect(err.hint).toContain(`chmod 600 ${file}`);
    await chmod(file, 0o640);
    const warnings: string[] = [];
    expect(await resolveSecret(`file:${file}`, { env: {}, onWarning: (w) => warnings.push(w) })).toBe(
      'loose-secret',
    );
    expect(warnings).toEqual([
      `secret file:${file} is readable by its group (mode 0640); make sure only lifeboat's user is in it`,
    ]);
  });

  it('a missing, empty or directory secret file is a clear error', async () => {
    expect((await fails(resolveSecret(`file:${join(dir, 'nope')}`, { env: {} }))).message).toContain(
      'does not exist',
    );
    await writeFile(join(dir, 'empty'), '\n', { mode: 0o600 });
    expect((await fails(resolveSecret(`file:${join(dir, 'empty')}`, { env: {} }))).message).toContain(
      'is empty',
    );
    await mkdir(join(dir, 'd'), { mode: 0o700 });
    expect((await fails(resolveSecret(`file:${join(dir, 'd')}`, { env: {} }))).message).toContain(
      'is a directory',
    );
  });

  it('runs command: without a shell and takes stdout', async () => {
    const script = join(dir, 'print-secret');
    await writeFile(script, '#!/bin/sh\nprintf "%s\\n" "cmd-secret-$1"\n', { mode: 0o700 });
    expect(await resolveSecret(`command:${script} 'a b'`, { env: {} })).toBe('cmd-secret-a b');
    expect(redact('x cmd-secret-a b')).toBe('x ***');
  });

  it('asks a command once per process', async () => {
    const counter = join(dir, 'count');
    const script = join(dir, 'counting');
    await writeFile(script, `#!/bin/sh\necho x >> ${counter}\necho counted-secret\n`, { mode: 0o700 });
    await resolveSecret(`command:${script}`, { env: {} });
    await resolveSecret(`command:${script}`, { env: {} });
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(counter, 'utf8')).toBe('x\n');
  });

  it('a failing, silent or missing command is a clear error', async () => {
    const script = join(dir, 'fail');
    await writeFile(script, '#!/bin/sh\necho "vault is sealed" >&2\nexit 3\n', { mode: 0o700 });
    const err = await fails(
      resolveSecret(`command:${script}`, { env: {}, what: 'repositories.local.password' }),
    );
    expect(err.message).toBe(
      `secret command:${script} for repositories.local.password failed: it exited with code 3: vault is sealed`,
    );
    expect((await fails(resolveSecret('command:true', { env: {} }))).message).toContain('printed nothing');
    const missing = await fails(resolveSecret('command:/nonexistent/lifeboat-secret-tool', { env: {} }));
    expect(missing.message).toContain('could not be run');
    expect(missing.hint).toContain('no shell is used');
  });

  it('returns literals and parsed references as they are', async () => {
    const parsed = readSecretRef('literal:plain-literal-secret');
    if (!parsed.ok) throw new Error('unreachable');
    expect(await resolveSecret(parsed.ref, { env: {} })).toBe('plain-literal-secret');
    expect((await fails(resolveSecret('evn:X', { env: {} }))).message).toBe(
      'secret: unknown secret reference "evn:"',
    );
  });
});
