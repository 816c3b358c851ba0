/** The snapshot job: btrfs, LVM and ZFS snapshots backed up through the files machinery. */
export {
  backupSnapshot,
  validateSnapshotSpec,
  type BackupTreeFn,
  type BackupTreeHints,
  type BackupTreeResult,
  type SnapshotBackupOptions,
  type SnapshotBackupResult,
  type SnapshotInfo,
} from './backupSnapshot.js';
export {
  listLocalSnapshots,
  openLocalSnapshot,
  pruneLocalSnapshots,
  type LocalSnapshot,
} from './localSnapshots.js';
export { checkLocalAgainstTree, type LocalTreeCheck, type LocalTreeCheckOptions } from './localCheck.js';
export { LocalFirstRepo, type LocalReadStats, type RepoWithLengths } from './localContent.js';
export {
  backupNameOf,
  chooseLocalSnapshot,
  type LocalCandidate,
  type LocalChoice,
  type LocalChoiceInput,
} from './localRestore.js';
export { snapshotName, parseSnapshotName, keptName } from './naming.js';
export { atQuiescedMoment } from './quiesce.js';
export { createProvider } from './providers/index.js';
export type {
  DatabaseQuiesce,
  OpenedSnapshot,
  ProviderContext,
  QuiesceSpec,
  SnapshotHandle,
  SnapshotJobSpec,
  SnapshotProvider,
  SnapshotProviderKind,
} from './types.js';
