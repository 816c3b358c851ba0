/** The last lines a run logged, kept so a failure ping can say what happened. */
import type { Logger } from '../platform/logger.js';
import { redact } from '../platform/redact.js';

export interface LogTail {
  /** A logger that writes to `inner` and remembers the line. */
  logger: Logger;
  /** Add a line that was not logged (a summary). */
  add(line: string): void;
  /** The remembered lines, oldest first. */
  text(): string;
}

/** Remember the last `limit` lines logged through the returned logger. */
export function createLogTail(inner: Logger, limit = 200): LogTail {
  const lines: string[] = [];
  const add = (line: string) => {
    lines.push(redact(line));
    if (lines.length > limit) lines.splice(0, lines.length - limit);
  };
  const tee =
    (level: keyof Logger) =>
    (message: string): void => {
      if (level !== 'debug') add(level === 'info' ? message : `${level}: ${message}`);
      inner[level](message);
    };
  return {
    logger: { debug: tee('debug'), info: tee('info'), warn: tee('warn'), error: tee('error') },
    add,
    text: () => lines.join('\n'),
  };
}
