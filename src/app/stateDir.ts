import { homedir } from 'node:os';
import { join } from 'node:path';
import type { LifeboatConfig } from '../config/schema.js';

/**
 * Where lifeboat keeps local state (incremental caches, drill leftovers):
 * the configured `defaults.stateDir`, else $LIFEBOAT_STATE_DIR, else
 * /var/lib/lifeboat for root and $XDG_STATE_HOME/lifeboat (~/.local/state) otherwise.
 * Losing it costs speed, never correctness.
 */
export function stateDir(config: LifeboatConfig | undefined, env: NodeJS.ProcessEnv): string {
  if (config?.defaults?.stateDir) return config.defaults.stateDir;
  if (env.LIFEBOAT_STATE_DIR) return env.LIFEBOAT_STATE_DIR;
  if (process.getuid?.() === 0) return '/var/lib/lifeboat';
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'lifeboat');
}

/** The incremental cache file of one job in one repository. */
export function fileCachePath(dir: string, repositoryId: string, job: string): string {
  return join(dir, 'cache', repositoryId.slice(0, 16), `${job}.cache`);
}
