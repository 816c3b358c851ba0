/** The `files` job kind: backup of paths into repository trees, restore, listing and verification. */
export {
  backupFiles,
  normalizeSourcePaths,
  type BackupFilesOptions,
  type BackupFilesResult,
} from './backup.js';
export { FileCache, type FileIdentity, type CachedContent } from './cache.js';
export { SourcePathError, RestoreTargetError, SnapshotPathError } from './errors.js';
export { listTree, type LsEntry, type ListOptions } from './ls.js';
export {
  restoreTree,
  type OverwriteMode,
  type RestoreOptions,
  type RestoreResult,
  type RestoreIssue,
} from './restore.js';
export type { BackupHooks, BackupStats, FilesFingerprint, FilesProgress, FilesSpec } from './types.js';
export { verifyRestoredTree, type TreeMismatch, type MismatchKind, type VerifyOptions } from './verify.js';
