import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  collectReport,
  FAIL_ON,
  reportExitCode,
  writeEvidenceBundle,
  type FailOn,
} from '../../app/report.js';
import { UsageError } from '../../errors.js';
import { writeFileAtomic } from '../../platform/atomicWrite.js';
import { readDuration } from '../../policy/duration.js';
import { REPORT_FORMATS, renderReport } from '../../report/index.js';
import { commandDeps, loadCommandConfig } from '../session.js';
import type { ContextFactory } from './index.js';

interface ReportFlags {
  since?: string;
  job?: string[];
  format?: string;
  output?: string;
  failOn: string;
  evidenceDir?: string;
}

function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, not '${value}'`);
}

/** `lifeboat report [--since 30d] [--job J…] [--format …] [--output FILE] [--fail-on …] [--evidence-dir DIR]` */
export function registerReport(program: Command, context: ContextFactory): void {
  program
    .command('report')
    .description('compliance report: per job and control, whether the policy is met, with the evidence')
    .option('--since <duration>', 'evidence window, e.g. 30d (default: defaults.reportWindow)')
    .option('--job <name...>', 'only these jobs (default: all)')
    .option('--format <format>', `${REPORT_FORMATS.join(' | ')} (default: table; json with --json)`)
    .option('--output <file>', 'write the report to this file instead of stdout')
    .option('--fail-on <level>', `exit 4 on: ${FAIL_ON.join(' | ')}`, 'breach')
    .option(
      '--evidence-dir <dir>',
      'also write report.json, report.html, the raw records and SHA256SUMS here',
    )
    .addHelpText(
      'after',
      '\nBuilt from the run journals and snapshot lists of every repository the jobs use, so any\n' +
        'machine with the repository passwords produces the same report. Controls per job: rpo-now,\n' +
        'rpo-window, backup-success-rate, rto, drill-freshness, drill-verification, drill-coverage,\n' +
        'retention-coverage, copies, encryption, immutability, integrity (docs/reports.md).\n' +
        'Each is pass, warning, fail or unknown (no evidence — never shown as pass).\n\n' +
        'Exit codes: 4 when a control fails (--fail-on warning: also on warnings; never: always 0);\n' +
        'a repository that cannot be opened gives its own code (10, 12 …).\n\n' +
        'Examples:\n' +
        '  lifeboat report\n' +
        '  lifeboat report --since 90d --format html --output report.html\n' +
        '  lifeboat report --format junit --output lifeboat-junit.xml --fail-on never\n' +
        '  lifeboat report --format markdown >> "$GITHUB_STEP_SUMMARY"\n' +
        '  lifeboat report --evidence-dir evidence/2026-11',
    )
    .action(async (opts: ReportFlags, cmd: Command) => {
      const ctx = context(cmd);
      const format = choice('--format', opts.format ?? (ctx.globals.json ? 'json' : 'table'), REPORT_FORMATS);
      const failOn = choice<FailOn>('--fail-on', opts.failOn, FAIL_ON);
      let windowMs: number | undefined;
      if (opts.since !== undefined) {
        const d = readDuration(opts.since);
        if (!d.ok || d.ms <= 0) {
          throw new UsageError(`--since '${opts.since}' is not a duration`, {
            hint: d.ok ? 'give a window longer than 0, e.g. 30d' : (d.hint ?? 'e.g. 30d, 12w, 90d'),
          });
        }
        windowMs = d.ms;
      }
      const { config } = await loadCommandConfig(ctx);
      const deps = commandDeps(ctx, config);
      const run = await collectReport(
        config,
        { jobs: opts.job ?? [], ...(windowMs === undefined ? {} : { windowMs }) },
        deps,
      );
      const timeZone = config.defaults.timezone;
      for (const f of run.failures) {
        if (f.error.hint) ctx.logger.warn(`repository ${f.repository}: ${f.error.hint}`);
      }
      if (opts.evidenceDir) {
        const bundle = await writeEvidenceBundle(resolve(opts.evidenceDir), run, { timeZone });
        ctx.logger.info(`evidence bundle written to ${bundle.dir} (${bundle.files.join(', ')})`);
      }
      const text = renderReport(run.report, format, {
        // Colour only on a terminal table, never in a file.
        color: format === 'table' && !opts.output && ctx.globals.color,
        timeZone,
      });
      if (opts.output) {
        await writeFileAtomic(resolve(opts.output), text);
        const s = run.report.summary;
        ctx.logger.info(
          `${format} report written to ${resolve(opts.output)}: ${run.report.status} ` +
            `(${s.pass} pass, ${s.warning} warning, ${s.fail} fail, ${s.unknown} unknown)`,
        );
      } else {
        ctx.out(text);
      }
      const failed = run.report.jobs.flatMap((j) =>
        j.controls.filter((c) => c.status === 'fail').map((c) => `${j.job}/${c.id}`),
      );
      if (failed.length && format !== 'table') ctx.logger.warn(`failed controls: ${failed.join(', ')}`);
      ctx.setExitCode(reportExitCode(run.report, failOn, run.failures));
    });
}
