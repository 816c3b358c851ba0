import type { Command } from 'commander';
import {
  listLocalRestorePoints,
  listSnapshotsByRepository,
  type JobLocalSnapshots,
  type RepositorySnapshots,
} from '../../app/snapshots.js';
import { emitResult, painter, table } from '../output.js';
import { formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { CommandContext } from '../context.js';
import type { ContextFactory } from './index.js';

/** `lifeboat snapshots [--job J] [--repository R] [--verify-local]` */
export function registerSnapshots(program: Command, context: ContextFactory): void {
  program
    .command('snapshots')
    .description('list restore points, per repository, and local snapshots kept on this machine')
    .option('--job <name>', 'only this job')
    .option('--repository <name>', 'only this repository (default: all configured ones; no local snapshots)')
    .option(
      '--verify-local',
      'compare each local snapshot with its repository snapshot, as restore does before using it',
      false,
    )
    .addHelpText(
      'after',
      '\nWith --json every snapshot carries its fingerprint (file counts, per-table rows, image SHA-256).\n' +
        'Snapshot jobs with keepLocal also list their local snapshots (location "local"): time, provider,\n' +
        'path, the repository snapshot made from each, and whether it is intact (a quick check unless\n' +
        '--verify-local).\n\n' +
        'Examples:\n  lifeboat snapshots\n  lifeboat snapshots --job web --json\n' +
        '  lifeboat snapshots --job data --verify-local',
    )
    .action(async (opts: { job?: string; repository?: string; verifyLocal: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const result = await listSnapshotsByRepository(config, opts, deps);
      for (const r of result) if (r.error) ctx.setExitCode(r.error.exitCode);
      // Local snapshots are not in any repository: --repository asks for that repository only.
      const local = opts.repository
        ? []
        : await listLocalRestorePoints(config, { job: opts.job, verify: opts.verifyLocal }, result, deps);
      for (const l of local) if (l.error) ctx.setExitCode(l.error.exitCode);
      emitResult(ctx, { repositories: result, local }, () =>
        [describeRepositories(ctx, result), describeLocal(ctx, local)].filter(Boolean).join('\n\n'),
      );
    });
}

function describeRepositories(ctx: CommandContext, result: RepositorySnapshots[]): string {
  const p = painter(ctx);
  return result
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
    .join('\n\n');
}

function describeLocal(ctx: CommandContext, local: JobLocalSnapshots[]): string {
  if (local.length === 0) return '';
  const p = painter(ctx);
  const rows: string[][] = [];
  const problems: string[] = [];
  for (const j of local) {
    if (j.error) problems.push(`${j.job}: ${p.red(j.error.message)}`);
    for (const s of j.snapshots) {
      const state = s.intact
        ? p.green(s.checked === 'full' ? 'intact' : 'intact (quick check)')
        : p.red('not intact');
      rows.push([
        s.createdAt.replace('T', ' ').slice(0, 19),
        s.job,
        s.provider,
        s.path,
        s.repositorySnapshots.map((r) => `${r.repository}:${r.id.slice(0, 12)}`).join(', ') || '-',
        state,
      ]);
      if (s.problem) problems.push(`${s.name}: ${s.problem}`);
    }
  }
  const head = p.bold('local (snapshots kept on this machine)');
  const body = rows.length
    ? table(['TIME (UTC)', 'JOB', 'PROVIDER', 'PATH', 'REPOSITORY SNAPSHOT', 'STATE'], rows)
    : 'no local snapshots';
  return [`${head}\n${body}`, ...problems.map((x) => `  ${x}`)].join('\n');
}
