import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** Builds the context for a command from its parsed options. */
export type ContextFactory = (cmd: Command) => CommandContext;

/** What a command module exports: adds its command (options, help, action) to a program. */
export type RegisterCommand = (program: Command, context: ContextFactory) => void;

/**
 * One top-level command as the root help lists it, and where its implementation is.
 * `term` and `summary` are what `lifeboat --help` prints for it (commander's own
 * rendering of the real command; test/unit/cli/lazy-commands.test.ts keeps them equal).
 */
interface CommandEntry {
  name: string;
  term: string;
  summary: string;
  load: () => Promise<RegisterCommand>;
}

/**
 * Every command, in the order of `lifeboat --help`. A command's module (and with it the
 * configuration schema, the job kinds, the report renderers…) is imported only when that
 * command runs, so `--version`, `--help` and each command pay only for what they use.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'init',
    term: 'init',
    summary: 'write a commented starter configuration (never overwrites)',
    load: async () => (await import('./init.js')).registerInit,
  },
  {
    name: 'config',
    term: 'config',
    summary: 'check the configuration file and print its JSON Schema',
    load: async () => (await import('./config.js')).registerConfig,
  },
  {
    name: 'repo',
    term: 'repo',
    summary: 'create and look after repositories',
    load: async () => (await import('./repo.js')).registerRepo,
  },
  {
    name: 'backup',
    term: 'backup [options] [jobs...]',
    summary: 'back up jobs into their repository (all jobs when none is named)',
    load: async () => (await import('./backup.js')).registerBackup,
  },
  {
    name: 'snapshots',
    term: 'snapshots [options]',
    summary: 'list restore points, per repository, and local snapshots kept on this machine',
    load: async () => (await import('./snapshots.js')).registerSnapshots,
  },
  {
    name: 'ls',
    term: 'ls [options] <snapshot> [path]',
    summary: 'list the contents of a snapshot',
    load: async () => (await import('./ls.js')).registerLs,
  },
  {
    name: 'restore',
    term: 'restore [options] <job>',
    summary: 'restore a restore point of a job (files, image, or database)',
    load: async () => (await import('./restore.js')).registerRestore,
  },
  {
    name: 'demo',
    term: 'demo [options]',
    summary: 'see lifeboat work on sample data, with no setup (used by `npm run demo`)',
    load: async () => (await import('./demo.js')).registerDemo,
  },
  {
    name: 'check',
    term: 'check [options]',
    summary: 'verify that every snapshot can be restored (structure, references, optionally all data)',
    load: async () => (await import('./check.js')).registerCheck,
  },
  {
    name: 'forget',
    term: 'forget [options] [jobs...]',
    summary: "remove snapshots that the jobs' retention rules no longer keep (data goes with `prune`)",
    load: async () => (await import('./forget.js')).registerForget,
  },
  {
    name: 'prune',
    term: 'prune [options]',
    summary: 'delete data no snapshot needs (after `forget`) and leftovers of interrupted backups',
    load: async () => (await import('./prune.js')).registerPrune,
  },
  {
    name: 'run',
    term: 'run [options]',
    summary: 'run what is due (the cron entry point), or every activity of the named jobs now',
    load: async () => (await import('./run.js')).registerRun,
  },
  {
    name: 'status',
    term: 'status [jobs...]',
    summary: 'per job: restore-point age against the RPO, next run, last drill against the RTO, copies',
    load: async () => (await import('./status.js')).registerStatus,
  },
  {
    name: 'schedule',
    term: 'schedule',
    summary: 'when jobs run, and the scheduler entries that call `lifeboat run --due`',
    load: async () => (await import('./schedule.js')).registerSchedule,
  },
  {
    name: 'drill',
    term: 'drill [options] [jobs...]',
    summary: 'restore jobs into throwaway scratch environments, verify them and time them against the RTO',
    load: async () => (await import('./drill.js')).registerDrill,
  },
  {
    name: 'copy',
    term: 'copy [options]',
    summary: 'copy restore points another repository lacks into it (re-encrypted with its keys)',
    load: async () => (await import('./copy.js')).registerCopy,
  },
  {
    name: 'report',
    term: 'report [options]',
    summary: 'compliance report: per job and control, whether the policy is met, with the evidence',
    load: async () => (await import('./report.js')).registerReport,
  },
  {
    name: 'runbook',
    term: 'runbook [options]',
    summary: 'the recovery runbook: jobs in restore order, where their restore points are, exact commands',
    load: async () => (await import('./runbook.js')).registerRunbook,
  },
];

/** The help term of a placeholder command (commander's own for every other one). */
const placeholderTerms = new WeakMap<Command, string>();

/** The root help's term for a placeholder (undefined for a real command). */
export function placeholderTerm(cmd: Command): string | undefined {
  return placeholderTerms.get(cmd);
}

/**
 * Add a placeholder for every command: its name and summary for the root help and for
 * "did you mean", and an action that accepts any arguments. When one runs, its module is
 * imported and `runReal` parses the original arguments again with the real command.
 */
export function registerCommands(
  program: Command,
  runReal: (register: RegisterCommand) => Promise<void>,
): void {
  const placeholder = (name: string, summary: string) =>
    program
      .command(name)
      .description(summary)
      .helpOption(false) // `lifeboat X --help` is answered by the real command
      .allowUnknownOption()
      .allowExcessArguments();
  for (const entry of COMMANDS) {
    const cmd = placeholder(entry.name, entry.summary)
      .argument('[args...]')
      .action(async () => runReal(await entry.load()));
    placeholderTerms.set(cmd, entry.term);
  }
  // commander's own `help X` prints X's help synchronously, which a placeholder cannot
  // give: this one loads X, whose real root answers `help X`. Same place and text in the help.
  program.helpCommand(false);
  placeholder('help', 'display help for command')
    .argument('[command]')
    .action(async (name: string | undefined) => {
      const entry = COMMANDS.find((e) => e.name === name);
      if (name === undefined) program.help();
      if (!entry) program.help({ error: true }); // as commander does for an unknown command
      await runReal(await entry.load());
    });
}

/** Register every command for real (tests compare it with the placeholders). */
export async function registerAllCommands(program: Command, context: ContextFactory): Promise<void> {
  for (const entry of COMMANDS) (await entry.load())(program, context);
}
