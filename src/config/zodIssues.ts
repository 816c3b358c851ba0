/**
 * Turn zod's issues into findings a stranger can act on: "unknown key `shedule` — did you mean
 * `schedule`?", "missing required key `paths`", "expected a number, got the text "two"".
 */
import type { z } from 'zod';
import { closest, suggestion } from './didYouMean.js';
import type { Finding, PathSegment } from './finding.js';
import { NAME_RULE } from './schema.js';

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

/** Findings for every zod issue; `data` is the parsed YAML (for allowed keys of unions). */
export function findingsFromZod(issues: readonly Issue[], schema: AnySchema, data: unknown): Finding[] {
  const out: Finding[] = [];
  for (const issue of issues) out.push(...findingsFor(issue, schema, data));
  return out;
}

/** Keys whose values may be secrets: their values are never repeated in messages. */
const SECRET_KEYS = new Set(['password', 'dsn', 'server', 'accessKeyId', 'secretAccessKey', 'url']);

function findingsFor(issue: Issue, schema: AnySchema, data: unknown): Finding[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p === 'string' || typeof p === 'number');
  const describeValue = SECRET_KEYS.has(String(path[path.length - 1])) ? describeKind : describeInput;
  const hint = (
    issue.code === 'custom' && typeof issue.params?.hint === 'string' ? issue.params.hint : undefined
  ) as string | undefined;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, path, data);
      return issue.keys.map((key) => ({
        path: [...path, key],
        at: 'key' as const,
        message: `unknown key \`${key}\``,
        hint: suggestion(key, allowed, 'allowed keys here'),
      }));
    }
    case 'invalid_type': {
      if (issue.input === undefined) {
        const key = path[path.length - 1];
        return [
          { path, message: `missing required key \`${String(key)}\``, hint: expectedText(issue.expected) },
        ];
      }
      return [
        { path, message: `expected ${expectedText(issue.expected)}, got ${describeValue(issue.input)}` },
      ];
    }
    case 'invalid_union': {
      const discriminatorOptions = 'options' in issue ? issue.options : undefined;
      if (issue.discriminator !== undefined && discriminatorOptions) {
        const options = discriminatorOptions.map(String);
        const what = issue.discriminator;
        const input = issue.input;
        const value =
          input && typeof input === 'object' && !Array.isArray(input)
            ? (input as Record<string, unknown>)[what]
            : input;
        if (value === undefined) {
          return [{ path, message: `missing \`${what}\``, hint: `one of ${options.join(', ')}` }];
        }
        return [
          {
            path,
            message: `unknown ${what} ${describeValue(value)}`,
            hint:
              typeof value === 'string'
                ? suggestion(value, options, `${what}s`)
                : `one of ${options.join(', ')}`,
          },
        ];
      }
      return [
        {
          path,
          message: issue.message + (issue.input === undefined ? '' : `, got ${describeValue(issue.input)}`),
        },
      ];
    }
    case 'invalid_value': {
      const options = issue.values.map(String);
      const value = issue.input;
      if (value === undefined) {
        return [
          {
            path,
            message: `missing required key \`${String(path[path.length - 1])}\``,
            hint: `one of ${options.join(', ')}`,
          },
        ];
      }
      const near = typeof value === 'string' ? closest(value, options) : undefined;
      const custom = !issue.message.startsWith('Invalid');
      return [
        {
          path,
          message: custom
            ? `${issue.message}, got ${describeValue(value)}`
            : options.length === 1
              ? `expected ${JSON.stringify(issue.values[0])}, got ${describeValue(value)}`
              : `expected one of ${options.join(', ')}, got ${describeValue(value)}`,
          ...(near ? { hint: `did you mean \`${near}\`?` } : {}),
        },
      ];
    }
    case 'invalid_key':
      return [
        {
          path,
          at: 'key',
          message: `invalid name \`${String(path[path.length - 1])}\``,
          hint: `names use ${NAME_RULE}`,
        },
      ];
    case 'too_small':
      return [{ path, message: tooSmallText(issue, describeValue), ...(hint ? { hint } : {}) }];
    case 'too_big':
      return [{ path, message: tooBigText(issue, describeValue) }];
    case 'invalid_format':
      return [
        {
          path,
          message: issue.message + (issue.input === undefined ? '' : `, got ${describeValue(issue.input)}`),
        },
      ];
    default:
      return [{ path, message: issue.message, ...(hint ? { hint } : {}) }];
  }
}

