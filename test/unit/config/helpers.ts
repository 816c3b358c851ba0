import { ConfigError, type ConfigIssue } from '../../../src/errors.js';
import { parseConfigText, type ParsedConfigResult } from '../../../src/config/load.js';
import type { MachineFacts } from '../../../src/config/resolve.js';

/** Fixed machine facts so defaults are the same on every machine. */
export const machine: MachineFacts = {
  env: {},
  hostname: 'test-host',
  uid: 1000,
  homedir: '/home/tester',
  systemTimeZone: 'UTC',
};

export const NOW = Date.UTC(2025, 0, 1);

/** Parse YAML text as lifeboat.yaml with fixed time and machine. */
export function parse(text: string): ParsedConfigResult {
  return parseConfigText(text, { file: 'test.yaml', now: NOW, machine });
}

/** The issues of text that must fail. */
export function problems(text: string): ConfigIssue[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the configuration to be rejected');
}

/** Issues as `line:column path: message — hint` strings, for readable assertions. */
export function problemLines(text: string): string[] {
  return problems(text).map(
    (i) => `${i.line ?? '?'}:${i.column ?? '?'} ${i.path}: ${i.message}${i.hint ? ` — ${i.hint}` : ''}`,
  );
}

/** A small valid base: one repository, one policy, one hourly files job. */
export const BASE = `repositories:
  local:
    url: file:///var/backups/lifeboat
    password: env:LIFEBOAT_PASSWORD
policies:
  standard:
    rpo: 1h
jobs:
  web:
    kind: files
    paths: [/srv/www]
    schedule: '0 * * * *'
`;
