/**
 * Object names in the repository (docs/repository-format.md §2). The only
 * place that knows how keys are spelled; everything else asks here.
 */

export const CONFIG_KEY = 'config';
export const KEYS_PREFIX = 'keys/';
export const DATA_PREFIX = 'data/';
export const INDEX_PREFIX = 'index/';
export const SNAPSHOTS_PREFIX = 'snapshots/';
export const JOURNAL_PREFIX = 'journal/';
export const LOCKS_PREFIX = 'locks/';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const JOURNAL_NAME = /^(\d{8}T\d{9}Z)-([0-9a-f]{16})$/;

export const keyFileKey = (keyId: string): string => `${KEYS_PREFIX}${keyId}`;
export const packKey = (packId: string): string => `${DATA_PREFIX}${packId.slice(0, 2)}/${packId}`;
export const indexKey = (indexId: string): string => `${INDEX_PREFIX}${indexId}`;
export const snapshotKey = (snapshotId: string): string => `${SNAPSHOTS_PREFIX}${snapshotId}`;
export const journalKey = (name: string): string => `${JOURNAL_PREFIX}${name}`;
export const lockKey = (lockId: string): string => `${LOCKS_PREFIX}${lockId}`;

/** The ID in a storage key under `prefix` when the name is well formed, else undefined. */
function idUnder(key: string, prefix: string, pattern: RegExp): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  return pattern.test(name) ? name : undefined;
}

export const parseKeyFileKey = (key: string): string | undefined => idUnder(key, KEYS_PREFIX, HEX32);
export const parseIndexKey = (key: string): string | undefined => idUnder(key, INDEX_PREFIX, HEX64);
export const parseSnapshotKey = (key: string): string | undefined => idUnder(key, SNAPSHOTS_PREFIX, HEX64);
export const parseLockKey = (key: string): string | undefined => idUnder(key, LOCKS_PREFIX, HEX32);

/** Pack ID of `data/<xx>/<packId>`, checking that the fan-out directory matches. */
export function parsePackKey(key: string): string | undefined {
  const m = /^data\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return m && m[2]!.startsWith(m[1]!) ? m[2] : undefined;
}

/** `{ time, runId }` of a journal object name (without the prefix). */
export function parseJournalName(name: string): { time: string; runId: string } | undefined {
  const m = JOURNAL_NAME.exec(name);
  return m ? { time: m[1]!, runId: m[2]! } : undefined;
}

/** Compact sortable UTC time of a journal name: 2025-01-31T12:00:00.000Z → 20250131T120000000Z. */
export function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, '');
}

export const isHex64 = (s: string): boolean => HEX64.test(s);