function tooSmallText(issue: z.core.$ZodIssueTooSmall, describeValue: (v: unknown) => string): string {
  if (issue.message && !issue.message.startsWith('Too small')) return issue.message;
  const min = Number(issue.minimum);
  switch (issue.origin) {
    case 'array':
      return `needs at least ${min} ${min === 1 ? 'entry' : 'entries'}`;
    case 'string':
      return 'must not be empty';
    default:
      return `must be at least ${issue.inclusive === false ? `more than ${min}` : min}, got ${describeValue(issue.input)}`;
  }
}

function tooBigText(issue: z.core.$ZodIssueTooBig, describeValue: (v: unknown) => string): string {
  const max = Number(issue.maximum);
  if (issue.origin === 'array') return `has more than ${max} entries`;
  return `must be at most ${max}, got ${describeValue(issue.input)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map of keys',
  record: 'a map of names',
};

function expectedText(expected: string): string {
  return EXPECTED[expected] ?? expected;
}

/** What kind of value it was, without the value (for secrets). */
function describeKind(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a map' : `a ${typeof value === 'string' ? 'text' : typeof value}`;
}

/** Say what a YAML value was, the way a reader of the file sees it. */
export function describeInput(value: unknown): string {
  if (value === null) return 'an empty value';
  if (typeof value === 'string')
    return `the text ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return typeof value;
}

// ---------------------------------------------------------------------------------------------
// Walking the schema to find which keys are allowed at a path (for "did you mean").

interface Def {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  shape?: Record<string, AnySchema>;
  valueType?: AnySchema;
  element?: AnySchema;
  options?: AnySchema[];
  discriminator?: string;
}

const def = (s: AnySchema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Strip wrappers (optional, default, pipe…) down to the schema that checks the shape. */
function unwrap(schema: AnySchema, data: unknown): AnySchema {
  let s = schema;
  for (let i = 0; i < 20; i++) {
    const d = def(s);
    if (
      d.innerType &&
      ['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(d.type)
    ) {
      s = d.innerType;
    } else if (d.type === 'pipe' && d.in) {
      s = d.in;
    } else if (d.type === 'union' && d.options) {
      const picked = pickOption(d, data);
      if (!picked) break;
      s = picked;
    } else break;
  }
  return s;
}

function pickOption(d: Def, data: unknown): AnySchema | undefined {
  const options = d.options ?? [];
  if (d.discriminator !== undefined && data && typeof data === 'object') {
    const value = (data as Record<string, unknown>)[d.discriminator];
    for (const option of options) {
      const shape = def(unwrap(option, data)).shape;
      const lit = shape?.[d.discriminator];
      const values = lit ? (def(lit) as Def & { values?: unknown[] }).values : undefined;
      if (values?.includes(value)) return option;
    }
    return undefined;
  }
  // A plain union (e.g. text or map): take the object option for map data.
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    return options.find((o) => def(unwrap(o, data)).type === 'object');
  }
  return undefined;
}

/** Keys the schema accepts for the map at `path` (empty when unknown). */
export function allowedKeysAt(schema: AnySchema, path: readonly PathSegment[], data: unknown): string[] {
  let s = unwrap(schema, data);
  let value = data;
  for (const segment of path) {
    const d = def(s);
    value =
      value && typeof value === 'object' ? (value as Record<string, unknown>)[String(segment)] : undefined;
    let next: AnySchema | undefined;
    if (d.type === 'object') next = d.shape?.[String(segment)];
    else if (d.type === 'record') next = d.valueType;
    else if (d.type === 'array') next = d.element;
    if (!next) return [];
    s = unwrap(next, value);
  }
  const d = def(s);
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : [];
}
