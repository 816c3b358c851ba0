import { describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { errorDocument, exitCodeFor, formatError } from '../../../src/cli/main.js';
import {
  AccessDeniedError,
  ConfigError,
  ExitCode,
  IntegrityError,
  InterruptedError,
  PolicyBreachError,
  RepositoryLockedError,
  RepositoryMissingError,
  UsageError,
} from '../../../src/errors.js';
import { cli } from '../../helpers/cli.js';
import { registerSecret } from '../../../src/platform/redact.js';

describe('exit code mapping', () => {
  it.each([
    [new UsageError('bad flag'), ExitCode.usage],
    [new ConfigError('invalid configuration', 'x.yaml', []), ExitCode.usage],
    [new PolicyBreachError('rpo breached'), ExitCode.policyBreach],
    [new RepositoryMissingError('no repo'), ExitCode.repositoryMissing],
    [new RepositoryLockedError('locked'), ExitCode.repositoryLocked],
    [new AccessDeniedError('wrong password'), ExitCode.accessDenied],
    [new InterruptedError('SIGINT'), ExitCode.interrupted],
    [new IntegrityError('tampered'), ExitCode.internal],
    [new Error('boom'), ExitCode.internal],
    ['a string', ExitCode.internal],
    [new CommanderError(1, 'commander.unknownOption', 'unknown option'), ExitCode.usage],
    [new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), ExitCode.ok],
  ])('%s → %i', (err, code) => {
    expect(exitCodeFor(err)).toBe(code);
  });
});

describe('error rendering', () => {
  it('lists every config issue with line:column and the hint', () => {
    const err = new ConfigError('configuration has 2 problems', '/etc/lifeboat.yaml', [
      {
        path: 'jobs.web.schedul',
        message: 'unknown key',
        hint: 'did you mean `schedule`?',
        line: 7,
        column: 5,
      },
      { path: 'policies.std.rpo', message: 'not a duration', line: 12, column: 10 },
    ]);
    const text = formatError(err, false);
    expect(text).toContain('/etc/lifeboat.yaml');
    expect(text).toContain('7:5 jobs.web.schedul: unknown key — did you mean `schedule`?');
    expect(text).toContain('12:10 policies.std.rpo: not a duration');
  });

  it('hides internal stack traces unless verbose', () => {
    const err = new Error('kaputt');
    expect(formatError(err, false)).not.toContain('at ');
    expect(formatError(err, false)).toContain('--verbose');
    expect(formatError(err, true)).toContain('kaputt');
  });

  it('never prints a registered secret', () => {
    registerSecret('hunter2-secret');
    const err = new AccessDeniedError('login failed with password hunter2-secret for postgres://u:pw@h/db');
    const text = formatError(err, true);
    expect(text).not.toContain('hunter2-secret');
    expect(text).not.toContain(':pw@');
    expect(JSON.stringify(errorDocument(err))).not.toContain('hunter2-secret');
  });
});

describe('commander errors take the usage path', () => {
  it('exits 2 on an unknown flag', async () => {
    const r = await cli(['--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--no-such-flag'");
  });

  it('exits 2 on an unknown command', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
  });

  it('exits 0 for --help and prints usage on stdout', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: lifeboat');
    expect(r.stdout).toContain('Exit codes');
  });
});
