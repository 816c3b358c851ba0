import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  scheduleFiles,
  showSchedule,
  writeScheduleFiles,
  type InstallTarget,
  type ScheduleShowResult,
} from '../../app/schedule.js';
import { UsageError } from '../../errors.js';
import { formatInstant } from '../../policy/timeText.js';
import { emitResult, table } from '../output.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

interface InstallFlags {
  crontab?: boolean;
  systemd?: boolean;
  kubernetes?: boolean;
  out?: string;
  force: boolean;
  image?: string;
  namespace?: string;
}

/** `lifeboat schedule show|install` */
export function registerSchedule(program: Command, context: ContextFactory): void {
  const schedule = program
    .command('schedule')
    .description('when jobs run, and the scheduler entries that call `lifeboat run --due`')
    .addHelpText(
      'after',
      '\nExamples:\n  lifeboat schedule show --count 3\n  lifeboat schedule install --systemd --out /etc/systemd/system\n' +
        '  lifeboat schedule install --crontab\n  lifeboat schedule install --kubernetes --image registry/lifeboat:1 > lifeboat.yaml',
    );

  schedule
    .command('show')
    .description('the next times each job’s backup, copy, drill, retention and check run')
    .option('--count <n>', 'how many times per activity', '5')
    .option('--job <name...>', 'only these jobs (default: all)')
    .action(async (opts: { count: string; job?: string[] }, cmd: Command) => {
      const ctx = context(cmd);
      const count = Number(opts.count);
      if (!Number.isInteger(count) || count < 1 || count > 100) {
        throw new UsageError(`--count ${opts.count} is not a number from 1 to 100`);
      }
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const result = await showSchedule(config, { jobs: opts.job ?? [], count }, deps);
      emitResult(ctx, result, () => renderShow(result, deps.clock.now()));
    });

  schedule
    .command('install')
    .description('print (or write with --out) a crontab entry, systemd units or a Kubernetes CronJob')
    .option('--crontab', 'a crontab entry running `lifeboat run --due` every five minutes')
    .option('--systemd', 'lifeboat.service (oneshot, hardened) and lifeboat.timer (every five minutes)')
    .option('--kubernetes', 'a CronJob (concurrencyPolicy: Forbid) with a ConfigMap and a state volume')
    .option('--out <dir>', 'write the files into this directory instead of printing them')
    .option('--force', 'replace existing files in --out', false)
    .option('--image <image>', 'container image for --kubernetes')
    .option('--namespace <ns>', 'namespace for --kubernetes', 'default')
    .action(async (flags: InstallFlags, cmd: Command) => {
      const ctx = context(cmd);
      const targets = (['crontab', 'systemd', 'kubernetes'] as const).filter((t) => flags[t]);
      if (targets.length !== 1) {
        throw new UsageError('choose one of --crontab, --systemd or --kubernetes', {
          hint: 'e.g. lifeboat schedule install --systemd --out /etc/systemd/system',
        });
      }
      const target: InstallTarget = targets[0]!;
      const { config, file } = await loadCommandConfig(ctx);
      const files = await scheduleFiles(
        config,
        {
          target,
          configFile: resolve(file),
          command: lifeboatCommand(),
          ...(flags.image ? { image: flags.image } : {}),
          ...(flags.namespace ? { namespace: flags.namespace } : {}),
        },
        ctx.env,
      );
      if (flags.out) {
        const written = await writeScheduleFiles(files, resolve(flags.out), flags.force);
        emitResult(ctx, { target, files: written }, () =>
          [`wrote ${written.join(', ')}`, nextSteps(target, resolve(flags.out!))].join('\n'),
        );
        return;
      }
      emitResult(ctx, { target, files }, () =>
        files.length === 1
          ? files[0]!.content
          : files.map((f) => `# ---- ${f.name} ----\n${f.content}`).join('\n'),
      );
    });
}

/** How a scheduler starts this very lifeboat: node, then the script that is running now. */
function lifeboatCommand(): string[] {
  const script = process.argv[1];
  return script ? [process.execPath, resolve(script)] : ['lifeboat'];
}

function nextSteps(target: InstallTarget, dir: string): string {
  switch (target) {
    case 'crontab':
      return `next: crontab -l | cat - ${dir}/lifeboat.crontab | crontab -`;
    case 'systemd':
      return dir === '/etc/systemd/system'
        ? 'next: systemctl daemon-reload && systemctl enable --now lifeboat.timer'
        : `next: copy them to /etc/systemd/system/, then systemctl daemon-reload && systemctl enable --now lifeboat.timer`;
    case 'kubernetes':
      return `next: create the lifeboat-secrets Secret, then kubectl apply -f ${dir}/lifeboat-cronjob.yaml`;
  }
}

function renderShow(r: ScheduleShowResult, now: number): string {
  if (r.activities.length === 0) return 'no jobs configured';
  return table(
    ['ACTIVITY', 'JOB', 'REPOSITORY', 'CADENCE', 'NEXT'],
    r.activities.map((a) => [
      a.kind + (a.available ? '' : ' (n/a)'),
      a.job ?? '',
      a.repository,
      a.cadence,
      a.times.length
        ? a.times
            .map((t, i) => (i === 0 && a.due ? 'now' : formatInstant(Date.parse(t), a.timeZone, now)))
            .join(', ')
        : '-',
    ]),
  );
}
