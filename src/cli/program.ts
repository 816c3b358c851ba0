import { Command, CommanderError, Option } from 'commander';
import type { CommandContext, GlobalOptions } from './context.js';
import { createLogger } from '../platform/logger.js';
import { defaultClock } from '../platform/clock.js';
import { registerCommands } from './commands/index.js';
import { VERSION } from '../version.js';
import { worseExitCode } from '../errors.js';

/** The exit code a command asked for without throwing (the worst one wins). */
export interface ExitState {
  code: number;
}

export interface ProgramIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  stderrIsTty: boolean;
}

/** Build the commander program; handlers get a CommandContext built from the global flags. */
export function buildProgram(io: ProgramIo, exit: ExitState = { code: 0 }): Command {
  const program = new Command('lifeboat');
  program
    .description(
      'Backup and disaster recovery you can prove: encrypted, deduplicated restore points, ' +
        'RPO/RTO policies, scheduled restore drills and compliance reports.',
    )
    .version(VERSION, '-V, --version', 'print the lifeboat version')
    .option('-c, --config <file>', 'configuration file (default: $LIFEBOAT_CONFIG or ./lifeboat.yaml)')
    .option('--json', 'print one JSON document on stdout (logs and progress go to stderr)', false)
    .option('-q, --quiet', 'print nothing but the result and errors', false)
    .option('-v, --verbose', 'more detail, including stack traces of internal errors', false)
    .addOption(new Option('--no-color', 'no colours (also when NO_COLOR is set)'))
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  lifeboat demo                      see it work on sample data, no setup\n' +
      '  lifeboat init                      write a commented starter lifeboat.yaml\n' +
      '  lifeboat config validate           check the configuration, every problem at once\n' +
      '  lifeboat repo init && lifeboat backup\n' +
      '  lifeboat restore web --target /tmp/web      (databases: --into DSN)\n' +
      '  lifeboat run --due                 from cron: whatever is due (lifeboat schedule install)\n' +
      '  lifeboat drill --format junit      in CI: prove restores, exit 4 on failure\n' +
      '  lifeboat status / lifeboat report  where the RPO/RTO targets stand, with evidence\n' +
      '\nExit codes: 0 ok, 1 internal, 2 usage/config, 3 partial, 4 policy breach or failed drill,\n' +
      '10 repository missing, 11 repository locked, 12 wrong password/access denied, 130 interrupted.\n' +
      'Docs: docs/ in the lifeboat package.',
  );

  const context = (cmd: Command): CommandContext => {
    const g = cmd.optsWithGlobals() as Partial<GlobalOptions> & { color?: boolean };
    const color = g.color !== false && !io.env.NO_COLOR && !g.json && io.stderrIsTty;
    const globals: GlobalOptions = {
      config: g.config,
      json: Boolean(g.json),
      quiet: Boolean(g.quiet),
      verbose: Boolean(g.verbose),
      color,
    };
    return {
      globals,
      logger: createLogger({
        level: globals.verbose ? 'debug' : globals.quiet ? 'warn' : 'info',
        color,
        write: (line) => io.err(line + '\n'),
      }),
      clock: defaultClock(io.env),
      out: io.out,
      interactive: io.stderrIsTty && !globals.quiet && !globals.json,
      env: io.env,
      setExitCode: (code) => {
        exit.code = worseExitCode(exit.code, code);
      },
    };
  };

  registerCommands(program, context);
  return program;
}

export { CommanderError };
