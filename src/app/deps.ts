import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';

/** What every use case needs from the outside world; the CLI builds it, tests build their own. */
export interface Deps {
  clock: Clock;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /** This machine's name as recorded in snapshots, locks and the journal. */
  host: string;
  /** The OS user, recorded in locks and key slots. */
  user: string;
  /** Asks for a secret interactively; absent when there is no terminal. */
  askPassword?: (question: string) => Promise<string>;
  /** Cancels long work (SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** Progress of long work: which job, and how far. */
export interface ProgressEvent {
  job: string;
  phase: string;
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
  currentPath?: string;
}

export type ProgressListener = (event: ProgressEvent) => void;
