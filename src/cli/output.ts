import type { CommandContext } from './context.js';

/** Print the command's result: one JSON document with --json, else the human text. */
export function emitResult(ctx: CommandContext, json: unknown, human: () => string): void {
  if (ctx.globals.json) ctx.out(JSON.stringify(json, null, 2) + '\n');
  else {
    const text = human();
    if (text) ctx.out(text.endsWith('\n') ? text : text + '\n');
  }
}

/** Colour helper that respects --no-color and NO_COLOR. */
export function painter(ctx: CommandContext) {
  const on = ctx.globals.color;
  const wrap = (code: string) => (s: string) => (on ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { red: wrap('31'), green: wrap('32'), yellow: wrap('33'), bold: wrap('1'), dim: wrap('2') };
}

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c + ' '.repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(c))))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, '').length;
}
