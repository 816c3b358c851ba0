/** Types shared by backup, restore and their callers for the `files` job kind. */

/** What a files job backs up (from the job's configuration). */
export interface FilesSpec {
  /** Absolute paths; each is stored under its own components (`/srv/www` → `srv/www` in the snapshot). */
  paths: string[];
  /** Gitignore-style patterns; when non-empty only matching entries (and their parent dirs) are taken. */
  include: string[];
  /** Gitignore-style patterns of entries to leave out. */
  exclude: string[];
  /** Do not descend into other filesystems (their mount points are kept as empty directories). */
  oneFileSystem: boolean;
  /** Record extended attributes (needs getfattr/setfattr from the attr package). */
  xattrs: boolean;
  /**
   * Read the configured path `logical` (one of `paths`) from the directory
   * `physical` instead, recording it as `logical` (snapshot jobs).
   */
  readFrom?: { physical: string; logical: string };
}

/** Progress of a backup or restore, reported at most every ~100 ms and once at the end. */
export interface FilesProgress {
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
  currentPath: string;
}

/** Counts of what one backup run did. */
export interface BackupStats {
  files: number;
  dirs: number;
  symlinks: number;
  /** fifos and device nodes */
  specials: number;
  /** Logical bytes of all files stored (holes included). */
  bytes: number;
  /** Bytes actually read from disk (cache hits and hardlinks are not read). */
  readBytes: number;
  /** Plaintext bytes of data blobs that were new to the repository. */
  addedBytes: number;
  /** Number of data blobs that were new to the repository. */
  newBlobs: number;
  /** Files taken from the incremental cache without reading them. */
  cachedFiles: number;
  /** Entries left out by include/exclude rules. */
  excluded: number;
  /** Sockets (cannot be backed up; skipped with a log warning, not a partial snapshot). */
  skippedSockets: number;
}

/** The source fingerprint stored in the snapshot: counts of what was stored. */
export interface FilesFingerprint {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/**
 * Test seams: observe the moment a file's content is read. Production code
 * passes nothing.
 */
export interface BackupHooks {
  /** Called just before a file's content is read (not for cache hits or later hardlinks). */
  onRead?(path: string): void;
  /** Called after a file's content was read, before it is checked for changes. */
  afterRead?(path: string): Promise<void> | void;
}
