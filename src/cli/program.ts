import { Command, CommanderError, Help, Option } from 'commander';
import type { CommandContext, GlobalOptions } from './context.js';
import { createLogger } from '../platform/logger.js';
import { defaultClock } from '../platform/clock.js';
import { placeholderTerm, registerCommands, type ContextFactory } from './commands/index.js';
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

/**
 * Parse `argv` (node, script, arguments…) and run the command it names; handlers get a
 * CommandContext built from the global flags. The root lists every command through a
 * placeholder (see commands/index.ts): the command that runs is loaded then, into a
 * second root that parses the same arguments again.
 */
export async function parseProgram(
  argv: readonly string[],
  io: ProgramIo,
  exit: ExitState = { code: 0 },
): Promise<void> {
  const program = rootCommand(io);
  registerCommands(program, async (register) => {
    const real = rootCommand(io);
    register(real, contextFactory(io, exit));
    await real.parseAsync(argv);
  });
  await program.parseAsync(argv);
}

/** The root command with the global options, help and output, without subcommands. */
export function rootCommand(io: ProgramIo): Command {
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
    .configureHelp({ subcommandTerm: (cmd) => placeholderTerm(cmd) ?? standardHelp.subcommandTerm(cmd) })
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
  return program;
}

const standardHelp = new Help();

/** Context of a command run: global flags, logger, clock and output of `io`. */
export function contextFactory(io: ProgramIo, exit: ExitState): ContextFactory {
  return (cmd: Command): CommandContext => {
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
}

export { CommanderError };
