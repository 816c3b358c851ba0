/**
 * The state file of one scratch environment: `<stateDir>/drills/scratch/<id>.json`, listing
 * what the environment created (directories, server processes, loop devices, mounts,
 * scratch databases). Every resource is written down *before* it is created and the file
 * is removed only once everything is gone, so `lifeboat drill cleanup` can finish the job
 * of a drill that crashed or was killed. One file per environment: drills running at the
 * same time never write the same file.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { processAlive, processStartTicks } from './processes.js';
import type { ScratchKind, ScratchResource } from './types.js';

/** What a state file holds. */
export interface ScratchRecord {
  v: 1;
  id: string;
  kind: ScratchKind;
  job: string;
  /** The drill run this environment belongs to. */
  runId?: string;
  /** The lifeboat process that created it, and when that process started (to tell reused PIDs apart). */
  pid: number;
  pidStart?: string;
  host: string;
  /** ISO time of creation. */
  createdAt: string;
  /** Kept on purpose (--keep-on-failure) rather than left by a crash. */
  kept?: boolean;
  /** Human description (where it is, how to reach it). */
  description?: string;
  resources: ScratchResource[];
}

/** The directory holding the state files under lifeboat's state directory. */
export function scratchStateDir(stateDir: string): string {
  return join(stateDir, 'drills', 'scratch');
}

/** A new environment ID: kind-prefixed random hex (also safe inside file and database names). */
export function newScratchId(): string {
  return randomBytes(6).toString('hex');
}

/** Writes and updates one environment's state file. */
export class ScratchTracker {
  private closed = false;

  private constructor(
    readonly file: string,
    readonly record: ScratchRecord,
  ) {}

  /** Start the state file of a new environment. */
  static async create(
    stateDir: string,
    info: { id?: string; kind: ScratchKind; job: string; runId?: string; createdAt: string },
  ): Promise<ScratchTracker> {
    const id = info.id ?? newScratchId();
    const record: ScratchRecord = {
      v: 1,
      id,
      kind: info.kind,
      job: info.job,
      ...(info.runId ? { runId: info.runId } : {}),
      pid: process.pid,
      ...(await processStartTicks(process.pid).then((t) => (t ? { pidStart: t } : {}))),
      host: hostname(),
      createdAt: info.createdAt,
      resources: [],
    };
    const tracker = new ScratchTracker(join(scratchStateDir(stateDir), `${id}.json`), record);
    await tracker.write();
    return tracker;
  }

  get id(): string {
    return this.record.id;
  }

  /** Record a resource before creating it. */
  async add(resource: ScratchResource): Promise<void> {
    this.record.resources.push(resource);
    await this.write();
  }

  /** Update the description or the kept flag. */
  async annotate(fields: Pick<ScratchRecord, 'description' | 'kept'>): Promise<void> {
    Object.assign(this.record, fields);
    await this.write();
  }

  /** Everything is gone: remove the state file. */
  async close(): Promise<void> {
    this.closed = true;
    await rm(this.file, { force: true });
  }

  private async write(): Promise<void> {
    if (this.closed) return;
    await writeFileAtomic(this.file, JSON.stringify(this.record, null, 2) + '\n', { mode: 0o600 });
  }
}

/** A state file found on disk. */
export interface FoundScratchRecord {
  file: string;
  record?: ScratchRecord;
  /** Why the file could not be used. */
  problem?: string;
  /** The process that created it is still running (a drill in progress). */
  ownerAlive: boolean;
}

function isRecord(value: unknown): value is ScratchRecord {
  const r = value as Partial<ScratchRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.v === 1 &&
    typeof r.id === 'string' &&
    typeof r.pid === 'number' &&
    Array.isArray(r.resources)
  );
}

/** Every state file under the state directory, with whether its drill is still running. */
export async function listScratchRecords(stateDir: string): Promise<FoundScratchRecord[]> {
  const dir = scratchStateDir(stateDir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch {
    return [];
  }
  const out: FoundScratchRecord[] = [];
  for (const name of names.sort()) {
    const file = join(dir, name);
    try {
      const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (!isRecord(parsed)) {
        out.push({ file, problem: 'not a lifeboat scratch state file', ownerAlive: false });
        continue;
      }
      const sameHost = parsed.host === hostname();
      const ownerAlive = sameHost && (await processAlive(parsed.pid, parsed.pidStart));
      out.push({ file, record: parsed, ownerAlive });
    } catch (err) {
      out.push({ file, problem: `unreadable: ${(err as Error).message}`, ownerAlive: false });
    }
  }
  return out;
}
