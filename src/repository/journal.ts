/**
 * The run journal (docs/repository-format.md §11): one sealed object per run
 * record under `journal/<time>-<runId>`, so reports survive the loss of the
 * host that wrote them. Damaged records are reported and skipped, never fatal.
 */
import { randomBytes } from 'node:crypto';
import { redact } from '../platform/redact.js';
import type { Storage } from '../storage/types.js';
import { associatedData } from './crypto.js';
import { InvalidRepositoryInputError } from './errors.js';
import { compactTime, JOURNAL_PREFIX, journalKey, parseJournalName } from './layout.js';
import { decodeMetadataObject, encodeMetadataObject } from './metadataObject.js';
import { listKeys, mapLimit, readObject } from './storageIo.js';

export const JOURNAL_KINDS = ['backup', 'copy', 'drill', 'check', 'prune', 'forget'] as const;
export const JOURNAL_OUTCOMES = ['success', 'partial', 'failure', 'interrupted'] as const;
export type JournalKind = (typeof JOURNAL_KINDS)[number];
export type JournalOutcome = (typeof JOURNAL_OUTCOMES)[number];

export interface JournalError {
  code: string;
  message: string;
  hint?: string;
}

/** One run as recorded in the journal (schema version 1). */
export interface JournalRecord {
  v: 1;
  /** Run ID: 16 hex characters, also the suffix of the object name. */
  id: string;
  kind: JournalKind;
  job?: string;
  /** ISO-8601. */
  startedAt: string;
  endedAt: string;
  outcome: JournalOutcome;
  error?: JournalError;
  stats?: Record<string, number>;
  snapshotIds?: string[];
  host: string;
  toolVersion: string;
  details?: Record<string, unknown>;
}

/** What callers pass to appendJournal: `v` is implied, `id`, `host` and `toolVersion` default. */
export type JournalInput = Omit<JournalRecord, 'v' | 'id' | 'host' | 'toolVersion'> &
  Partial<Pick<JournalRecord, 'id' | 'host' | 'toolVersion'>>;

/** A journal object that could not be used, by name, and why. */
export interface JournalProblem {
  key: string;
  reason: string;
}

export interface JournalContext {
  storage: Storage;
  encryptionKey: Uint8Array;
  host: string;
  toolVersion: string;
}

export interface ListJournalOptions {
  /** Only runs that started at or after this time (ISO string or ms since the epoch). */
  since?: string | number;
}

const RUN_ID = /^[0-9a-f]{16}$/;

/** A fresh run ID, for callers that need it before the run ends (drills put it in evidence). */
export function newRunId(): string {
  return randomBytes(8).toString('hex');
}

function toMs(value: string | number, what: string): number {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new InvalidRepositoryInputError(`${what} ${String(value)} is not a valid time`);
  return ms;
}

/** Write one record; returns it as stored. */
export async function appendJournal(ctx: JournalContext, input: JournalInput): Promise<JournalRecord> {
  const id = input.id ?? newRunId();
  if (!RUN_ID.test(id))
    throw new InvalidRepositoryInputError(`journal run id ${id} is not 16 hex characters`);
  if (!(JOURNAL_KINDS as readonly string[]).includes(input.kind)) {
    throw new InvalidRepositoryInputError(`journal kind ${input.kind} is unknown`);
  }
  if (!(JOURNAL_OUTCOMES as readonly string[]).includes(input.outcome)) {
    throw new InvalidRepositoryInputError(`journal outcome ${input.outcome} is unknown`);
  }
  const started = toMs(input.startedAt, 'journal startedAt');
  toMs(input.endedAt, 'journal endedAt');
  // Error texts may quote commands or URLs: they pass through redact() like every log line.
  const error = input.error
    ? {
        code: input.error.code,
        message: redact(input.error.message),
        ...(input.error.hint === undefined ? {} : { hint: redact(input.error.hint) }),
      }
    : undefined;
  const record: JournalRecord = {
    ...input,
    v: 1,
    id,
    host: input.host ?? ctx.host,
    toolVersion: input.toolVersion ?? ctx.toolVersion,
    ...(error ? { error } : {}),
  };
  const name = `${compactTime(started)}-${id}`;
  const bytes = encodeMetadataObject(ctx.encryptionKey, associatedData.journal(name), record, false);
  await ctx.storage.put(journalKey(name), bytes, { ifNoneMatch: true, size: bytes.length });
  return record;
}

/** Structural validation of a decoded record against its object name. */
function validateRecord(value: unknown, runId: string): JournalRecord | string {
  const r = value as Partial<JournalRecord> | null;
  if (typeof r !== 'object' || r === null) return 'it is not a JSON object';
  if (typeof r.v === 'number' && r.v > 1)
    return `it has schema version ${r.v}, newer than this lifeboat reads (1)`;
  if (r.v !== 1) return 'its schema version is missing';
  if (r.id !== runId) return 'its run id does not match its name';
  if (!(JOURNAL_KINDS as readonly unknown[]).includes(r.kind)) return `unknown kind ${String(r.kind)}`;
  if (!(JOURNAL_OUTCOMES as readonly unknown[]).includes(r.outcome))
    return `unknown outcome ${String(r.outcome)}`;
  for (const f of ['startedAt', 'endedAt', 'host', 'toolVersion'] as const) {
    if (typeof r[f] !== 'string') return `field "${f}" is missing`;
  }
  return r as JournalRecord;
}

/** Read the journal (oldest first); damaged records go to `problems`. */
export async function listJournal(
  ctx: JournalContext,
  opts: ListJournalOptions = {},
): Promise<{ records: JournalRecord[]; problems: JournalProblem[] }> {
  const since = opts.since === undefined ? undefined : compactTime(toMs(opts.since, 'since'));
  const wanted: { key: string; name: string; runId: string }[] = [];
  for (const { key } of await listKeys(ctx.storage, JOURNAL_PREFIX)) {
    const name = key.slice(JOURNAL_PREFIX.length);
    const parsed = parseJournalName(name);
    if (!parsed) continue;
    if (since !== undefined && parsed.time < since) continue;
    wanted.push({ key, name, runId: parsed.runId });
  }
  wanted.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const problems: JournalProblem[] = [];
  const results = await mapLimit(wanted, 8, async (w) => {
    try {
      const decoded = decodeMetadataObject(
        ctx.encryptionKey,
        associatedData.journal(w.name),
        await readObject(ctx.storage, w.key),
      );
      if (!decoded.ok) return { key: w.key, reason: decoded.reason };
      return validateRecord(decoded.value, w.runId);
    } catch (err) {
      return { key: w.key, reason: `it could not be read (${(err as Error).message})` };
    }
  });
  const records: JournalRecord[] = [];
  results.forEach((r, i) => {
    if (typeof r === 'string') problems.push({ key: wanted[i]!.key, reason: r });
    else if ('v' in r) records.push(r);
    else problems.push(r);
  });
  return { records, problems };
}
