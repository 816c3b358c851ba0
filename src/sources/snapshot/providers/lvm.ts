/**
 * LVM: `lvcreate --snapshot --size <size> --name <name> <vg>/<lv>` (the
 * device-mapper freezes the filesystem for the moment of the snapshot), then
 * a read-only mount under the mount root (`nouuid` for XFS, whose snapshot
 * carries the origin's UUID). Removal unmounts and runs `lvremove -f`.
 * A classic LVM snapshot holds only `snapshotSize` of changes; when the
 * origin changes more while the backup reads, the snapshot becomes invalid,
 * which `verifyIntact` detects so such a backup is never committed.
 */
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OperationError, UsageError, isErrnoException } from '../../../errors.js';
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

export const DEFAULT_MOUNT_ROOT = '/run/lifeboat/snapshots';

function lvmSpec(spec: SnapshotJobSpec): NonNullable<SnapshotJobSpec['lvm']> {
  if (!spec.lvm) {
    throw new UsageError(`job ${spec.job} uses provider lvm but has no lvm section`, {
      hint: 'Add lvm: { volumeGroup: vg0, logicalVolume: data, snapshotSize: 2G } to the job.',
    });
  }
  return spec.lvm;
}

/** LVM size argument: bytes as `<n>b`, or an LVM size string (`2G`, `512M`). */
export function lvmSize(size: number | string): string {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new UsageError(`lvm.snapshotSize ${size} is not a positive size`);
    return `${size}b`;
  }
  if (!/^\d+(\.\d+)?[bBsSkKmMgGtTpPeE]?$/.test(size)) {
    throw new UsageError(`lvm.snapshotSize "${size}" is not an LVM size`, {
      hint: 'Write it like 2G, 512M or a number of bytes.',
    });
  }
  return size;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return false;
    throw err;
  }
}

export class LvmProvider implements SnapshotProvider {
  readonly kind = 'lvm' as const;
  constructor(private readonly ctx: ProviderContext) {}

  private mountPointFor(name: string): string {
    return join(this.ctx.mountRoot ?? DEFAULT_MOUNT_ROOT, name);
  }

  async check(spec: SnapshotJobSpec): Promise<void> {
    const lvm = lvmSpec(spec);
    lvmSize(lvm.snapshotSize);
    const origin = `${lvm.volumeGroup}/${lvm.logicalVolume}`;
    const r = await probe(this.ctx, ['lvs', '--noheadings', '-o', 'lv_name', origin]);
    if (r.code !== 0) {
      throw new OperationError(
        'E_SNAPSHOT_SOURCE_MISSING',
        `logical volume ${origin} does not exist: ${r.stderr.trim()}`,
        {
          hint: 'Check lvm.volumeGroup and lvm.logicalVolume of the job (lvs lists the volumes).',
        },
      );
    }
  }

  async handleFor(spec: SnapshotJobSpec, name: string): Promise<SnapshotHandle> {
    const lvm = lvmSpec(spec);
    const parsed = parseSnapshotName(name, spec.job);
    return {
      provider: 'lvm',
      name,
      id: `${lvm.volumeGroup}/${name}`,
      path: this.mountPointFor(name),
      createdAt: parsed?.createdAt ?? 0,
      kept: parsed?.kept ?? false,
    };
  }

  private async fsType(spec: SnapshotJobSpec, device: string): Promise<string> {
    const configured = lvmSpec(spec).fsType;
    if (configured) return configured;
    const { stdout } = await tool(this.ctx, ['blkid', '-o', 'value', '-s', 'TYPE', device]);
    return stdout.trim();
  }

