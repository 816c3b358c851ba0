/** Results shared by the postgres and mysql job kinds. */
import { PolicyBreachError } from '../../errors.js';
import type { BlobId } from '../../repository/tree.js';
import { describeDifference, type Difference, type ServerFingerprint } from './fingerprint.js';
import type { DatabaseManifest, SnapshotStats } from './snapshotTree.js';

/** What a database backup produced; the caller stores it with saveSnapshot. */
export interface DatabaseBackupResult {
  tree: BlobId;
  /** For SnapshotRecord.fingerprint. */
  fingerprint: ServerFingerprint;
  stats: SnapshotStats;
  /** Redacted warnings (non-fatal; the snapshot is complete). */
  warnings: string[];
  /** What was backed up, for SnapshotRecord.paths: database names, plus `globals` / `grants` when dumped. */
  paths: string[];
  manifest: DatabaseManifest;
}

/** The snapshot to restore: its root tree (a SnapshotEntry fits). */
export interface DatabaseSnapshotRef {
  tree: BlobId;
  id?: string;
}

export interface RestoredDatabase {
  source: string;
  target: string;
  created: boolean;
  bytes: number;
  /** Wall time until the database was restored: created, loaded, indexed (including spooling), ms. */
  restoreMs: number;
  /**
   * Wall time the verification added after that, ms. (PostgreSQL starts reading the rows back
   * while indexes are still being built, so part of the verification can hide inside restoreMs.)
   */
  verifyMs: number;
  differences: Difference[];
}

export interface DatabaseRestoreResult {
  dryRun: boolean;
  databases: RestoredDatabase[];
  /** Every difference found by verification (labelled with the target database name). */
  differences: Difference[];
  /** True when verification ran for every database and found no difference. */
  verified: boolean;
  /** The commands run (or, for a dry run, that would run), redacted. */
  commands: string[];
  /** What was (or would be) written, in order. */
  plan: string[];
  warnings: string[];
}

/**
 * The error for a restore whose verification found differences (exit code 4),
 * listing them; undefined when the restore verified (or verification was off).
 */
export function verificationFailure(
  result: DatabaseRestoreResult,
  limit = 20,
): PolicyBreachError | undefined {
  if (result.dryRun || result.differences.length === 0) return undefined;
  const lines = result.differences.slice(0, limit).map(describeDifference);
  if (result.differences.length > limit) lines.push(`… and ${result.differences.length - limit} more`);
  return new PolicyBreachError(
    `the restored database${result.databases.length > 1 ? 's do' : ' does'} not match the backup's fingerprint:\n  ${lines.join('\n  ')}`,
    {
      hint: 'Do not rely on this restore; compare the target with the source, then restore again into an empty database.',
      details: { differences: result.differences },
    },
  );
}
