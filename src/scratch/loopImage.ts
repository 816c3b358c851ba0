/**
 * Scratch for image jobs: the image is restored into a sparse file in a private scratch
 * directory, attached read-only to a loop device (with its partitions), each filesystem
 * checked without writing (`e2fsck -fn`, `xfs_repair -n`, `btrfs check --readonly`,
 * `fsck -n`), and optionally mounted read-only for user checks. Needs root (loop devices).
 */
import { mkdir, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { OperationError } from '../errors.js';
import { lastLines, run, runChecked } from '../platform/exec.js';
import { checkFreeSpace, makeScratchDir, scratchParent } from './scratchDirs.js';
import { ScratchTracker } from './scratchState.js';
import { TrackedScratch } from './trackedScratch.js';
import type { ScratchBaseOptions } from './types.js';

export interface LoopImageOptions extends ScratchBaseOptions {
  root?: string;
  /** Bytes of data the sparse image will hold (its zero runs stay holes). */
  neededBytes: number;
}

/** One filesystem check. */
export interface FsckResult {
  device: string;
  /** ext4, xfs …, or undefined when no filesystem signature was found. */
  fsType?: string;
  ok: boolean;
  /** The checker and its verdict, or why nothing was checked. */
  message: string;
  skipped: boolean;
}

/** How each filesystem is checked without writing to it. */
function checkCommand(fsType: string, device: string): string[] {
  if (/^ext[234]$/.test(fsType)) return ['e2fsck', '-f', '-n', device];
  if (fsType === 'xfs') return ['xfs_repair', '-n', device];
  if (fsType === 'btrfs') return ['btrfs', 'check', '--readonly', device];
  if (fsType === 'vfat' || fsType === 'msdos') return ['fsck.vfat', '-n', device];
  return ['fsck', '-n', '-t', fsType, device];
}

/** Mount options that keep a read-only mount from replaying a journal (which would write). */
function readOnlyOptions(fsType: string): string {
  if (/^ext[34]$/.test(fsType)) return 'ro,noload';
  if (fsType === 'xfs') return 'ro,norecovery';
  return 'ro';
}

export class LoopImageScratch extends TrackedScratch {
  readonly kind = 'loop-image' as const;
  dir = '';
  /** The sparse file the image is restored into. */
  imagePath = '';
  /** The read-only loop device, once attached. */
  device: string | undefined;
  /** Mount point of the read-only mount, once mounted. */
  mountPoint: string | undefined;

  constructor(tracker: ScratchTracker, onInterrupt?: () => void) {
    super(tracker, onInterrupt);
  }

  static async create(opts: LoopImageOptions): Promise<LoopImageScratch> {
    if (process.getuid?.() !== 0) {
      throw new OperationError(
        'E_SCRATCH_PRIVILEGE',
        'image drills need root (loop devices and read-only mounts)',
        {
          hint: 'Run `lifeboat drill` for image jobs as root.',
        },
      );
    }
    const tracker = await ScratchTracker.create(opts.stateDir, {
      kind: 'loop-image',
      job: opts.job,
      createdAt: opts.now,
      ...(opts.runId ? { runId: opts.runId } : {}),
    });
    const env = new LoopImageScratch(tracker, opts.onInterrupt);
    await env.provision(async () => {
      const parent = await scratchParent(opts.root);
      await checkFreeSpace(parent, opts.neededBytes, `a restore of image job ${opts.job}`);
      env.dir = await makeScratchDir(tracker, parent, 'image');
      env.imagePath = join(env.dir, 'image.img');
      env.description = `sparse image ${env.imagePath}`;
    });
    return env;
  }

  /** Attach the restored image read-only (partitions scanned); returns the device. */
  async attach(): Promise<string> {
    await this.track({ type: 'loop', backingFile: this.imagePath });
    const { stdout } = await runChecked(['losetup', '-f', '--show', '-r', '-P', this.imagePath], {
      timeoutMs: 60_000,
    });
    this.device = stdout.trim();
    this.description = `sparse image ${this.imagePath} on ${this.device} (read-only)`;
    return this.device;
  }

  /** The devices holding filesystems: the partitions when there is a partition table, else the device. */
  async filesystemDevices(): Promise<string[]> {
    if (!this.device) throw new Error('attach() the image first');
    const name = basename(this.device);
    // udev may take a moment to create partition nodes; /sys lists them at once.
    const parts = (await readdir(`/sys/block/${name}`).catch(() => [] as string[]))
      .filter((e) => e.startsWith(`${name}p`))
      .sort((a, b) => Number(a.slice(name.length + 1)) - Number(b.slice(name.length + 1)));
    return parts.length > 0 ? parts.map((p) => `/dev/${p}`) : [this.device];
  }

  /** The filesystem type on a device (blkid), undefined when there is none. */
  async fsType(device: string): Promise<string | undefined> {
    const r = await run(['blkid', '-p', '-o', 'value', '-s', 'TYPE', device], { timeoutMs: 30_000 });
    const type = r.code === 0 ? r.stdout.trim() : '';
    return type || undefined;
  }

  /** Check one filesystem without writing to it. */
  async fsck(device: string, timeoutMs: number): Promise<FsckResult> {
    const fsType = await this.fsType(device);
    if (!fsType) {
      return {
        device,
        ok: true,
        skipped: true,
        message: `${device}: no filesystem signature, nothing to check`,
      };
    }
    if (fsType === 'swap' || fsType.endsWith('_member') || fsType === 'crypto_LUKS') {
      return {
        device,
        fsType,
        ok: true,
        skipped: true,
        message: `${device}: ${fsType}, not a checkable filesystem`,
      };
    }
    const argv = checkCommand(fsType, device);
    const r = await run(argv, { timeoutMs });
    const ok = r.code === 0;
    return {
      device,
      fsType,
      ok,
      skipped: false,
      message: ok
        ? `${argv[0]} found ${device} (${fsType}) clean`
        : `${argv.join(' ')} exited ${r.code}: ${lastLines(r.stdout + '\n' + r.stderr, 4)}`,
    };
  }

  /** Mount a filesystem read-only under the scratch directory; returns the mount point. */
  async mountReadOnly(device: string, fsType: string): Promise<string> {
    const mountPoint = join(this.dir, 'mnt');
    await mkdir(mountPoint, { recursive: true, mode: 0o700 });
    await this.track({ type: 'mount', path: mountPoint });
    await runChecked(['mount', '-t', fsType, '-o', readOnlyOptions(fsType), device, mountPoint], {
      timeoutMs: 60_000,
    });
    this.mountPoint = mountPoint;
    return mountPoint;
  }
}
