/**
 * ZFS: `zfs snapshot <dataset>@<name>`, read through the dataset's
 * `<mountpoint>/.zfs/snapshot/<name>` (mounted on access by ZFS, also when
 * the snapdir is hidden), removed with `zfs destroy`.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OperationError, UsageError } from '../../../errors.js';
import { readMountInfo } from '../../image/mountInfo.js';
import { keptName, parseSnapshotName } from '../naming.js';
import { probe, tool } from '../providerCommands.js';
import {
  immediately,
  type OpenedSnapshot,
  type ProviderContext,
  type SnapshotHandle,
  type SnapshotJobSpec,
  type SnapshotMoment,
  type SnapshotProvider,
} from '../types.js';

function dataset(spec: SnapshotJobSpec): string {
  if (!spec.zfs?.dataset) {
    throw new UsageError(`job ${spec.job} uses provider zfs but has no zfs.dataset`, {
      hint: 'Add zfs: { dataset: tank/data } to the job.',
    });
  }
  return spec.zfs.dataset;
}

export class ZfsProvider implements SnapshotProvider {
  readonly kind = 'zfs' as const;
  private mountpoint: string | undefined;
  constructor(private readonly ctx: ProviderContext) {}

  /** Where the dataset is mounted (its `mountpoint` property, or the mount table for `legacy`). */
  private async datasetMountpoint(spec: SnapshotJobSpec): Promise<string> {
    if (this.mountpoint) return this.mountpoint;
    const ds = dataset(spec);
    const { stdout } = await tool(this.ctx, ['zfs', 'get', '-H', '-o', 'value', 'mountpoint', ds]);
    let mp = stdout.trim();
    if (mp === 'legacy') {
      mp = (await readMountInfo()).find((m) => m.fsType === 'zfs' && m.source === ds)?.mountPoint ?? 'none';
    }
    if (mp === 'none' || mp === '-' || !mp.startsWith('/')) {
      throw new OperationError(
        'E_SNAPSHOT_NOT_MOUNTED',
        `ZFS dataset ${ds} is not mounted, so its snapshots cannot be read`,
        {
          hint: `Mount it (zfs mount ${ds}) or give it a mountpoint (zfs set mountpoint=/… ${ds}).`,
        },
      );
    }
    this.mountpoint = mp;
    return mp;
  }

  async check(spec: SnapshotJobSpec): Promise<void> {
    const ds = dataset(spec);
    const r = await probe(this.ctx, ['zfs', 'list', '-H', '-o', 'name', ds]);
    if (r.code !== 0) {
      throw new OperationError(
        'E_SNAPSHOT_SOURCE_MISSING',
        `ZFS dataset ${ds} does not exist: ${r.stderr.trim()}`,
        {
          hint: 'Check zfs.dataset of the job (zfs list shows the datasets).',
        },
      );
    }
    await this.datasetMountpoint(spec);
  }

  async handleFor(spec: SnapshotJobSpec, name: string): Promise<SnapshotHandle> {
    const parsed = parseSnapshotName(name, spec.job);
    return {
      provider: 'zfs',
      name,
      id: `${dataset(spec)}@${name}`,
      path: join(await this.datasetMountpoint(spec), '.zfs', 'snapshot', name),
      createdAt: parsed?.createdAt ?? 0,
      kept: parsed?.kept ?? false,
    };
  }

  async create(
    spec: SnapshotJobSpec,
    name: string,
    atMoment: SnapshotMoment = immediately,
  ): Promise<SnapshotHandle> {
    const handle = await this.handleFor(spec, name);
    await atMoment(() => tool(this.ctx, ['zfs', 'snapshot', handle.id]));
    await this.assertReadable(handle);
    return handle;
  }

  private async assertReadable(handle: SnapshotHandle): Promise<void> {
    try {
      await stat(handle.path);
    } catch (err) {
      throw new OperationError(
        'E_SNAPSHOT_UNREADABLE',
        `ZFS snapshot ${handle.id} is not readable at ${handle.path}`,
        {
          hint: 'ZFS mounts snapshots under .zfs/snapshot on access; check that the dataset is mounted and readable.',
          cause: err,
        },
      );
    }
  }

  async remove(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void> {
    const present = await probe(this.ctx, ['zfs', 'list', '-H', '-t', 'snapshot', '-o', 'name', handle.id]);
    if (present.code !== 0) return;
    await tool(this.ctx, ['zfs', 'destroy', handle.id]);
  }

  async list(spec: SnapshotJobSpec): Promise<SnapshotHandle[]> {
    const ds = dataset(spec);
    const { stdout } = await tool(this.ctx, [
      'zfs',
      'list',
      '-H',
      '-t',
      'snapshot',
      '-o',
      'name',
      '-d',
      '1',
      ds,
    ]);
    const handles: SnapshotHandle[] = [];
    for (const line of stdout.split('\n')) {
      const full = line.trim();
      if (!full.startsWith(`${ds}@`)) continue;
      const name = full.slice(ds.length + 1);
      if (parseSnapshotName(name, spec.job)) handles.push(await this.handleFor(spec, name));
    }
    return handles;
  }

  async findLeftovers(spec: SnapshotJobSpec): Promise<SnapshotHandle[]> {
    return (await this.list(spec)).filter((h) => !h.kept);
  }

  async keep(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<SnapshotHandle> {
    const kept = await this.handleFor(spec, keptName(handle.name));
    await tool(this.ctx, ['zfs', 'rename', handle.id, kept.id]);
    return kept;
  }

  async open(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<OpenedSnapshot> {
    await this.assertReadable(handle);
    return { path: handle.path, close: async () => {} };
  }

  async localProblem(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<string | undefined> {
    // ZFS snapshots are immutable; one that is listed only has to be readable.
    try {
      await this.assertReadable(handle);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  async verifyIntact(): Promise<void> {
    // ZFS snapshots cannot overflow.
  }

  async excludes(): Promise<string[]> {
    return [];
  }
}
