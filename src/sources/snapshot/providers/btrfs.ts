/**
 * btrfs: `btrfs subvolume snapshot -r <source> <snapshotDir>/<name>`. The
 * source must be a subvolume. Snapshots live on the same filesystem, by
 * default in `.lifeboat-snapshots` at the filesystem's mount point; when that
 * is inside the source, the directory appears (empty) in every snapshot and
 * is excluded from the backup.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readdir, realpath, rename, stat, statfs } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { OperationError, isErrnoException } from '../../../errors.js';
import { mountContaining, readMountInfo } from '../../image/mountInfo.js';
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

const BTRFS_SUPER_MAGIC = 0x9123683e;
const DEFAULT_DIR = '.lifeboat-snapshots';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return false;
    throw err;
  }
}

export class BtrfsProvider implements SnapshotProvider {
  readonly kind = 'btrfs' as const;
  constructor(private readonly ctx: ProviderContext) {}

  private async realSource(spec: SnapshotJobSpec): Promise<string> {
    try {
      return await realpath(spec.source);
    } catch (err) {
      if (isErrnoException(err) && err.code === 'ENOENT') {
        throw new OperationError(
          'E_SNAPSHOT_SOURCE_MISSING',
          `snapshot source ${spec.source} does not exist`,
          {
            hint: 'Check the job’s source path; the btrfs filesystem may not be mounted.',
          },
        );
      }
      throw err;
    }
  }

  /** The directory that holds this job's snapshots. */
  async snapshotDir(spec: SnapshotJobSpec): Promise<string> {
    if (spec.btrfs?.snapshotDir) return resolve(spec.btrfs.snapshotDir);
    const source = await this.realSource(spec);
    const mount = mountContaining(await readMountInfo(), source);
    return join(mount?.mountPoint ?? source, DEFAULT_DIR);
  }

  async check(spec: SnapshotJobSpec): Promise<void> {
    const source = await this.realSource(spec);
    const fs = await statfs(source);
    if (fs.type !== BTRFS_SUPER_MAGIC) {
      throw new OperationError(
        'E_SNAPSHOT_NOT_BTRFS',
        `snapshot source ${spec.source} is not on a btrfs filesystem`,
        {
          hint: 'Use provider lvm or zfs for other volume managers, or back the path up with a files job.',
        },
      );
    }
    const shown = await probe(this.ctx, ['btrfs', 'subvolume', 'show', source]);
    if (shown.code !== 0) {
      throw new OperationError(
        'E_SNAPSHOT_NOT_SUBVOLUME',
        `snapshot source ${spec.source} is not a btrfs subvolume`,
        {
          hint:
            'btrfs snapshots are taken of subvolumes only: point the job at a subvolume (btrfs subvolume list <mount point>), ' +
            'or create one (btrfs subvolume create), move the data into it, or use a files job.',
          details: { stderr: shown.stderr.trim() },
        },
      );
    }
  }

  async handleFor(spec: SnapshotJobSpec, name: string): Promise<SnapshotHandle> {
    const parsed = parseSnapshotName(name, spec.job);
    const path = join(await this.snapshotDir(spec), name);
    return {
      provider: 'btrfs',
      name,
      id: path,
      path,
      createdAt: parsed?.createdAt ?? 0,
      kept: parsed?.kept ?? false,
    };
  }

  async create(
    spec: SnapshotJobSpec,
    name: string,
    atMoment: SnapshotMoment = immediately,
  ): Promise<SnapshotHandle> {
    const dir = await this.snapshotDir(spec);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await this.handleFor(spec, name);
    const source = await this.realSource(spec);
    await atMoment(() => tool(this.ctx, ['btrfs', 'subvolume', 'snapshot', '-r', source, handle.path]));
    return handle;
  }

  async remove(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<void> {
    if (!(await exists(handle.path))) return;
    await tool(this.ctx, ['btrfs', 'subvolume', 'delete', handle.path]);
  }

  async list(spec: SnapshotJobSpec): Promise<SnapshotHandle[]> {
    const dir = await this.snapshotDir(spec);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isErrnoException(err) && err.code === 'ENOENT') return [];
      throw err;
    }
    const handles: SnapshotHandle[] = [];
    for (const name of names) {
      const parsed = parseSnapshotName(name, spec.job);
      if (parsed)
        handles.push({ provider: 'btrfs', name, id: join(dir, name), path: join(dir, name), ...parsed });
    }
    return handles;
  }

  async findLeftovers(spec: SnapshotJobSpec): Promise<SnapshotHandle[]> {
    return (await this.list(spec)).filter((h) => !h.kept);
  }

  async keep(spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<SnapshotHandle> {
    const kept = await this.handleFor(spec, keptName(handle.name));
    // Renaming a read-only subvolume changes only its entry in the (writable) parent directory.
    await rename(handle.path, kept.path);
    return kept;
  }

  async open(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<OpenedSnapshot> {
    return { path: handle.path, close: async () => {} };
  }

  async localProblem(_spec: SnapshotJobSpec, handle: SnapshotHandle): Promise<string | undefined> {
    try {
      // On a read-only subvolume btrfs refuses write access with EROFS, also to root; no tool needed.
      await access(handle.path, fsConstants.W_OK);
    } catch (err) {
      if (isErrnoException(err) && err.code === 'EROFS') return undefined;
      if (isErrnoException(err) && err.code === 'ENOENT') return `${handle.path} no longer exists`;
      return `${handle.path} cannot be checked: ${err instanceof Error ? err.message : String(err)}`;
    }
    return `${handle.path} is writable: its read-only flag was cleared (btrfs property get -ts ${handle.path} ro), so its files may have changed`;
  }

  async verifyIntact(): Promise<void> {
    // btrfs snapshots cannot overflow: they share extents with the source.
  }

  async excludes(spec: SnapshotJobSpec): Promise<string[]> {
    const source = await this.realSource(spec);
    const dir = await this.snapshotDir(spec);
    const rel = relative(source, dir);
    if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return [];
    return [`${join(resolve(spec.source), rel)}/`];
  }
}
