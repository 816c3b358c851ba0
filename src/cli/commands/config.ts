import type { Command } from 'commander';
import { configJsonSchema } from '../../config/jsonSchema.js';
import { loadConfig } from '../../config/load.js';
import { describeSummary, summarizeConfig } from '../../config/summary.js';
import { emitResult } from '../output.js';
import type { ContextFactory } from './index.js';

/** `lifeboat config validate|schema` */
export function registerConfig(program: Command, context: ContextFactory): void {
  const config = program
    .command('config')
    .description('check the configuration file and print its JSON Schema')
    .addHelpText(
      'after',
      '\nThe file is --config, else $LIFEBOAT_CONFIG, else ./lifeboat.yaml. Every key is described in\n' +
        'docs/configuration.md.\n\n' +
        'Examples:\n' +
        '  lifeboat config validate\n' +
        '  lifeboat --config /etc/lifeboat/lifeboat.yaml config validate --json\n' +
        '  lifeboat config schema > lifeboat.schema.json',
    );

  config
    .command('validate')
    .description('check the configuration: every problem at once, each with its line and column')
    .addHelpText(
      'after',
      '\nExit code 0 when the file is valid (warnings are printed on stderr), 2 when it has problems.\n' +
        'Schedules are checked against each policy RPO over the coming year.\n\n' +
        'Examples:\n' +
        '  lifeboat config validate\n' +
        '  lifeboat config validate --json | jq .warnings',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const loaded = await loadConfig({
        path: ctx.globals.config,
        env: ctx.env,
        cwd: process.cwd(),
        now: ctx.clock.now(),
      });
      const summary = summarizeConfig(loaded.config);
      if (!ctx.globals.json) for (const w of loaded.warnings) ctx.logger.warn(w);
      emitResult(ctx, { ok: true, file: loaded.file, ...summary, warnings: loaded.warningDetails }, () => {
        const warned = loaded.warnings.length;
        return `ok: ${describeSummary(summary)} — ${loaded.file}${warned ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}`;
      });
    });

  config
    .command('schema')
    .description('print the JSON Schema of the configuration file (for editors and CI)')
    .addHelpText(
      'after',
      '\nWith the YAML language server, put this first line in lifeboat.yaml:\n' +
        '  # yaml-language-server: $schema=./lifeboat.schema.json\n\n' +
        'Example:\n' +
        '  lifeboat config schema > lifeboat.schema.json',
    )
    .action((_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      ctx.out(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    });
}
