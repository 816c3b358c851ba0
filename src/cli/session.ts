import { hostname, userInfo } from 'node:os';
import { loadConfig } from '../config/load.js';
import type { LifeboatConfig } from '../config/schema.js';
import type { Deps } from '../app/deps.js';
import { registerCleanup } from '../platform/cleanup.js';
import type { CommandContext } from './context.js';
import { promptPassword } from './prompt.js';

/** Load the configuration for a command, printing its warnings on stderr. */
export async function loadCommandConfig(
  ctx: CommandContext,
): Promise<{ config: LifeboatConfig; file: string }> {
  const { config, file, warnings } = await loadConfig({
    ...(ctx.globals.config ? { path: ctx.globals.config } : {}),
    env: ctx.env,
    cwd: process.cwd(),
  });
  for (const w of warnings) ctx.logger.warn(w);
  return { config, file };
}

/** The Deps a use case needs, built from the command context; aborts on SIGINT/SIGTERM. */
export function commandDeps(ctx: CommandContext, config?: LifeboatConfig): Deps {
  const abort = new AbortController();
  registerCleanup('abort running work', () => abort.abort());
  const deps: Deps = {
    clock: ctx.clock,
    logger: ctx.logger,
    env: ctx.env,
    host: config?.defaults?.host ?? hostname(),
    user: safeUser(),
    signal: abort.signal,
  };
  if (process.stdin.isTTY && process.stderr.isTTY) deps.askPassword = promptPassword;
  return deps;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}
