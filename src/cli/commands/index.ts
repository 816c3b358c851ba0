import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { registerBackup } from './backup.js';
import { registerCheck } from './check.js';
import { registerConfig } from './config.js';
import { registerCopy } from './copy.js';
import { registerDemo } from './demo.js';
import { registerDrill } from './drill.js';
import { registerForget } from './forget.js';
import { registerInit } from './init.js';
import { registerLs } from './ls.js';
import { registerPrune } from './prune.js';
import { registerRepo } from './repo.js';
import { registerReport } from './report.js';
import { registerRestore } from './restore.js';
import { registerRun } from './run.js';
import { registerRunbook } from './runbook.js';
import { registerSchedule } from './schedule.js';
import { registerSnapshots } from './snapshots.js';
import { registerStatus } from './status.js';

/** Builds the context for a command from its parsed options. */
export type ContextFactory = (cmd: Command) => CommandContext;

/** Register every command that works today; each later capability adds its file here. */
export function registerCommands(program: Command, context: ContextFactory): void {
  registerInit(program, context);
  registerConfig(program, context);
  registerRepo(program, context);
  registerBackup(program, context);
  registerSnapshots(program, context);
  registerLs(program, context);
  registerRestore(program, context);
  registerDemo(program, context);
  registerCheck(program, context);
  registerForget(program, context);
  registerPrune(program, context);
  registerRun(program, context);
  registerStatus(program, context);
  registerSchedule(program, context);
  registerDrill(program, context);
  registerCopy(program, context);
  registerReport(program, context);
  registerRunbook(program, context);
}
