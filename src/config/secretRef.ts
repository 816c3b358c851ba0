/**
 * Secret references as written in lifeboat.yaml — `env:NAME`, `file:/path`, `command:argv…`,
 * `literal:text` or a bare literal — parsed into a typed form. Parsing never reads the secret;
 * src/config/secrets.ts resolves a reference when a command needs the value.
 */
import { closest } from './didYouMean.js';

export type SecretRef =
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'command'; argv: string[]; text: string }
  | { kind: 'literal'; value: string };

export type SecretRefResult = { ok: true; ref: SecretRef } | { ok: false; message: string; hint?: string };

const PREFIXES = ['env', 'file', 'command', 'literal'] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Prefixes people plausibly mean that are too far from the real ones for edit distance. */
const ALIASES: Record<string, string> = {
  cmd: 'command',
  exec: 'command',
  shell: 'command',
  sh: 'command',
  environment: 'env',
  envvar: 'env',
  var: 'env',
  path: 'file',
};

const created = new WeakSet<object>();

function make(ref: SecretRef): SecretRef {
  created.add(ref);
  return ref;
}

/** True for objects made by readSecretRef (used to find every secret in a parsed config). */
export function isSecretRef(value: unknown): value is SecretRef {
  return typeof value === 'object' && value !== null && created.has(value);
}

/** Parse a secret reference; a text without a known prefix is a literal secret. */
export function readSecretRef(input: unknown): SecretRefResult {
  if (typeof input !== 'string') {
    return {
      ok: false,
      message: 'expected a secret reference (text)',
      hint: 'write env:NAME, file:/path, command:program args… or the value itself',
    };
  }
  const colon = input.indexOf(':');
  const prefix = colon > 0 ? input.slice(0, colon) : '';
  const rest = colon > 0 ? input.slice(colon + 1) : '';
  switch (prefix) {
    case 'env': {
      if (!ENV_NAME.test(rest)) {
        return {
          ok: false,
          message: `"${input}" does not name an environment variable`,
          hint: 'write env:NAME with letters, digits and _, e.g. env:LIFEBOAT_PASSWORD',
        };
      }
      return { ok: true, ref: make({ kind: 'env', name: rest }) };
    }
    case 'file': {
      if (!rest.startsWith('/')) {
        return {
          ok: false,
          message: `"${input}" is not an absolute path`,
          hint: 'write file:/full/path/to/secret (~ and relative paths are not expanded)',
        };
      }
      return { ok: true, ref: make({ kind: 'file', path: rest }) };
    }
    case 'command': {
      const split = splitCommandLine(rest);
      if (!split.ok) return { ok: false, message: `"${input}": ${split.message}`, hint: split.hint };
      return { ok: true, ref: make({ kind: 'command', argv: split.argv, text: rest.trim() }) };
    }
    case 'literal':
      return { ok: true, ref: make({ kind: 'literal', value: rest }) };
  }
  // `evn:NAME` would otherwise silently become the literal password "evn:NAME".
  const near = /^[a-z]+$/i.test(prefix)
    ? (ALIASES[prefix.toLowerCase()] ?? closest(prefix, PREFIXES))
    : undefined;
  if (near !== undefined) {
    return {
      ok: false,
      message: `unknown secret reference "${prefix}:"`,
      hint: `did you mean \`${near}:\`? (to use a value that starts with "${prefix}:", write literal:${prefix}:…)`,
    };
  }
  if (input === '')
    return { ok: false, message: 'empty secret', hint: 'write env:NAME, file:/path or command:…' };
  return { ok: true, ref: make({ kind: 'literal', value: input }) };
}

export type SplitResult = { ok: true; argv: string[] } | { ok: false; message: string; hint?: string };

/**
 * Split a command line into argv the way a reader expects, without a shell: whitespace
 * separates words, '…' quotes literally, "…" quotes with \" and \\ escapes, \ escapes the
 * next character outside quotes. No variables, globs, pipes or redirections.
 */
export function splitCommandLine(text: string): SplitResult {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) return { ok: false, message: `unterminated ${quote === '"' ? 'double' : 'single'} quote` };
  if (inWord) argv.push(word);
  if (argv.length === 0) {
    return { ok: false, message: 'no command given', hint: 'e.g. command:pass show backup/lifeboat' };
  }
  return { ok: true, argv };
}

/** How a reference is named in messages; never the secret itself. */
export function describeSecretRef(ref: SecretRef): string {
  switch (ref.kind) {
    case 'env':
      return `env:${ref.name}`;
    case 'file':
      return `file:${ref.path}`;
    case 'command':
      return `command:${ref.text}`;
    case 'literal':
      return 'a literal value';
  }
}