  private async mountReadOnly(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void> {
    const device = `/dev/${handle.id}`;
    const options = ['ro'];
    if ((await this.fsType(spec, device)) === 'xfs') options.push('nouuid');
    options.push(...(lvmSpec(spec).mountOptions ?? []));
    await mkdir(handle.path, { recursive: true, mode: 0o700 });
    try {
      await tool(this.ctx, ['mount', '-o', options.join(','), device, handle.path]);
    } catch (err) {
      await rmdir(handle.path).catch(() => undefined);
      throw err;
    }
  }

  /** Unmount the snapshot if its mount point exists; "not mounted" is fine. */
  private async unmount(handle: SnapshotHandle): Promise<void> {
    if (!(await exists(handle.path))) return;
    const r = await probe(this.ctx, ['umount', handle.path]);
    if (r.code !== 0 && !/not mounted/i.test(r.stderr)) {
      throw new OperationError(
        'E_SNAPSHOT_UNMOUNT',
        `cannot unmount LVM snapshot ${handle.id} at ${handle.path}: ${r.stderr.trim()}`,
        {
          hint: `Something still uses ${handle.path} (fuser -vm ${handle.path}); the next run removes the snapshot, or run umount and lvremove -f ${handle.id}.`,
        },
      );
    }
    await rmdir(handle.path).catch(() => undefined);
  }

  async create(
    spec: SnapshotJobSpec,
    name: string,
    atMoment: SnapshotMoment = immediately,
  ): Promise<SnapshotHandle> {
    const lvm = lvmSpec(spec);
    const handle = await this.handleFor(spec, name);
    const size = lvmSize(lvm.snapshotSize);
    const origin = `${lvm.volumeGroup}/${lvm.logicalVolume}`;
    await atMoment(() => tool(this.ctx, ['lvcreate', '--snapshot', '--size', size, '--name', name, origin]));
    await this.mountReadOnly(spec, handle);
    return handle;
  }

  async remove(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void> {
    await this.unmount(handle);
    const present = await probe(this.ctx, ['lvs', '--noheadings', '-o', 'lv_name', handle.id]);
    if (present.code !== 0) return;
    await tool(this.ctx, ['lvremove', '-f', handle.id]);
  }

  async list(spec: SnapshotJobSpec): Promise<SnapshotHandle[]> {
    const lvm = lvmSpec(spec);
    const { stdout } = await tool(this.ctx, [
      'lvs',
      '--noheadings',
      '--separator',
      '|',
      '-o',
      'lv_name,origin',
      lvm.volumeGroup,
    ]);
    const handles: SnapshotHandle[] = [];
    for (const line of stdout.split('\n')) {
      const [name, origin] = line.trim().split('|');
      if (!name || origin !== lvm.logicalVolume) continue;
      if (parseSnapshotName(name, spec.job)) handles.push(await this.handleFor(spec, name));
    }
    return handles;
  }

  async findLeftovers(spec: SnapshotJobSpec): Promise<SnapshotHandle[]> {
    return (await this.list(spec)).filter((h) => !h.kept);
  }

  async keep(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<SnapshotHandle> {
    // Kept snapshots are not left mounted; open() mounts one when it is needed.
    await this.unmount(handle);
    const kept = keptName(handle.name);
    await tool(this.ctx, ['lvrename', lvmSpec(spec).volumeGroup, handle.name, kept]);
    return this.handleFor(spec, kept);
  }

  async open(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<OpenedSnapshot> {
    await this.mountReadOnly(spec, handle);
    return { path: handle.path, close: () => this.unmount(handle) };
  }

  async localProblem(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<string | undefined> {
    // A kept snapshot keeps taking copy-on-write blocks as the origin changes: it can still overflow.
    try {
      await this.verifyIntact(spec, handle);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  async verifyIntact(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void> {
    const { stdout } = await tool(this.ctx, [
      'lvs',
      '--noheadings',
      '--separator',
      '|',
      '-o',
      'lv_attr,snap_percent',
      handle.id,
    ]);
    const [attr = '', percentText = ''] = stdout.trim().split('|');
    const percent = Number.parseFloat(percentText);
    // lv_attr position 5 is the state: 'I' marks an invalid (overflowed) snapshot.
    if (attr[4] === 'I' || percent >= 100) {
      const size = String(lvmSpec(spec).snapshotSize);
      throw new OperationError(
        'E_SNAPSHOT_OVERFLOW',
        `LVM snapshot ${handle.id} filled up (${percentText.trim() || '100'}% of ${size}) while it was read; the copy is not consistent and was discarded`,
        {
          hint: `Give the snapshot more room (raise lvm.snapshotSize above ${size}), or run the job when the volume changes less.`,
        },
      );
    }
  }

  async excludes(): Promise<string[]> {
    return [];
  }
}
