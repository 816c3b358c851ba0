/** Types of the `snapshot` job kind: job spec, quiesce hooks, providers and their handles. */
import type { Logger } from '../../platform/logger.js';

export type SnapshotProviderKind = 'btrfs' | 'lvm' | 'zfs';

/**
 * Database quiesce supplied by the app: hold the database in a consistent
 * on-disk state while `atSnapshotMoment` runs, then release it. For example
 * PostgreSQL: `CHECKPOINT`, then `return atSnapshotMoment()`; MySQL/MariaDB:
 * `FLUSH TABLES WITH READ LOCK`, `try { return await atSnapshotMoment() }
 * finally { UNLOCK TABLES }` on the same connection. It must call
 * `atSnapshotMoment` exactly once and return (or throw) its result.
 */
export type DatabaseQuiesce = <T>(atSnapshotMoment: () => Promise<T>) => Promise<T>;

/** Optional hooks around the snapshot moment. */
export interface QuiesceSpec {
  /** Commands (argv arrays) run in order before the snapshot, e.g. to pause a service. */
  before?: string[][];
  /** Commands run after the snapshot, always once `before` started (also on failure and interrupt). */
  after?: string[][];
  /** `fsfreeze --freeze/--unfreeze` the source around the snapshot (LVM only; see docs/snapshots-and-images.md). */
  fsfreeze?: boolean;
  /** Database quiesce callback (the app resolves `quiesce.database: <job>` to one). */
  database?: DatabaseQuiesce;
  /** Timeout of each before/after command in ms (default 60 s). */
  timeoutMs?: number;
}

/** A snapshot job as the sources layer needs it (resolved from the configuration by the app). */
export interface SnapshotJobSpec {
  /** Job name; part of every snapshot name (`lifeboat-<job>-<timestamp>`). */
  job: string;
  provider: SnapshotProviderKind;
  /** The path as users know it (subvolume / mount point); recorded in the snapshot as the backed-up path. */
  source: string;
  btrfs?: {
    /** Where read-only snapshots are created; default `<mount point of source>/.lifeboat-snapshots`. */
    snapshotDir?: string;
  };
  lvm?: {
    volumeGroup: string;
    logicalVolume: string;
    /** Copy-on-write space of the snapshot: bytes, or an LVM size string such as `2G`. */
    snapshotSize: number | string;
    /** Filesystem type of the volume; detected with blkid when absent. */
    fsType?: string;
    /** Extra mount options for the read-only mount of the snapshot. */
    mountOptions?: string[];
  };
  zfs?: { dataset: string };
  quiesce?: QuiesceSpec;
  /** Keep this many newest snapshots on the machine as local restore points (default 0). */
  keepLocal?: number;
}

/** Where and how providers run their tools. */
export interface ProviderContext {
  logger: Logger;
  /** Environment of external tools (tests put fake lvcreate/zfs/... first on PATH). */
  env?: NodeJS.ProcessEnv;
  /** Timeout of each provider command in ms (default 120 s). */
  timeoutMs?: number;
  /** Where LVM snapshots are mounted; default /run/lifeboat/snapshots. Must be the same on every run. */
  mountRoot?: string;
}

/** Runs the atomic snapshot command at the quiesced moment. */
export type SnapshotMoment = <T>(take: () => Promise<T>) => Promise<T>;

/** The moment without quiesce hooks. */
export const immediately: SnapshotMoment = (take) => take();

/** One snapshot made by lifeboat. */
export interface SnapshotHandle {
  provider: SnapshotProviderKind;
  /** `lifeboat-<job>-<timestamp>`, plus `.kept` for a local restore point. */
  name: string;
  /** Provider-level ID: the subvolume path (btrfs), `vg/lv` (lvm), `dataset@name` (zfs). */
  id: string;
  /** Directory where the snapshot's files can be read (for LVM only while mounted). */
  path: string;
  /** Creation time from the name (ms since the epoch). */
  createdAt: number;
  /** A local restore point kept after a successful backup (not a leftover). */
  kept: boolean;
}

/** A snapshot opened for reading (LVM mounts it; btrfs and ZFS need nothing). */
export interface OpenedSnapshot {
  path: string;
  close(): Promise<void>;
}

/** What each provider does; created per run with a ProviderContext. */
export interface SnapshotProvider {
  readonly kind: SnapshotProviderKind;
  /** Fail with a clear error when the job's source cannot be snapshotted by this provider. */
  check(spec: SnapshotJobSpec): Promise<void>;
  /** The handle a snapshot of this name has (or would have); used to clean up by name. */
  handleFor(spec: SnapshotJobSpec, name: string): Promise<SnapshotHandle>;
  /**
   * Take a read-only snapshot named `name` and make it readable at
   * `handle.path`. The atomic snapshot command runs inside `atMoment` (the
   * quiesce hooks), mounting and checks outside it, so the quiesced time stays short.
   */
  create(spec: SnapshotJobSpec, name: string, atMoment?: SnapshotMoment): Promise<SnapshotHandle>;
  /** Remove a snapshot (unmount first where needed); nothing happens when it is already gone. */
  remove(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void>;
  /** Every snapshot of this job made by lifeboat, kept or not. */
  list(spec: SnapshotJobSpec): Promise<SnapshotHandle[]>;
  /** Snapshots of this job left behind by a crashed or interrupted run. */
  findLeftovers(spec: SnapshotJobSpec): Promise<SnapshotHandle[]>;
  /** Turn a snapshot whose backup succeeded into a local restore point (renamed `<name>.kept`, unmounted). */
  keep(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<SnapshotHandle>;
  /** Make a kept snapshot readable. */
  open(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<OpenedSnapshot>;
  /**
   * Why a kept snapshot cannot serve as a local restore point as it stands
   * (gone, made writable, overflowed, unreadable), or undefined when the
   * provider sees nothing wrong. Content is compared elsewhere (localCheck.ts).
   */
  localProblem(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<string | undefined>;
  /** Fail when the snapshot stopped being a consistent copy while it was read (a full LVM snapshot). */
  verifyIntact(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void>;
  /** Exclude patterns (absolute display paths) for artefacts of the provider inside the source. */
  excludes(spec: SnapshotJobSpec): Promise<string[]>;
}
