/** What the postgres and mysql job kinds share: fingerprints, their comparison, results. */
export {
  compareDatabaseFingerprints,
  compareFingerprints,
  describeDifference,
  type DatabaseFingerprint,
  type Difference,
  type ServerFingerprint,
  type TableFingerprint,
} from './fingerprint.js';
export {
  verificationFailure,
  type DatabaseBackupResult,
  type DatabaseRestoreResult,
  type DatabaseSnapshotRef,
  type RestoredDatabase,
} from './results.js';
export { loadDatabaseTree, type DatabaseManifest, type DumpEntry } from './snapshotTree.js';
