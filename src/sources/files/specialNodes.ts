/**
 * Creating fifos and device nodes on restore. Node has no mkfifo/mknod, so
 * the coreutils tools run through platform/exec (argv, no shell).
 */
import { runChecked } from '../../platform/exec.js';

/** Split a Linux dev_t into major and minor numbers (glibc's encoding). */
export function majorMinor(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** Create a fifo with exactly `mode` (mkfifo -m ignores the umask). */
export async function makeFifo(path: string, mode: number): Promise<void> {
  await runChecked(['mkfifo', '-m', (mode & 0o7777).toString(8), '--', path], { timeoutMs: 30_000 });
}

/** Create a character or block device node (needs root). */
export async function makeDevice(
  path: string,
  type: 'chardev' | 'blockdev',
  mode: number,
  rdev: number,
): Promise<void> {
  const { major, minor } = majorMinor(rdev);
  await runChecked(
    [
      'mknod',
      '-m',
      (mode & 0o7777).toString(8),
      '--',
      path,
      type === 'chardev' ? 'c' : 'b',
      String(major),
      String(minor),
    ],
    { timeoutMs: 30_000 },
  );
}
