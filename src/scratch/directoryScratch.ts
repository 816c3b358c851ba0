/** Scratch for files and snapshot jobs: a fresh private directory with room for the restore. */
import { checkFreeSpace, makeScratchDir, scratchParent } from './scratchDirs.js';
import { ScratchTracker } from './scratchState.js';
import { TrackedScratch } from './trackedScratch.js';
import type { ScratchBaseOptions } from './types.js';

export interface DirectoryScratchOptions extends ScratchBaseOptions {
  /** defaults.scratchRoot; the OS temp directory when absent. */
  root?: string;
  /** Bytes the restore will write (checked against the free space first). */
  neededBytes: number;
}

/** A fresh empty directory under the scratch root. */
export class DirectoryScratch extends TrackedScratch {
  readonly kind = 'directory' as const;
  /** The empty directory to restore into. */
  dir = '';

  constructor(tracker: ScratchTracker, onInterrupt?: () => void) {
    super(tracker, onInterrupt);
  }

  static async create(opts: DirectoryScratchOptions): Promise<DirectoryScratch> {
    const tracker = await ScratchTracker.create(opts.stateDir, {
      kind: 'directory',
      job: opts.job,
      createdAt: opts.now,
      ...(opts.runId ? { runId: opts.runId } : {}),
    });
    const env = new DirectoryScratch(tracker, opts.onInterrupt);
    await env.provision(async () => {
      const parent = await scratchParent(opts.root);
      await checkFreeSpace(parent, opts.neededBytes, `a restore of ${opts.job}`);
      env.dir = await makeScratchDir(tracker, parent, 'files');
      env.description = `directory ${env.dir}`;
    });
    return env;
  }
}
