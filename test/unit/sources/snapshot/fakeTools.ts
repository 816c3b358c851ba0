/**
 * Test harness for the LVM and ZFS command plans: a temp dir with the fake
 * tools' state and call log, and the environment that puts
 * test/helpers/fakebin first on PATH. See test/helpers/fakebin/README.md.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const fakebin = fileURLToPath(new URL('../../../helpers/fakebin', import.meta.url));

export interface FakeWorld {
  dir: string;
  state: string;
  log: string;
  mountRoot: string;
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Calls recorded so far, one `<tool> <args>` line each; clears the log when `reset`. */
  calls(reset?: boolean): Promise<string[]>;
  addLv(vg: string, name: string, origin?: string): Promise<void>;
  dispose(): Promise<void>;
}

export async function fakeWorld(): Promise<FakeWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-fakebin-'));
  const state = join(dir, 'state');
  const log = join(dir, 'calls.log');
  const mountRoot = join(dir, 'mnt');
  await mkdir(state);
  await writeFile(log, '');
  return {
    dir,
    state,
    log,
    mountRoot,
    env: (extra = {}) => ({
      ...process.env,
      PATH: `${fakebin}:${process.env.PATH ?? ''}`,
      FAKE_LOG: log,
      FAKE_STATE: state,
      ...extra,
    }),
    async calls(reset = false) {
      const lines = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
      if (reset) await writeFile(log, '');
      return lines;
    },
    async addLv(vg, name, origin = '') {
      await mkdir(join(state, 'lvm', vg), { recursive: true });
      await writeFile(join(state, 'lvm', vg, name), origin);
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
