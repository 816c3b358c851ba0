import type { Command } from 'commander';
import {
  addRepoKey,
  initRepo,
  listRepoKeys,
  pickRepository,
  removeRepoKey,
  repoStats,
  unlockRepo,
} from '../../app/repoAdmin.js';
import { resolveSecret } from '../../config/secrets.js';
import { UsageError } from '../../errors.js';
import { describeLock } from '../../repository/locks.js';
import type { CommandContext } from '../context.js';
import { emitResult, table } from '../output.js';
import { formatBytes } from '../progress.js';
import { promptPassword } from '../prompt.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

async function setup(ctx: CommandContext, name: string | undefined) {
  const { config } = await loadCommandConfig(ctx);
  return { config, name: pickRepository(config, name), deps: commandDeps(ctx, config) };
}

async function newPassword(ctx: CommandContext, from: string | undefined): Promise<string> {
  if (from) return resolveSecret(from, { env: ctx.env });
  if (process.stdin.isTTY && process.stderr.isTTY) {
    const first = await promptPassword('new password: ');
    const again = await promptPassword('new password again: ');
    if (first !== again) throw new UsageError('the two passwords differ');
    return first;
  }
  throw new UsageError('no new password given', {
    hint: 'Pass --new-password-from env:NAME (or file:/path, command:…), or run on a terminal to be asked.',
  });
}

/** `lifeboat repo init|stats|unlock|key` */
export function registerRepo(program: Command, context: ContextFactory): void {
  const repo = program
    .command('repo')
    .description('create and look after repositories')
    .addHelpText(
      'after',
      '\nRepositories are named in the configuration (`repositories:`). When only one is configured,\n' +
        'the name may be left out.\n\n' +
        'Examples:\n  lifeboat repo init\n  lifeboat repo stats local --json\n  lifeboat repo key add --new-password-from env:NEW_PW',
    );

  repo
    .command('init')
    .description('create a new, empty repository at the configured location')
    .argument('[name]', 'repository name from the configuration')
    .action(async (name: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const s = await setup(ctx, name);
      const result = await initRepo(s.config, s.name, s.deps);
      emitResult(
        ctx,
        result,
        () =>
          `created repository ${result.repository} at ${result.url} (id ${result.id.slice(0, 12)})\n` +
          'Keep the password safe: without it the backups cannot be read. Add a second key slot with\n' +
          '`lifeboat repo key add`.',
      );
    });

  repo
    .command('stats')
    .description('sizes, deduplication and compression of a repository')
    .argument('[name]', 'repository name from the configuration')
    .action(async (name: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const s = await setup(ctx, name);
      const r = await repoStats(s.config, s.name, s.deps);
      emitResult(ctx, r, () =>
        [
          `repository ${r.repository} at ${r.url}`,
          `  snapshots:   ${r.snapshots}`,
          `  packs:       ${r.packs} (${r.dataPacks} data, ${r.treePacks} tree), index files ${r.indexFiles}`,
          `  blobs:       ${r.blobs} (${r.dataBlobs} data, ${r.treeBlobs} tree)`,
          `  stored:      ${formatBytes(r.storedBytes)}`,
          `  unique data: ${formatBytes(r.rawBytes)} (compression ${r.compressionRatio.toFixed(2)}x)`,
          `  logical:     ${formatBytes(r.logicalBytes)} (deduplication ${r.dedupRatio.toFixed(2)}x)`,
          `  locks:       ${r.locks.length ? r.locks.map(describeLock).join('; ') : 'none'}`,
        ].join('\n'),
      );
    });

  repo
    .command('unlock')
    .description('remove stale locks (older than 30 min without refresh)')
    .argument('[name]', 'repository name from the configuration')
    .option(
      '--all',
      'remove every lock, also fresh ones (only when no lifeboat process uses the repository)',
      false,
    )
    .action(async (name: string | undefined, opts: { all: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const s = await setup(ctx, name);
      const r = await unlockRepo(s.config, s.name, opts.all, s.deps);
      emitResult(ctx, r, () =>
        [
          `removed ${r.removed.length} lock(s) from ${r.repository}`,
          ...r.removed.map((l) => `  - ${describeLock(l)}`),
          ...(r.remaining.length ? [`still held: ${r.remaining.map(describeLock).join('; ')}`] : []),
        ].join('\n'),
      );
    });

  const key = repo.command('key').description('manage key slots (several passwords can open one repository)');
  key
    .command('list')
    .description('list key slots')
    .option('--repository <name>', 'repository name from the configuration')
    .action(async (opts: { repository?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const s = await setup(ctx, opts.repository);
      const r = await listRepoKeys(s.config, s.name, s.deps);
      emitResult(ctx, r, () =>
        [
          table(
            ['', 'ID', 'HOST', 'USER', 'CREATED'],
            r.keys.map((k) => [k.current ? '*' : '', k.id.slice(0, 12), k.host, k.user, k.createdAt]),
          ),
          ...r.damaged.map((d) => `damaged key file ${d.key}: ${d.reason}`),
        ].join('\n'),
      );
    });
  key
    .command('add')
    .description('add a key slot for another password')
    .option('--repository <name>', 'repository name from the configuration')
    .option('--new-password-from <ref>', 'the new password as a reference: env:NAME, file:/path or command:…')
    .action(async (opts: { repository?: string; newPasswordFrom?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const s = await setup(ctx, opts.repository);
      const password = await newPassword(ctx, opts.newPasswordFrom);
      const r = await addRepoKey(s.config, s.name, password, s.deps);
      emitResult(ctx, r, () => `added key ${r.id.slice(0, 12)} to ${r.repository}`);
    });
  key
    .command('remove')
    .description('remove a key slot (never the last one, nor the one in use)')
    .argument('<id>', 'key ID or unique prefix (see `repo key list`)')
    .option('--repository <name>', 'repository name from the configuration')
    .action(async (id: string, opts: { repository?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const s = await setup(ctx, opts.repository);
      const r = await removeRepoKey(s.config, s.name, id, s.deps);
      emitResult(ctx, r, () => `removed key ${r.id.slice(0, 12)} from ${r.repository}`);
    });
}
