import type { Command } from 'commander';
import { locateSnapshot } from '../../app/snapshots.js';
import { listTree, type LsEntry } from '../../sources/files/index.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

const TYPE_CHAR: Record<string, string> = {
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  socket: 's',
  chardev: 'c',
  blockdev: 'b',
  file: '-',
};

/** `drwxr-xr-x`-style mode text. */
export function modeString(type: string, mode: number): string {
  const bits = 'rwxrwxrwx';
  let out = TYPE_CHAR[type] ?? '?';
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? bits[i] : '-';
  return out;
}

/** `lifeboat ls SNAPSHOT [PATH]` */
export function registerLs(program: Command, context: ContextFactory): void {
  program
    .command('ls')
    .description('list the contents of a snapshot')
    .argument('<snapshot>', 'snapshot ID, unique prefix, or "latest" (with --job)')
    .argument('[path]', 'path inside the snapshot, e.g. srv/www', '')
    .option('--job <name>', 'resolve "latest" within this job')
    .option('--repository <name>', 'look only in this repository')
    .option('-r, --recursive', 'list everything below the path', false)
    .addHelpText(
      'after',
      '\nPaths inside a snapshot are the backed-up paths without the leading slash\n' +
        '(/srv/www/index.html is srv/www/index.html).\n\n' +
        'Examples:\n  lifeboat ls latest --job web\n  lifeboat ls 3fa9c2 srv/www -r\n  lifeboat ls latest --job web --json',
    )
    .action(
      async (
        snapshotRef: string,
        path: string,
        opts: { job?: string; repository?: string; recursive: boolean },
        cmd: Command,
      ) => {
        const ctx = context(cmd);
        const { config } = await loadCommandConfig(ctx);
        const { repo, snapshot, repositoryName } = await locateSnapshot(
          config,
          {
            ref: snapshotRef,
            ...(opts.job ? { job: opts.job } : {}),
            ...(opts.repository ? { repository: opts.repository } : {}),
          },
          commandDeps(ctx, config),
        );
        try {
          const entries: LsEntry[] = [];
          for await (const e of listTree(repo, snapshot.tree, path, { recursive: opts.recursive })) {
            if (ctx.globals.json) entries.push(e);
            else ctx.out(formatEntry(e) + '\n');
          }
          if (ctx.globals.json) {
            ctx.out(
              JSON.stringify({ repository: repositoryName, snapshot: snapshot.id, path, entries }, null, 2) +
                '\n',
            );
          }
        } finally {
          await repo.close();
        }
      },
    );
}

function formatEntry(e: LsEntry): string {
  const owner = `${e.user ?? e.uid}/${e.group ?? e.gid}`;
  const size = e.size === undefined ? '' : String(e.size);
  const link = e.linkTarget ? ` -> ${e.linkTarget}` : '';
  return `${modeString(e.type, e.mode)} ${owner.padEnd(16)} ${size.padStart(12)} ${e.mtime.slice(0, 19).replace('T', ' ')} ${e.path}${link}`;
}
