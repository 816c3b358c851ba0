/**
 * Find, read and validate lifeboat.yaml. Every problem — YAML syntax, schema, cross-field
 * rules — is collected and reported at once, each with its line and column, in one ConfigError.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { isAlias, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ConfigError, isErrnoException, type ConfigIssue } from '../errors.js';
import { systemClock } from '../platform/clock.js';
import { registerSecret } from '../platform/redact.js';
import { formatPath, type Finding, type PathSegment } from './finding.js';
import { locate } from './positions.js';
import { machineFacts, resolveConfig, type DeclaredNames, type MachineFacts } from './resolve.js';
import { checkRules } from './rules.js';
import {
  configSchema,
  defaultsSchema,
  jobSchema,
  notificationsSchema,
  policySchema,
  repositorySchema,
  type LifeboatConfig,
  type ParsedConfig,
} from './schema.js';
import { isSecretRef } from './secretRef.js';
import { findingsFromZod } from './zodIssues.js';

export const DEFAULT_CONFIG_FILE = 'lifeboat.yaml';

export interface ConfigLocation {
  /** The --config flag value. */
  path?: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** The configuration file to use: --config, else $LIFEBOAT_CONFIG, else ./lifeboat.yaml. */
export function configPath(where: ConfigLocation): { file: string; source: 'flag' | 'env' | 'default' } {
  if (where.path) return { file: resolvePath(where.cwd, where.path), source: 'flag' };
  if (where.env.LIFEBOAT_CONFIG)
    return { file: resolvePath(where.cwd, where.env.LIFEBOAT_CONFIG), source: 'env' };
  return { file: resolvePath(where.cwd, DEFAULT_CONFIG_FILE), source: 'default' };
}

export interface ParseOptions {
  /** File name for messages. */
  file?: string | undefined;
  /** Time schedules are sampled from (default: now). */
  now?: number;
  /** Machine facts for defaults (default: this machine, with `env`). */
  machine?: MachineFacts;
  env?: NodeJS.ProcessEnv;
  /** The file can be read by other users (literal secrets in it are warned about). */
  worldReadable?: boolean;
  /** Octal mode for the world-readable warning text. */
  mode?: number;
}

export interface ParsedConfigResult {
  config: LifeboatConfig;
  /** One line per warning: `12:5 jobs.web: message — hint`. */
  warnings: string[];
  /** The same warnings, structured (for --json). */
  warningDetails: ConfigIssue[];
}

export interface LoadedConfig extends ParsedConfigResult {
  file: string;
}

export interface LoadOptions
  extends ConfigLocation, Omit<ParseOptions, 'file' | 'worldReadable' | 'mode' | 'env'> {}

/** Find, read and validate the configuration; throws a ConfigError listing every problem. */
export async function loadConfig(options: LoadOptions): Promise<LoadedConfig> {
  const { file, source } = configPath(options);
  const text = await readConfigFile(file, source);
  let mode: number | undefined;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch {
    mode = undefined; // read worked; a failing stat only costs the permission warning
  }
  const result = parseConfigText(text, {
    file,
    env: options.env,
    ...(options.now !== undefined ? { now: options.now } : {}),
    ...(options.machine ? { machine: options.machine } : {}),
    worldReadable: mode !== undefined && (mode & 0o004) !== 0,
    ...(mode !== undefined ? { mode } : {}),
  });
  return { ...result, file };
}

