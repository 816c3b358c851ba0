/**
 * `lifeboat drill cleanup`: remove what crashed or killed drills left behind (server
 * processes, loop devices, mounts, scratch directories and databases), and environments
 * kept with --keep-on-failure. Found through the state files scratch environments write
 * before creating anything; environments of drills still running are left alone unless
 * forced.
 */
import { rm } from 'node:fs/promises';
import type { LifeboatConfig } from '../config/schema.js';
import { describeResource, listScratchRecords, releaseAll } from '../scratch/index.js';
import type { Deps } from './deps.js';
import { dropLeftoverDatabase } from './drillScratch.js';
import { stateDir } from './stateDir.js';

export interface DrillCleanupOptions {
  /** Also remove environments whose drill process still runs. */
  force?: boolean;
  /** Only list what would be removed. */
  dryRun?: boolean;
}

export interface CleanedEnvironment {
  id: string;
  kind: string;
  job: string;
  createdAt: string;
  /** Kept on purpose (--keep-on-failure) rather than left by a crash. */
  kept: boolean;
  resources: string[];
  /** What could not be removed (the state file then stays for another try). */
  problems: string[];
}

export interface DrillCleanupResult {
  stateDir: string;
  dryRun: boolean;
  removed: CleanedEnvironment[];
  /** Environments of drills still running. */
  inUse: Array<{ id: string; job: string; pid: number }>;
  /** State files that could not be read. */
  unreadable: Array<{ file: string; problem: string }>;
  ok: boolean;
}

/** Release every leftover scratch environment recorded under the state directory. */
export async function cleanupDrillLeftovers(
  config: LifeboatConfig,
  opts: DrillCleanupOptions,
  deps: Deps,
): Promise<DrillCleanupResult> {
  const dir = stateDir(config, deps.env);
  const result: DrillCleanupResult = {
    stateDir: dir,
    dryRun: Boolean(opts.dryRun),
    removed: [],
    inUse: [],
    unreadable: [],
    ok: true,
  };
  for (const found of await listScratchRecords(dir)) {
    const record = found.record;
    if (!record) {
      result.unreadable.push({ file: found.file, problem: found.problem ?? 'unreadable' });
      continue;
    }
    // A kept environment is finished with, whoever kept it; others may belong to a drill still running.
    if (found.ownerAlive && !record.kept && !opts.force) {
      result.inUse.push({ id: record.id, job: record.job, pid: record.pid });
      continue;
    }
    const entry: CleanedEnvironment = {
      id: record.id,
      kind: record.kind,
      job: record.job,
      createdAt: record.createdAt,
      kept: Boolean(record.kept),
      resources: record.resources.map(describeResource),
      problems: [],
    };
    if (!opts.dryRun) {
      entry.problems = await releaseAll(record.resources, {
        dropDatabase: (r) => dropLeftoverDatabase(config, r, deps),
      });
      if (entry.problems.length === 0) await rm(found.file, { force: true });
      else result.ok = false;
    }
    result.removed.push(entry);
  }
  if (result.unreadable.length > 0) result.ok = false;
  return result;
}
