/**
 * Cleanups that must run even when the process is interrupted: scratch
 * servers, loop devices, temp directories, locks. cli/main.ts runs them on
 * SIGINT/SIGTERM before exiting with 130; code paths also dispose normally.
 */
type Cleanup = () => Promise<void> | void;

const cleanups = new Map<number, { label: string; fn: Cleanup }>();
let nextId = 1;

/** Register a cleanup; call the returned function once the resource is released normally. */
export function registerCleanup(label: string, fn: Cleanup): () => void {
  const id = nextId++;
  cleanups.set(id, { label, fn });
  return () => void cleanups.delete(id);
}

/** Run every registered cleanup, newest first; failures are reported, not thrown. */
export async function runCleanups(onError: (label: string, err: unknown) => void = () => {}): Promise<void> {
  const pending = [...cleanups.entries()].reverse();
  cleanups.clear();
  for (const [, { label, fn }] of pending) {
    try {
      await fn();
    } catch (err) {
      onError(label, err);
    }
  }
}

/** How many cleanups are registered (tests). */
export function pendingCleanups(): number {
  return cleanups.size;
}