async function readConfigFile(file: string, source: 'flag' | 'env' | 'default'): Promise<string> {
  const from = source === 'flag' ? ' (from --config)' : source === 'env' ? ' (from $LIFEBOAT_CONFIG)' : '';
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = isErrnoException(err) ? err.code : undefined;
    if (code === 'ENOENT') {
      throw new ConfigError(`no configuration file at ${file}${from}`, file, [], {
        hint: '`lifeboat init` writes a commented starter configuration there; or point --config or LIFEBOAT_CONFIG at your file',
        cause: err,
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new ConfigError(`cannot read ${file}${from}: permission denied`, file, [], {
        hint: 'run lifeboat as the user that owns the file (it should be mode 0600)',
        cause: err,
      });
    }
    if (code === 'EISDIR') {
      throw new ConfigError(`${file}${from} is a directory, not a configuration file`, file, [], {
        hint: `point --config at the YAML file, e.g. ${resolvePath(file, DEFAULT_CONFIG_FILE)}`,
        cause: err,
      });
    }
    throw new ConfigError(
      `cannot read ${file}${from}: ${err instanceof Error ? err.message : String(err)}`,
      file,
      [],
      {
        cause: err,
      },
    );
  }
}

/** A finding with its position already known (YAML syntax errors). */
interface Located extends Finding {
  line?: number;
  column?: number;
}

/**
 * Validate configuration text; throws a ConfigError listing every problem.
 * `parseConfigText(text, file, env)` is short for `parseConfigText(text, { file, env })`.
 */
export function parseConfigText(
  text: string,
  fileOrOptions?: string | ParseOptions,
  env?: NodeJS.ProcessEnv,
): ParsedConfigResult {
  const options: ParseOptions =
    typeof fileOrOptions === 'string' || fileOrOptions === undefined
      ? { file: fileOrOptions, ...(env ? { env } : {}) }
      : fileOrOptions;
  const file = options.file;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });

  const fail = (problems: Located[]): never => {
    throw configError(
      file,
      problems.map((p) => toIssue(p, doc, lines)),
    );
  };

  if (doc.errors.length > 0) fail(syntaxProblems(doc, lines));
  if (doc.contents === null) {
    fail([
      {
        path: [],
        message: 'the file is empty',
        hint: '`lifeboat init` writes a commented starter configuration',
      },
    ]);
  }
  const data = toData(doc, lines, fail);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    fail([
      {
        path: [],
        message: 'the top level must be a map of sections',
        hint: 'sections: version, defaults, repositories, policies, jobs, notifications',
      },
    ]);
  }
  const raw = { ...(data as Record<string, unknown>) };
  // `jobs:` with every entry commented out is an empty section, not a mistake.
  for (const key of ['defaults', 'repositories', 'policies', 'jobs', 'notifications']) {
    if (raw[key] === null) delete raw[key];
  }

  const result = configSchema.safeParse(raw, { reportInput: true });
  const errors: Located[] = result.success ? [] : findingsFromZod(result.error.issues, configSchema, raw);
  const names: DeclaredNames = {
    repositories: keysOf(raw.repositories),
    policies: keysOf(raw.policies),
    jobs: keysOf(raw.jobs),
  };
  // With schema errors, keep checking what did parse so cross-field problems show up in the same run.
  const { parsed, stripped } = result.success
    ? { parsed: result.data, stripped: [] }
    : parseWhatIsValid(raw, errors);
  const machine = options.machine ?? machineFacts(options.env ?? process.env);
  const resolved = resolveConfig(parsed, machine, names);
  const rules = checkRules(resolved.config, { now: options.now ?? systemClock.now(), names });
  errors.push(...[...resolved.findings, ...rules.errors].filter((f) => !under(f.path, stripped)));

  const warnings: Located[] = [...rules.warnings];
  for (const { path, value } of literalSecrets(parsed)) {
    registerSecret(value);
    if (options.worldReadable) {
      const mode = options.mode === undefined ? '' : ` (mode ${options.mode.toString(8).padStart(4, '0')})`;
      warnings.push({
        path,
        message: `a literal secret in a file other users can read${mode}`,
        hint: `chmod 600 ${file ?? 'the file'}, or use env:NAME, file:/path or command:… instead`,
      });
    }
  }
  for (const w of doc.warnings) {
    const pos = lines.linePos(w.pos[0]);
    warnings.push({ path: [], message: `YAML: ${firstLine(w.message)}`, line: pos.line, column: pos.col });
  }

  if (errors.length > 0) fail(errors);
  const warningDetails = sortIssues(warnings.map((w) => toIssue(w, doc, lines)));
  return { config: resolved.config, warnings: warningDetails.map(formatIssueLine), warningDetails };
}

function toData(doc: Document, lines: LineCounter, fail: (p: Located[]) => never): unknown {
  const unresolved: Located[] = [];
  visit(doc, {
    Alias(_, node) {
      if (isAlias(node) && node.resolve(doc) === undefined) {
        const pos = node.range ? lines.linePos(node.range[0]) : undefined;
        unresolved.push({
          path: [],
          message: `unknown alias *${node.source}`,
          hint: 'a value starting with * refers to an &anchor; quote it if you meant text (cron: "*/5 * * * *")',
          ...(pos ? { line: pos.line, column: pos.col } : {}),
        });
      }
    },
  });
  if (unresolved.length > 0) fail(unresolved);
  try {
    return doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    return fail([
      { path: [], message: `cannot read the YAML: ${err instanceof Error ? err.message : String(err)}` },
    ]);
  }
}

/** YAML syntax errors, one per line (the parser often reports follow-up errors on the same line). */
function syntaxProblems(doc: Document, lines: LineCounter): Located[] {
  const out: Located[] = [];
  const seenLines = new Set<number>();
  for (const err of doc.errors) {
    const pos = lines.linePos(err.pos[0]);
    if (seenLines.has(pos.line)) continue;
    seenLines.add(pos.line);
    const message = firstLine(err.message);
    out.push({
      path: [],
      message: `YAML: ${message}`,
      line: pos.line,
      column: pos.col,
      ...syntaxHint(err.code, message),
    });
  }
  return out;
}

