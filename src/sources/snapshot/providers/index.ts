/** The snapshot provider for a job's `provider` setting. */
import { UsageError } from '../../../errors.js';
import type { ProviderContext, SnapshotProvider, SnapshotProviderKind } from '../types.js';
import { BtrfsProvider } from './btrfs.js';
import { LvmProvider } from './lvm.js';
import { ZfsProvider } from './zfs.js';

/** Create the provider of one kind for one run. */
export function createProvider(kind: SnapshotProviderKind, ctx: ProviderContext): SnapshotProvider {
  switch (kind) {
    case 'btrfs':
      return new BtrfsProvider(ctx);
    case 'lvm':
      return new LvmProvider(ctx);
    case 'zfs':
      return new ZfsProvider(ctx);
    default:
      throw new UsageError(`unknown snapshot provider ${String(kind)}`, { hint: 'Use btrfs, lvm or zfs.' });
  }
}
