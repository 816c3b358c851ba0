/**
 * Snapshot objects (docs/repository-format.md §10): sealed JSON of a
 * SnapshotRecord, named by the SHA-256 of the stored object, and resolution
 * of snapshot references (ID, prefix, `latest`).
 */
import { IntegrityError, UsageError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import type { SnapshotEntry, SnapshotRecord } from './api.js';
import { associatedData, sha256Hex } from './crypto.js';
import { SnapshotNotFoundError } from './errors.js';
import { snapshotKey } from './layout.js';
import { decodeMetadataObject, encodeMetadataObject } from './metadataObject.js';
import { readObject } from './storageIo.js';

const HEX64 = /^[0-9a-f]{64}$/;
const isString = (v: unknown): v is string => typeof v === 'string';
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** Structural validation of a snapshot record; the reason when it is malformed. */
export function validateSnapshotRecord(value: unknown): SnapshotRecord | string {
  const r = value as Partial<SnapshotRecord> | null;
  if (typeof r !== 'object' || r === null) return 'it is not a JSON object';
  if (typeof r.v === 'number' && r.v > 1)
    return `it has record version ${r.v}, newer than this lifeboat reads (1)`;
  if (r.v !== 1) return 'its record version is missing';
  for (const field of ['job', 'kind', 'host', 'startedAt', 'endedAt', 'toolVersion'] as const) {
    if (!isString(r[field])) return `field "${field}" is missing`;
  }
  if (!isString(r.tree) || !HEX64.test(r.tree)) return 'its root tree is not a blob ID';
  if (!isStringArray(r.paths) || !isStringArray(r.tags)) return 'paths or tags are not lists of strings';
  if (typeof r.partial !== 'boolean') return 'field "partial" is missing';
  if (typeof r.fingerprint !== 'object' || r.fingerprint === null) return 'field "fingerprint" is missing';
  const s = r.stats as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null) return 'field "stats" is missing';
  for (const field of ['files', 'dirs', 'bytes', 'addedBytes', 'storedBytes', 'blobs']) {
    if (typeof s[field] !== 'number') return `stats.${field} is missing`;
  }
  return r as SnapshotRecord;
}

/** Seal a snapshot record; returns the bytes and the ID (SHA-256 of the bytes). */
export function encodeSnapshot(
  encryptionKey: Uint8Array,
  record: SnapshotRecord,
): { id: string; bytes: Buffer } {
  const bytes = encodeMetadataObject(encryptionKey, associatedData.snapshot, record, false);
  return { id: sha256Hex(bytes), bytes };
}

/** Read and verify one snapshot object; IntegrityError naming it when it is damaged. */
export async function readSnapshot(
  storage: Storage,
  encryptionKey: Uint8Array,
  id: string,
): Promise<SnapshotEntry> {
  const key = snapshotKey(id);
  const fail = (why: string) =>
    new IntegrityError(`snapshot ${key} in ${storage.url} is damaged: ${why}`, { details: { snapshot: id } });
  const bytes = await readObject(storage, key);
  if (sha256Hex(bytes) !== id) throw fail('its content does not match its name');
  const decoded = decodeMetadataObject(encryptionKey, associatedData.snapshot, bytes);
  if (!decoded.ok) throw fail(decoded.reason);
  const record = validateSnapshotRecord(decoded.value);
  if (typeof record === 'string') throw fail(record);
  return { ...record, id };
}

/** Oldest first by start time (ties by ID), the order `snapshots` lists them. */
export function compareSnapshots(a: SnapshotEntry, b: SnapshotEntry): number {
  if (a.startedAt !== b.startedAt) return a.startedAt < b.startedAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Resolve a full ID, a unique prefix (>= 4 hex) or `latest`, optionally within one job. */
export function resolveSnapshotRef(
  snapshots: readonly SnapshotEntry[],
  ref: string,
  job: string | undefined,
  url: string,
): SnapshotEntry {
  const inJob = job === undefined ? [...snapshots] : snapshots.filter((s) => s.job === job);
  const where = job === undefined ? `in ${url}` : `of job ${job} in ${url}`;
  if (ref === 'latest') {
    const latest = inJob.sort(compareSnapshots).at(-1);
    if (!latest) {
      throw new SnapshotNotFoundError(`no snapshots ${where}`, {
        hint: 'Run a backup first (`lifeboat backup <job>`), or check the job name and repository.',
      });
    }
    return latest;
  }
  const prefix = ref.toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(prefix)) {
    throw new UsageError(`invalid snapshot reference "${ref}"`, {
      hint: 'Use `latest`, a full snapshot ID or a prefix of at least 4 hex characters (see `lifeboat snapshots`).',
    });
  }
  const matches = inJob.filter((s) => s.id.startsWith(prefix));
  if (matches.length === 0) {
    throw new SnapshotNotFoundError(`no snapshot ${ref} ${where}`, {
      hint: 'Run `lifeboat snapshots` to list the snapshots.',
    });
  }
  if (matches.length > 1) {
    const shown = matches
      .slice(0, 5)
      .map((s) => s.id.slice(0, 12))
      .join(', ');
    throw new UsageError(
      `snapshot prefix ${ref} is ambiguous: it matches ${matches.length} snapshots (${shown})`,
      {
        hint: 'Give more characters of the snapshot ID.',
      },
    );
  }
  return matches[0]!;
}
