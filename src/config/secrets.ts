/**
 * Resolve secret references late — only when a command needs the value — and register every
 * value with redact() so it can never appear in output, logs or errors.
 *
 * Decisions (documented in docs/configuration.md):
 * - `env:NAME`: unset or empty is an error (an empty password is never what was meant).
 * - `file:/path`: trailing newlines are trimmed. A file every user can read (mode & 0o004) is
 *   refused, like ssh refuses such private keys; a group-readable file (0640, a dedicated
 *   group) is allowed with a warning.
 * - `command:…`: split into argv without a shell, run with a 30 s timeout; stdout (trailing
 *   newlines trimmed) is the secret; a non-zero exit or empty output is an error. The output
 *   is remembered for the life of the process so a password manager is asked once.
 */
import { readFile, stat } from 'node:fs/promises';
import { ConfigError, LifeboatError, isErrnoException } from '../errors.js';
import { lastLines, run, type ExecResult } from '../platform/exec.js';
import { registerSecret } from '../platform/redact.js';
import { describeSecretRef, readSecretRef, type SecretRef } from './secretRef.js';

export interface ResolveSecretOptions {
  env: NodeJS.ProcessEnv;
  /** Where the reference is used, for messages (e.g. `repositories.local.password`). */
  what?: string;
  /** Called with a warning (e.g. a group-readable secret file). */
  onWarning?: (message: string) => void;
  /** Timeout of `command:` references (default 30 s). */
  timeoutMs?: number;
  /** Runs `command:` references (tests may substitute it). */
  runCommand?: (
    argv: readonly string[],
    opts: { env: NodeJS.ProcessEnv; timeoutMs: number },
  ) => Promise<ExecResult>;
}

const commandCache = new Map<string, string>();

/** Forget remembered `command:` outputs (tests). */
export function clearSecretCache(): void {
  commandCache.clear();
}

/** The secret value of a reference (a parsed SecretRef or its text, e.g. from a flag). */
export async function resolveSecret(
  reference: SecretRef | string,
  opts: ResolveSecretOptions,
): Promise<string> {
  const ref = typeof reference === 'string' ? parseReference(reference, opts) : reference;
  const value = await resolveRef(ref, opts);
  registerSecret(value);
  return value;
}

function parseReference(text: string, opts: ResolveSecretOptions): SecretRef {
  const parsed = readSecretRef(text);
  if (!parsed.ok)
    throw new ConfigError(`secret${forWhat(opts)}: ${parsed.message}`, undefined, [], { hint: parsed.hint });
  return parsed.ref;
}

function forWhat(opts: ResolveSecretOptions): string {
  return opts.what ? ` for ${opts.what}` : '';
}

async function resolveRef(ref: SecretRef, opts: ResolveSecretOptions): Promise<string> {
  switch (ref.kind) {
    case 'literal':
      return ref.value;
    case 'env':
      return fromEnv(ref.name, opts);
    case 'file':
      return fromFile(ref.path, opts);
    case 'command':
      return fromCommand(ref, opts);
  }
}

function fromEnv(name: string, opts: ResolveSecretOptions): string {
  const value = opts.env[name];
  if (value === undefined) {
    throw new ConfigError(`secret env:${name}${forWhat(opts)} is not set`, undefined, [], {
      hint:
        `export ${name}=… in the environment lifeboat runs in (cron and systemd do not read your shell profile), ` +
        'or change the reference to file:/path or command:…',
    });
  }
  if (value === '') {
    throw new ConfigError(`secret env:${name}${forWhat(opts)} is empty`, undefined, [], {
      hint: `give ${name} the secret's value`,
    });
  }
  return value;
}

async function fromFile(path: string, opts: ResolveSecretOptions): Promise<string> {
  const ref = `file:${path}`;
  let mode: number;
  let text: string;
  try {
    mode = (await stat(path)).mode & 0o777;
    if (mode & 0o004) {
      throw new ConfigError(
        `secret ${ref}${forWhat(opts)} is readable by every user (mode ${octal(mode)}); refusing to use it`,
        undefined,
        [],
        { hint: `chmod 600 ${path} (or 640 with a group only lifeboat's user is in)` },
      );
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    const code = isErrnoException(err) ? err.code : undefined;
    if (code === 'ENOENT') {
      throw new ConfigError(`secret ${ref}${forWhat(opts)} does not exist`, undefined, [], {
        hint: `write the secret into ${path} (one line) and chmod 600 it, or change the reference`,
        cause: err,
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new ConfigError(
        `secret ${ref}${forWhat(opts)} cannot be read: permission denied`,
        undefined,
        [],
        {
          hint: 'run lifeboat as the user that owns the file',
          cause: err,
        },
      );
    }
    if (code === 'EISDIR') {
      throw new ConfigError(`secret ${ref}${forWhat(opts)} is a directory`, undefined, [], {
        hint: 'point the reference at the file that holds the secret',
        cause: err,
      });
    }
    throw new ConfigError(
      `secret ${ref}${forWhat(opts)} cannot be read: ${code ?? String(err)}`,
      undefined,
      [],
      {
        cause: err,
      },
    );
  }
  if (mode & 0o040) {
    opts.onWarning?.(
      `secret ${ref} is readable by its group (mode ${octal(mode)}); make sure only lifeboat's user is in it`,
    );
  }
  const value = text.replace(/[\r\n]+$/, '');
  if (value === '') {
    throw new ConfigError(`secret ${ref}${forWhat(opts)} is empty`, undefined, [], {
      hint: `write the secret into ${path}`,
    });
  }
  return value;
}

async function fromCommand(
  ref: Extract<SecretRef, { kind: 'command' }>,
  opts: ResolveSecretOptions,
): Promise<string> {
  const cached = commandCache.get(ref.text);
  if (cached !== undefined) return cached;
  const name = describeSecretRef(ref);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const runner = opts.runCommand ?? ((argv, o) => run(argv, o));
  let result: ExecResult;
  try {
    result = await runner(ref.argv, { env: opts.env, timeoutMs });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`secret ${name}${forWhat(opts)} could not be run: ${message}`, undefined, [], {
      hint: `check that ${ref.argv[0]} is installed and on PATH (no shell is used: pipes and $VARS do not work)`,
      cause: err,
    });
  }
  if (result.code !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
    throw new ConfigError(
      `secret ${name}${forWhat(opts)} failed: it ${how}: ${lastLines(result.stderr, 3)}`,
      undefined,
      [],
      {
        hint: 'run the command by hand as the same user to see why',
      },
    );
  }
  const value = result.stdout.replace(/[\r\n]+$/, '');
  if (value === '') {
    throw new ConfigError(`secret ${name}${forWhat(opts)} printed nothing`, undefined, [], {
      hint: 'the command must print the secret on stdout',
    });
  }
  // Register before caching so the value is hidden even if a later step fails.
  registerSecret(value);
  commandCache.set(ref.text, value);
  return value;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
