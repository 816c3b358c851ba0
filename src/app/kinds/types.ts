import type { LifeboatConfig } from '../../config/schema.js';
import type { Repository } from '../../repository/repository.js';
import type { BlobId } from '../../repository/tree.js';
import type { Deps, ProgressListener } from '../deps.js';

/** What any job kind's backup hands back before the snapshot is committed. */
export interface SourceOutcome {
  tree: BlobId;
  /** The sources as the user named them (paths, databases, device). */
  paths: string[];
  fingerprint: Record<string, unknown>;
  stats: { files: number; dirs: number; bytes: number; addedBytes: number; blobs: number };
  warnings: string[];
  partial: boolean;
}

export interface SourceContext {
  config: LifeboatConfig;
  jobName: string;
  deps: Deps;
  onProgress?: ProgressListener;
}

/** The backup half of a job kind: produce a tree in `repo`; nothing is committed here. */
export type BackupAdapter<J> = (repo: Repository, job: J, ctx: SourceContext) => Promise<SourceOutcome>;