function syntaxHint(code: string, message: string): { hint?: string } {
  if (/alias/i.test(message)) {
    return {
      hint: 'a value starting with * is read as a YAML alias; quote cron expressions: schedule: "*/5 * * * *"',
    };
  }
  switch (code) {
    case 'TAB_AS_INDENT':
      return { hint: 'indent with spaces, not tabs' };
    case 'DUPLICATE_KEY':
      return { hint: 'each key may appear once in a map; merge the two entries' };
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return { hint: 'check the indentation and closing brackets/quotes above this position' };
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return { hint: 'a key is missing its colon, or a value is indented too far' };
    default:
      return {};
  }
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '').trim();
}

function keysOf(value: unknown): string[] {
  return value && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
}

interface Partial {
  parsed: ParsedConfig;
  /** Keys left out because they are invalid: findings about them would only repeat the error. */
  stripped: PathSegment[][];
}

type EntrySchema = { safeParse(v: unknown): { success: boolean; data?: unknown } };

/**
 * Parse what is valid, so cross-field rules can run in the same pass as the schema: each
 * section and named entry on its own, leaving out the keys that have problems. An entry whose
 * problem is not in one key (a missing required key, an unknown kind) is left out entirely.
 */
function parseWhatIsValid(raw: Record<string, unknown>, problems: readonly Finding[]): Partial {
  const stripped: PathSegment[][] = [];
  const lenient = (
    schema: EntrySchema,
    value: unknown,
    path: PathSegment[],
  ): { ok: boolean; data?: unknown } => {
    const first = schema.safeParse(value);
    if (first.success) return { ok: true, data: first.data };
    if (!value || typeof value !== 'object' || Array.isArray(value)) return { ok: false };
    const bad = new Set<string>();
    for (const p of problems) {
      if (p.path.length <= path.length || !path.every((seg, i) => p.path[i] === seg)) continue;
      bad.add(String(p.path[path.length]));
    }
    if (bad.size === 0) return { ok: false };
    const trimmed = Object.fromEntries(Object.entries(value).filter(([k]) => !bad.has(k)));
    const second = schema.safeParse(trimmed);
    if (!second.success) return { ok: false };
    for (const key of bad) stripped.push([...path, key]);
    return { ok: true, data: second.data };
  };
  const entries = (section: string, schema: EntrySchema) => {
    const out: Record<string, never> = {};
    const value = raw[section];
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [name, entry] of Object.entries(value)) {
        const r = lenient(schema, entry, [section, name]);
        if (r.ok) out[name] = r.data as never;
      }
    }
    return out;
  };
  const section = <T>(name: string, schema: EntrySchema & { parse(v: unknown): T }): T => {
    const r = lenient(schema, raw[name] ?? {}, [name]);
    return r.ok ? (r.data as T) : schema.parse({});
  };
  return {
    parsed: {
      version: 1,
      defaults: section('defaults', defaultsSchema),
      repositories: entries('repositories', repositorySchema),
      policies: entries('policies', policySchema),
      jobs: entries('jobs', jobSchema),
      notifications: section('notifications', notificationsSchema),
    },
    stripped,
  };
}

function under(path: readonly PathSegment[], prefixes: readonly PathSegment[][]): boolean {
  return prefixes.some((prefix) => prefix.length <= path.length && prefix.every((seg, i) => path[i] === seg));
}

/** Every literal secret in the parsed configuration, with its path. */
function literalSecrets(
  value: unknown,
  path: PathSegment[] = [],
): Array<{ path: PathSegment[]; value: string }> {
  if (isSecretRef(value)) return value.kind === 'literal' ? [{ path, value: value.value }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => literalSecrets(v, [...path, i]));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => literalSecrets(v, [...path, k]));
  }
  return [];
}

function toIssue(finding: Located, doc: Document, lines: LineCounter): ConfigIssue {
  const pos =
    finding.line !== undefined
      ? { line: finding.line, column: finding.column ?? 1 }
      : locate(doc, lines, finding.path, finding.at);
  return {
    path: formatPath(finding.path),
    message: finding.message,
    ...(finding.hint ? { hint: finding.hint } : {}),
    ...(pos ? { line: pos.line, column: pos.column } : {}),
  };
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort(
      (a, b) =>
        (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) ||
        (a.issue.column ?? 0) - (b.issue.column ?? 0) ||
        a.i - b.i,
    )
    .map(({ issue }) => issue);
}

function configError(file: string | undefined, issues: ConfigIssue[]): ConfigError {
  const sorted = sortIssues(issues);
  const n = sorted.length;
  return new ConfigError(`${n} problem${n === 1 ? '' : 's'} in the configuration`, file, sorted, {
    hint: 'fix them and run `lifeboat config validate` again; docs/configuration.md describes every key',
  });
}

/** One line for a warning or problem: `12:5 jobs.web: message — hint`. */
export function formatIssueLine(issue: ConfigIssue): string {
  const pos = issue.line ? `${issue.line}:${issue.column ?? 1} ` : '';
  return `${pos}${issue.path || '(top level)'}: ${issue.message}${issue.hint ? ` — ${issue.hint}` : ''}`;
}
