/**
 * Fixtures for tests that need root, loop devices, ext4 or btrfs: probing the
 * facilities (skip with a reason, or fail under LIFEBOAT_TEST_REQUIRE=all),
 * and creating image files, loop devices and mounts that are always torn
 * down again (unmount, detach, remove) in `disposeAll()`.
 */
import { describe, it } from 'vitest';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runChecked } from '../../src/platform/exec.js';

/** True when CI demands every facility: a missing one fails instead of skipping. */
export const requireAll = process.env.LIFEBOAT_TEST_REQUIRE === 'all';

export interface Facility {
  ok: boolean;
  /** Why the facility is missing. */
  reason?: string;
}

async function hasCommand(cmd: string): Promise<boolean> {
  const r = await run(['sh', '-c', `command -v ${cmd}`]).catch(() => undefined);
  return r?.code === 0;
}

async function kernelSupports(fs: string): Promise<boolean> {
  const text = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  if (text.split('\n').some((l) => l.trim().split(/\s+/).at(-1) === fs)) return true;
  // Not loaded yet: a module may still load on first mount; try modprobe where it exists.
  if (await hasCommand('modprobe')) await run(['modprobe', fs]).catch(() => undefined);
  const again = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  return again.split('\n').some((l) => l.trim().split(/\s+/).at(-1) === fs);
}

/** Root, losetup and a free loop device. */
export async function probeLoopDevices(): Promise<Facility> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (loop devices and mounts)' };
  for (const cmd of ['losetup', 'mount', 'umount', 'blockdev']) {
    if (!(await hasCommand(cmd))) return { ok: false, reason: `${cmd} is not installed` };
  }
  const r = await run(['losetup', '-f']).catch(() => undefined);
  if (r?.code !== 0)
    return { ok: false, reason: `no free loop device: ${r?.stderr.trim() ?? 'losetup failed'}` };
  return { ok: true };
}

/** Loop devices plus mkfs.ext4/e2fsck and ext4 in the kernel. */
export async function probeExt4(): Promise<Facility> {
  const loop = await probeLoopDevices();
  if (!loop.ok) return loop;
  for (const cmd of ['mkfs.ext4', 'e2fsck']) {
    if (!(await hasCommand(cmd)))
      return { ok: false, reason: `${cmd} is not installed (apt-get install e2fsprogs)` };
  }
  if (!(await kernelSupports('ext4'))) return { ok: false, reason: 'the kernel has no ext4 support' };
  return { ok: true };
}

/** Loop devices plus btrfs-progs and btrfs in the kernel. */
export async function probeBtrfs(): Promise<Facility> {
  const loop = await probeLoopDevices();
  if (!loop.ok) return loop;
  for (const cmd of ['mkfs.btrfs', 'btrfs']) {
    if (!(await hasCommand(cmd)))
      return { ok: false, reason: `${cmd} is not installed (apt-get install btrfs-progs)` };
  }
  if (!(await kernelSupports('btrfs'))) return { ok: false, reason: 'the kernel has no btrfs support' };
  return { ok: true };
}

/**
 * `describe` that runs when the facility is present; otherwise it skips with
 * the reason in its title, or — under LIFEBOAT_TEST_REQUIRE=all — fails.
 */
export function describeWith(facility: Facility, name: string, body: () => void): void {
  if (facility.ok) {
    describe(name, body);
  } else if (requireAll) {
    describe(name, () => {
      it('has the facilities it needs', () => {
        throw new Error(
          `${facility.reason ?? 'facility missing'} (LIFEBOAT_TEST_REQUIRE=all forbids skipping)`,
        );
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${facility.reason ?? 'facility missing'}]`, body);
  }
}

/** Image files, loop devices and mounts of one test file; `disposeAll` releases them all. */
export class LoopFixtures {
  private readonly mounts: string[] = [];
  private readonly devices: string[] = [];
  private readonly dirs: string[] = [];

  /** A fresh temp directory removed by disposeAll. */
  async tempDir(prefix = 'lifeboat-loop-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** A sparse file of `size` bytes. */
  async sparseFile(path: string, size: number): Promise<string> {
    await writeFile(path, '');
    await truncate(path, size);
    return path;
  }

  /** Make a filesystem on a file or device (quietly, forcing over old signatures). */
  async mkfs(target: string, fs: 'ext4' | 'btrfs', extra: string[] = []): Promise<void> {
    if (fs === 'ext4') {
      // Initialise inode tables and the journal now, so no background thread changes the image later.
      await runChecked([
        'mkfs.ext4',
        '-q',
        '-F',
        '-E',
        'lazy_itable_init=0,lazy_journal_init=0',
        ...extra,
        target,
      ]);
    } else {
      await runChecked(['mkfs.btrfs', '-q', '-f', ...extra, target]);
    }
  }

  /** Attach a file to a free loop device; returns the device path. */
  async attach(image: string): Promise<string> {
    const { stdout } = await runChecked(['losetup', '-f', '--show', image]);
    const device = stdout.trim();
    this.devices.push(device);
    return device;
  }

  async detach(device: string): Promise<void> {
    await runChecked(['losetup', '-d', device]);
    this.devices.splice(this.devices.indexOf(device), 1);
  }

  async mount(source: string, mountPoint: string, options: string[] = []): Promise<void> {
    await runChecked(['mount', ...(options.length ? ['-o', options.join(',')] : []), source, mountPoint]);
    this.mounts.push(mountPoint);
  }

  async unmount(mountPoint: string): Promise<void> {
    await runChecked(['umount', mountPoint]);
    const i = this.mounts.lastIndexOf(mountPoint);
    if (i >= 0) this.mounts.splice(i, 1);
  }

  /** Unmount everything (newest first), detach every loop device, remove the temp dirs. Never throws. */
  async disposeAll(): Promise<string[]> {
    const problems: string[] = [];
    for (const mp of this.mounts.splice(0).reverse()) {
      // Unfreeze first: a test that failed while a filesystem was frozen must not hang the unmount.
      await run(['fsfreeze', '--unfreeze', mp]).catch(() => undefined);
      let r = await run(['umount', mp]).catch((e: unknown) => ({ code: -1, stderr: String(e) }));
      if (r.code !== 0)
        r = await run(['umount', '-l', mp]).catch((e: unknown) => ({ code: -1, stderr: String(e) }));
      if (r.code !== 0) problems.push(`umount ${mp}: ${r.stderr.trim()}`);
    }
    for (const dev of this.devices.splice(0).reverse()) {
      const r = await run(['losetup', '-d', dev]).catch((e: unknown) => ({ code: -1, stderr: String(e) }));
      if (r.code !== 0) problems.push(`losetup -d ${dev}: ${r.stderr.trim()}`);
    }
    // Never rm -r through a mount that would not go away: it would delete inside that filesystem.
    const stillMounted = problems.some((p) => p.startsWith('umount'));
    for (const dir of this.dirs.splice(0)) {
      if (!stillMounted) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    return problems;
  }
}
