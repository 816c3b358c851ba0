import { redact } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Human-facing diagnostics; always on stderr so stdout stays machine-readable. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LoggerOptions {
  level: LogLevel;
  color: boolean;
  write?: (line: string) => void;
}

/** A logger that writes redacted lines at or above `level`. */
export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const paint = (code: string, s: string) => (opts.color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const emit = (level: LogLevel, message: string) => {
    if (order[level] < order[opts.level]) return;
    const text = redact(message);
    if (level === 'warn') write(paint('33', 'warning: ') + text);
    else if (level === 'error') write(paint('31', 'error: ') + text);
    else if (level === 'debug') write(paint('2', text));
    else write(text);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
