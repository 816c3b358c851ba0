/** What every scratch environment of a restore drill shares. */

/** The scratch kinds recorded in drill journal records (details.scratch). */
export type ScratchKind =
  | 'directory'
  | 'ephemeral-postgres'
  | 'scratch-postgres'
  | 'ephemeral-mysql'
  | 'scratch-mysql'
  | 'loop-image';

/**
 * Something a scratch environment created and must remove again. Recorded in the
 * environment's state file *before* it is created, so a crashed drill can be cleaned up.
 */
export type ScratchResource =
  /** A directory removed recursively (only names starting with `lifeboat-drill-`). */
  | { type: 'dir'; path: string }
  /** Server processes whose command line mentions `mention` (their data directory). */
  | { type: 'process'; mention: string; signal: 'SIGQUIT' | 'SIGTERM' | 'SIGKILL' }
  /** Loop devices backed by this file. */
  | { type: 'loop'; backingFile: string }
  /** A mount point, unmounted when mounted. */
  | { type: 'mount'; path: string }
  /** A scratch database on a configured server (dropped through the job's drill server). */
  | { type: 'database'; engine: 'postgres' | 'mysql'; job: string; name: string };

/** A scratch environment: created ready to restore into, disposed exactly once. */
export interface ScratchEnvironment {
  readonly kind: ScratchKind;
  /** Unique ID, also the name of its state file. */
  readonly id: string;
  /** One line for people: what it is and where. */
  readonly description: string;
  /** Remove everything the environment created; idempotent, never throws for one bad resource. */
  dispose(): Promise<void>;
  /** True when an interrupt (SIGINT/SIGTERM) tore the environment down. */
  readonly interrupted: boolean;
  /** Problems met while disposing (empty when everything went away). */
  readonly disposeProblems: string[];
  /** Keep the environment for inspection (--keep-on-failure): it stays until `lifeboat drill cleanup`. */
  keep(): Promise<void>;
}

/** Scratch databases (ephemeral servers and scratch databases on a configured server). */
export interface ScratchDatabaseServer extends ScratchEnvironment {
  readonly engine: 'postgres' | 'mysql';
  /** The name the restored copy of source database `source` gets on this server. */
  databaseFor(source: string): Promise<string>;
  /** First column of the first row of `sql` in `database` (undefined when no row). */
  queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown>;
  /** Environment variables that point client tools (psql, mariadb) at `database`. */
  clientEnv(database: string): Record<string, string>;
}

/** What creating any scratch environment needs. */
export interface ScratchBaseOptions {
  /** lifeboat's state directory (the environment's state file goes below it). */
  stateDir: string;
  job: string;
  runId?: string;
  /** ISO time recorded in the state file. */
  now: string;
  /** Told (synchronously, before anything is torn down) when SIGINT/SIGTERM disposes the environment. */
  onInterrupt?: () => void;
}
