import { describe, expect, it } from 'vitest';
import { COMMANDS, registerAllCommands } from '../../../src/cli/commands/index.js';
import { contextFactory, rootCommand, type ProgramIo } from '../../../src/cli/program.js';
import { cli } from '../../helpers/cli.js';

// The root lists placeholders (name, usage term, summary) and loads a command's module only
// when it runs. Their text must be what the real commands would show.
function eagerHelp(): Promise<string> {
  let out = '';
  const io: ProgramIo = {
    out: (t) => void (out += t),
    err: () => {},
    env: { NO_COLOR: '1' },
    stderrIsTty: false,
  };
  const program = rootCommand(io);
  return registerAllCommands(program, contextFactory(io, { code: 0 })).then(() => {
    program.outputHelp();
    return out;
  });
}

describe('lazily loaded commands', () => {
  it('`lifeboat --help` is the help of the program with every command loaded', async () => {
    const lazy = await cli(['--help']);
    expect(lazy.code).toBe(0);
    expect(lazy.stdout).toBe(await eagerHelp());
    for (const { name } of COMMANDS) expect(lazy.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
  });

  it.each([
    ['backup', '--help'],
    ['help', 'restore'],
    ['repo', 'key', '--help'],
  ])('`lifeboat %s %s` prints the real command’s help', async (...args) => {
    const r = await cli(args.filter(Boolean));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^Usage: lifeboat (backup \[options\] \[jobs\.\.\.\]|restore \[options\] <job>|repo key)/,
    );
    expect(r.stdout).toMatch(/Options:/);
  });

  it('an unknown command still gets a suggestion', async () => {
    const r = await cli(['bakup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Did you mean backup\?/);
  });
});
