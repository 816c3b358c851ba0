import type { Command } from 'commander';
import { writeStarterConfig } from '../../config/starter.js';
import { emitResult } from '../output.js';
import type { ContextFactory } from './index.js';

/** `lifeboat init` */
export function registerInit(program: Command, context: ContextFactory): void {
  program
    .command('init')
    .description('write a commented starter configuration (never overwrites)')
    .addHelpText(
      'after',
      '\nWrites ./lifeboat.yaml (or the --config / $LIFEBOAT_CONFIG path) with mode 0600: one local\n' +
        'repository under the state directory, one files job, one policy, the password taken from\n' +
        '$LIFEBOAT_PASSWORD. An existing file is left alone (exit code 2).\n\n' +
        'Examples:\n' +
        '  lifeboat init\n' +
        '  lifeboat --config /etc/lifeboat/lifeboat.yaml init',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { file, stateDir } = await writeStarterConfig({
        path: ctx.globals.config,
        env: ctx.env,
        cwd: process.cwd(),
      });
      const configFlag = ctx.globals.config ? ` --config ${file}` : '';
      const next = [
        "export LIFEBOAT_PASSWORD='…' (a strong password; keep a copy away from this machine)",
        `edit ${file}: what to back up (jobs), where (repositories), targets (policies)`,
        `lifeboat${configFlag} config validate`,
        `lifeboat${configFlag} repo init`,
        `lifeboat${configFlag} backup`,
      ];
      emitResult(ctx, { ok: true, file, mode: '0600', stateDir, next }, () =>
        [`wrote ${file} (mode 0600)`, 'next:', ...next.map((step, i) => `  ${i + 1}. ${step}`)].join('\n'),
      );
    });
}
