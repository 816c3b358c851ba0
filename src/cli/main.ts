import { CommanderError } from 'commander';
import { ConfigError, ExitCode, InterruptedError, LifeboatError, type ExitCodeValue } from '../errors.js';
import { runCleanups } from '../platform/cleanup.js';
import { redact } from '../platform/redact.js';
import { parseProgram, type ProgramIo } from './program.js';

/** Turn any thrown value into the exit code documented in docs/exit-codes.md. */
export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof LifeboatError) return err.exitCode;
  if (err instanceof CommanderError) {
    // --help and --version end with exit code 0 through the same path.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  return ExitCode.internal;
}

/** The error as the --json document on stdout. */
export function errorDocument(err: unknown): Record<string, unknown> {
  if (err instanceof ConfigError) {
    return {
      ok: false,
      error: {
        code: err.code,
        message: redact(err.message),
        file: err.file,
        hint: err.hint,
        issues: err.issues,
      },
    };
  }
  if (err instanceof LifeboatError) {
    return {
      ok: false,
      error: { code: err.code, message: redact(err.message), hint: err.hint, details: err.details },
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { ok: false, error: { code: 'E_INTERNAL', message: redact(message) } };
}

/** Human rendering of an error for stderr: what happened, the problems, what to do. */
export function formatError(err: unknown, verbose: boolean): string {
  if (err instanceof ConfigError) {
    const where = err.file ? ` (${err.file})` : '';
    const lines = [`error: ${err.message}${where}`];
    for (const issue of err.issues) {
      const pos = issue.line ? `${issue.line}:${issue.column ?? 1} ` : '';
      lines.push(
        `  ${pos}${issue.path || '(root)'}: ${issue.message}${issue.hint ? ` — ${issue.hint}` : ''}`,
      );
    }
    if (err.hint) lines.push(`hint: ${err.hint}`);
    return redact(lines.join('\n'));
  }
  if (err instanceof LifeboatError) {
    const lines = [`error: ${err.message}`];
    if (err.hint) lines.push(`hint: ${err.hint}`);
    if (verbose && err.cause instanceof Error && err.cause.stack) lines.push(err.cause.stack);
    return redact(lines.join('\n'));
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const text = verbose
    ? (e.stack ?? e.message)
    : `internal error: ${e.message}\n(run with --verbose for the stack trace; please report this)`;
  return redact(text);
}

const defaultIo = (): ProgramIo => ({
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  env: process.env,
  stderrIsTty: Boolean(process.stderr.isTTY),
});

/** Run the CLI and return the exit code (does not exit; tests call this). */
export async function runCli(argv: string[], io: ProgramIo = defaultIo()): Promise<number> {
  const exit = { code: ExitCode.ok as number };
  try {
    await parseProgram(argv, io, exit);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeFor(err); // commander already printed it
    const json = argv.includes('--json');
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    if (json) io.out(JSON.stringify(errorDocument(err), null, 2) + '\n');
    io.err(formatError(err, verbose) + '\n');
    return exitCodeFor(err);
  }
}

let interrupted = false;
/** The cleanups started by a signal; a command that ends meanwhile waits for them (they exit 130). */
let signalCleanup: Promise<void> | undefined;

/** Entry point of bin/lifeboat: the only place that exits the process. */
export async function main(argv: string[]): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(ExitCode.interrupted); // second ^C: leave now
    interrupted = true;
    process.stderr.write(`\n${new InterruptedError(signal).message}; cleaning up…\n`);
    signalCleanup = runCleanups((label, err) =>
      process.stderr.write(`warning: cleanup of ${label} failed: ${redact(String(err))}\n`),
    ).finally(() => process.exit(ExitCode.interrupted));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const code = await runCli(argv);
  if (signalCleanup) await signalCleanup;
  await runCleanups();
  // Let stdout drain before leaving (pipes are asynchronous).
  process.exitCode = code;
  if (!process.stdout.writableNeedDrain) process.exit(code);
  process.stdout.once('drain', () => process.exit(code));
}
