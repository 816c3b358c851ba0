import type { Command } from 'commander';
import { pruneRepositories, type RepositoryPruneResult } from '../../app/prune.js';
import { UsageError } from '../../errors.js';
import { readDuration } from '../../policy/duration.js';
import { formatDuration } from '../../policy/retention.js';
import type { PruneOutcome } from '../../repository/prune.js';
import type { CommandContext } from '../context.js';
import { emitResult, painter } from '../output.js';
import { createProgress, formatBytes } from '../progress.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

export interface PruneFlags {
  maxUnused?: string;
  wait?: string;
  leftoverMinAge?: string;
}

/** `--max-unused 10%` as a share 0–1. */
export function parseMaxUnused(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim());
  const pct = m ? Number(m[1]) : NaN;
  if (!(pct >= 0 && pct <= 100)) {
    throw new UsageError(`invalid --max-unused "${text}"`, {
      hint: 'Give a percentage such as 10%: packs with more unused bytes than that are repacked (100% never repacks).',
    });
  }
  return pct / 100;
}

/** A duration flag in milliseconds (`30m`, `1h`). */
export function parseDurationFlag(flag: string, text: string): number {
  const r = readDuration(text);
  if (!r.ok) throw new UsageError(`invalid ${flag} "${text}": ${r.message}`, r.hint ? { hint: r.hint } : {});
  return r.ms;
}

/** The prune options shared by `prune` and `forget --prune`. */
export function pruneOptionsOf(flags: PruneFlags): {
  maxUnused?: number;
  waitMs?: number;
  leftoverMinAgeMs?: number;
} {
  return {
    ...(flags.maxUnused === undefined ? {} : { maxUnused: parseMaxUnused(flags.maxUnused) }),
    ...(flags.wait === undefined ? {} : { waitMs: parseDurationFlag('--wait', flags.wait) }),
    ...(flags.leftoverMinAge === undefined
      ? {}
      : { leftoverMinAgeMs: parseDurationFlag('--leftover-min-age', flags.leftoverMinAge) }),
  };
}

/** Add the options of pruneOptionsOf to a command. */
export function addPruneOptions(cmd: Command): Command {
  return cmd
    .option('--max-unused <percent>', 'repack packs with more unused bytes than this (default 10%)')
    .option('--wait <duration>', 'wait this long for backups holding the repository to finish (e.g. 30m)')
    .option(
      '--leftover-min-age <duration>',
      'delete packs of interrupted backups only once this old (default 1h: a backup elsewhere may be running)',
    );
}

/** `lifeboat prune [--repository NAME] [--dry-run] [--max-unused 10%]` */
export function registerPrune(program: Command, context: ContextFactory): void {
  const cmd = program
    .command('prune')
    .description('delete data no snapshot needs (after `forget`) and leftovers of interrupted backups')
    .option('--repository <name>', 'prune only this repository (default: every configured one)')
    .option(
      '--dry-run',
      'show what would be deleted and repacked, and the space freed; change nothing',
      false,
    );
  addPruneOptions(cmd)
    .addHelpText(
      'after',
      '\nPrune takes the exclusive lock: it fails with exit code 11 while a backup, restore, drill or check\n' +
        'holds the repository (or waits with --wait). It deletes nothing a snapshot needs, and it is safe to\n' +
        'interrupt: new index files are written before old ones are deleted, and packs are deleted last.\n' +
        'It refuses to run when check would find missing or damaged metadata.\n\n' +
        'Examples:\n  lifeboat prune --dry-run\n  lifeboat prune --repository local --max-unused 25%\n  lifeboat prune --wait 30m',
    )
    .action(async (flags: PruneFlags & { repository?: string; dryRun: boolean }, c: Command) => {
      const ctx = context(c);
      const options = pruneOptionsOf(flags);
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const progress = createProgress(ctx);
      let phase = '';
      try {
        const results = await pruneRepositories(
          config,
          {
            dryRun: flags.dryRun,
            ...options,
            ...(flags.repository ? { repository: flags.repository } : {}),
            onProgress: (e) => {
              if (e.phase !== phase) progress.step(`${e.job}: ${(phase = e.phase)}`);
              progress.update(e);
            },
          },
          deps,
        );
        progress.stop();
        emitResult(ctx, { ok: true, results }, () => results.map((r) => describePrune(ctx, r)).join('\n\n'));
      } finally {
        progress.stop();
      }
    });
}

/** Human summary of one prune (dry run or done). */
export function describePrune(ctx: CommandContext, r: RepositoryPruneResult): string {
  const p = painter(ctx);
  const s = r.summary;
  const would = r.dryRun ? 'would ' : '';
  const lines = [
    `${p.bold(r.repository)} (${r.url})${r.dryRun ? ' — dry run, nothing changed' : ''}: ${s.snapshots} snapshots ` +
      `use ${s.usedBlobs} blobs in ${s.packs.total} packs (${formatBytes(s.bytes.total)} stored)`,
  ];
  const del = s.deletePacks.reduce((n, x) => n + x.size, 0);
  if (s.packs.delete) lines.push(`  ${would}delete ${s.packs.delete} unused packs (${formatBytes(del)})`);
  if (s.packs.repack)
    lines.push(
      `  ${would}repack ${s.packs.repack} partly used packs (${formatBytes(s.bytes.repacked)}, ` +
        `${formatBytes(s.bytes.copied)} still used is copied)`,
    );
  const leftover = s.leftovers.delete.reduce((n, x) => n + x.size, 0);
  if (s.leftovers.delete.length)
    lines.push(
      `  ${would}delete ${s.leftovers.delete.length} packs left by interrupted backups (${formatBytes(leftover)})`,
    );
  if (s.leftovers.keep.length)
    lines.push(
      `  keep ${s.leftovers.keep.length} unindexed packs younger than ${formatDuration(s.leftoverMinAgeMs)} ` +
        '(a backup may be writing them)',
    );
  if (s.droppedMissingPacks.length)
    lines.push(`  ${would}drop ${s.droppedMissingPacks.length} missing, unneeded packs from the index`);
  if (s.indexFiles.rewrite) lines.push(`  ${would}rewrite the index (${s.indexFiles.current} files now)`);
  for (const l of s.locked ?? []) lines.push(`  keep ${l.key}: locked until ${l.lockedUntil} (${l.reason})`);
  const idle = s.packs.delete + s.packs.repack + s.leftovers.delete.length === 0 && !s.indexFiles.rewrite;
  if (idle) {
    lines.push(`${p.green('✔')} nothing to prune`);
  } else if ('packsDeleted' in s) {
    const done = s as PruneOutcome;
    lines.push(
      `${p.green('✔')} freed ${formatBytes(Math.max(0, done.bytesFreed))}: deleted ${done.packsDeleted} packs, wrote ` +
        `${done.packsWritten} packs and ${done.indexFilesWritten} index files in ${(r.durationMs / 1000).toFixed(1)}s`,
    );
  } else {
    lines.push(`would free about ${formatBytes(s.bytes.freed)}`);
  }
  return lines.join('\n');
}
