import type { Command } from 'commander';
import { checkRepositories, type RepositoryCheckResult } from '../../app/check.js';
import { ExitCode, UsageError } from '../../errors.js';
import {
  describeReadData,
  parseReadDataSubset,
  summarizeCheck,
  type ReadDataSelection,
} from '../../repository/check.js';
import { exitCodeOfFailure } from '../../app/runRecord.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

interface CheckFlags {
  repository?: string;
  readData: boolean;
  readDataSubset?: string;
}

/** `lifeboat check [--repository NAME] [--read-data | --read-data-subset 10%|N/M]` */
export function registerCheck(program: Command, context: ContextFactory): void {
  program
    .command('check')
    .description('verify that every snapshot can be restored (structure, references, optionally all data)')
    .option('--repository <name>', 'check only this repository (default: every configured one)')
    .option('--read-data', 'also read, decrypt and verify every blob of every pack', false)
    .option(
      '--read-data-subset <subset>',
      'read a sample: 10% (random packs, different each run) or N/M (fixed group N of M)',
    )
    .addHelpText(
      'after',
      '\nWithout --read-data, check verifies that every snapshot decrypts, that every tree and data blob\n' +
        'it refers to is indexed, that every indexed pack exists with the right size and a header that\n' +
        'agrees with the index. Reading data finds bit rot and tampering inside packs. Every problem names\n' +
        'the damaged object and the snapshots it affects. Runs beside backups (shared lock).\n' +
        'Exit code 1 when problems are found.\n\n' +
        'Examples:\n  lifeboat check\n  lifeboat check --read-data-subset 10%\n  lifeboat check --repository offsite --read-data --json',
    )
    .action(async (flags: CheckFlags, cmd: Command) => {
      const ctx = context(cmd);
      const readData = readDataOf(flags);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const progress = createProgress(ctx);
      let phase = '';
      const results = await checkRepositories(
        config,
        {
          readData,
          ...(flags.repository ? { repository: flags.repository } : {}),
          onProgress: (e) => {
            if (e.phase !== phase) progress.step(`${e.job}: ${(phase = e.phase)}`);
            progress.update(e);
          },
        },
        deps,
      );
      progress.stop();
      for (const r of results) ctx.setExitCode(exitCodeOf(r));
      emitResult(ctx, { ok: results.every((r) => r.report?.ok), results }, () =>
        results.map((r) => describe(ctx, r)).join('\n\n'),
      );
    });
}

function readDataOf(flags: CheckFlags): ReadDataSelection {
  if (flags.readData && flags.readDataSubset) {
    throw new UsageError('give either --read-data or --read-data-subset, not both');
  }
  if (flags.readData) return { kind: 'all' };
  if (flags.readDataSubset) return parseReadDataSubset(flags.readDataSubset);
  return { kind: 'none' };
}

function exitCodeOf(r: RepositoryCheckResult): number {
  if (r.report) return r.report.ok ? ExitCode.ok : ExitCode.internal;
  return r.error ? exitCodeOfFailure(r.error) : ExitCode.internal;
}

const short = (id: string) => id.slice(0, 12);
const MAX_SHOWN = 20;

function describe(ctx: CommandContext, r: RepositoryCheckResult): string {
  const p = painter(ctx);
  if (!r.report) {
    const lines = [
      `${p.red('✘')} ${p.bold(r.repository)}: check could not run: ${r.error?.message ?? 'unknown error'}`,
    ];
    if (r.error?.hint) lines.push(`  hint: ${r.error.hint}`);
    return lines.join('\n');
  }
  const { report } = r;
  const s = report.stats;
  const lines = [
    `${p.bold(r.repository)} (${r.url}): ${s.snapshots} snapshots, ${s.packs} packs (${formatBytes(s.packBytes)}), ` +
      `${s.blobs} blobs, ${s.trees} trees; read ${describeReadData(report.readData)}` +
      (s.packsRead ? ` (${s.packsRead} packs, ${formatBytes(s.bytesRead)})` : '') +
      ` in ${(r.durationMs / 1000).toFixed(1)}s`,
  ];
  if (report.ok) lines.push(`${p.green('✔')} ${summarizeCheck(report)}`);
  else {
    lines.push(`${p.red('✘')} ${summarizeCheck(report)}`);
    for (const problem of report.problems.slice(0, MAX_SHOWN)) {
      lines.push(`  ${p.red(problem.kind)} ${problem.object}: ${problem.message}`);
      if (problem.snapshots.length) {
        const shown = problem.snapshots.slice(0, 8).map(short).join(', ');
        const more = problem.snapshots.length > 8 ? ` and ${problem.snapshots.length - 8} more` : '';
        lines.push(`      affects snapshot${problem.snapshots.length === 1 ? '' : 's'} ${shown}${more}`);
      }
    }
    if (report.problems.length > MAX_SHOWN)
      lines.push(`  … and ${report.problems.length - MAX_SHOWN} more problems (see --json)`);
    if (report.affectedSnapshots.length) {
      lines.push('  affected snapshots:');
      for (const a of report.affectedSnapshots.slice(0, MAX_SHOWN)) {
        const what = a.job
          ? `${a.job} on ${a.host}, ${a.startedAt?.replace('T', ' ').slice(0, 19)}`
          : 'unreadable';
        lines.push(`    ${short(a.id)}  ${what}  (${a.problems} problem${a.problems === 1 ? '' : 's'})`);
      }
      if (report.affectedSnapshots.length > MAX_SHOWN)
        lines.push(`    … and ${report.affectedSnapshots.length - MAX_SHOWN} more (see --json)`);
    }
    // A retention shorter than the policy asks is no damage: forgetting the snapshot would be the wrong advice.
    const onlyRetention = report.problems.every((x) => x.kind === 'immutability');
    lines.push(
      onlyRetention
        ? '  hint: the data is intact; back up (or copy) the affected jobs again: that locks their kept restore ' +
            'points until now + immutableFor (docs/copies-and-immutability.md).'
        : '  hint: restore the damaged objects from another copy of the repository if you have one; forget the ' +
            'affected snapshots (`lifeboat forget --snapshot ID`) and back up again so the next restore point is whole.',
    );
  }
  for (const note of report.notes) lines.push(`  ${p.dim(`note: ${note}`)}`);
  return lines.join('\n');
}
