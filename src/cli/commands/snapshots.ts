import type { Command } from 'commander';
import { listSnapshotsByRepository } from '../../app/snapshots.js';
import { emitResult, painter, table } from '../output.js';
import { formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

/** `lifeboat snapshots [--job J] [--repository R]` */
export function registerSnapshots(program: Command, context: ContextFactory): void {
  program
    .command('snapshots')
    .description('list restore points, per repository')
    .option('--job <name>', 'only this job')
    .option('--repository <name>', 'only this repository (default: all configured ones)')
    .addHelpText(
      'after',
      '\nWith --json every snapshot carries its fingerprint (file counts, per-table rows, image SHA-256).\n\n' +
        'Examples:\n  lifeboat snapshots\n  lifeboat snapshots --job web --json',
    )
    .action(async (opts: { job?: string; repository?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const result = await listSnapshotsByRepository(config, opts, commandDeps(ctx, config));
      for (const r of result) if (r.error) ctx.setExitCode(r.error.exitCode);
      const p = painter(ctx);
      emitResult(ctx, { repositories: result }, () =>
        result
          .map((r) => {
            if (r.error) return `${p.bold(r.repository)}: ${p.red(r.error.message)}`;
            if (r.snapshots.length === 0) return `${p.bold(r.repository)}: no snapshots`;
            const rows = [...r.snapshots]
              .reverse()
              .map((s) => [
                s.id.slice(0, 12),
                s.endedAt.replace('T', ' ').slice(0, 19),
                s.job,
                s.kind,
                s.host,
                `${s.stats.files}`,
                formatBytes(s.stats.bytes),
                s.partial ? p.yellow('partial') : '',
              ]);
            return `${p.bold(r.repository)} (${r.snapshots.length} snapshots)\n${table(['ID', 'TIME (UTC)', 'JOB', 'KIND', 'HOST', 'FILES', 'SIZE', ''], rows)}`;
          })
          .join('\n\n'),
      );
    });
}
