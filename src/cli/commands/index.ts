import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** Builds the context for a command from its parsed options. */
export type ContextFactory = (cmd: Command) => CommandContext;

/** Register every command that works today; each later capability adds its file here. */
export function registerCommands(_program: Command, _context: ContextFactory): void {}
