import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';

/** Global flags shared by every command. */
export interface GlobalOptions {
  config?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
}

/** What a command handler gets besides its own options. */
export interface CommandContext {
  globals: GlobalOptions;
  logger: Logger;
  clock: Clock;
  /** stdout writer: the one JSON document with --json, the human result otherwise. */
  out: (text: string) => void;
  /** True when stderr is a TTY and progress may be drawn. */
  interactive: boolean;
  env: NodeJS.ProcessEnv;
  /** Set a non-zero exit code for a result that is not an exception (partial backup, failed drill). */
  setExitCode(code: number): void;
}
