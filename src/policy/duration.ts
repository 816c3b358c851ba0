/**
 * Durations as people write them in lifeboat.yaml: `90s`, `15m`, `1h30m`, `7d`, `2w`.
 *
 * Decisions (documented in docs/configuration.md):
 * - A bare number is rejected: `90` could mean seconds or minutes, and a wrong guess silently
 *   changes an RPO by a factor of 60. The message says which unit to add.
 * - Units are lowercase (`ms s m h d w`); `M` is refused because it reads as "month".
 * - There is no month or year unit (their length varies); the message suggests days.
 * - Several groups may be combined, largest unit first, each unit once: `1d12h`, `1h 30m`.
 */

export const MS_PER = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
export type DurationUnit = keyof typeof MS_PER;

const unitOrder: DurationUnit[] = ['w', 'd', 'h', 'm', 's', 'ms'];

/** Words people type instead of the unit letters, mapped to the letter (or to advice). */
const unitWords: Record<string, DurationUnit | { advice: string }> = {
  msec: 'ms',
  msecs: 'ms',
  millisecond: 'ms',
  milliseconds: 'ms',
  sec: 's',
  secs: 's',
  second: 's',
  seconds: 's',
  min: 'm',
  mins: 'm',
  minute: 'm',
  minutes: 'm',
  hr: 'h',
  hrs: 'h',
  hour: 'h',
  hours: 'h',
  day: 'd',
  days: 'd',
  wk: 'w',
  week: 'w',
  weeks: 'w',
  mo: { advice: 'there is no month unit (months differ in length); write days, e.g. 30d' },
  mon: { advice: 'there is no month unit (months differ in length); write days, e.g. 30d' },
  month: { advice: 'there is no month unit (months differ in length); write days, e.g. 30d' },
  months: { advice: 'there is no month unit (months differ in length); write days, e.g. 30d' },
  y: { advice: 'there is no year unit; write days, e.g. 365d' },
  yr: { advice: 'there is no year unit; write days, e.g. 365d' },
  year: { advice: 'there is no year unit; write days, e.g. 365d' },
  years: { advice: 'there is no year unit; write days, e.g. 365d' },
};

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string; hint?: string };

const UNITS_HINT = 'units: ms, s, m, h, d, w — e.g. 90s, 15m, 1h30m, 7d, 2w';

/** Parse a duration text into milliseconds, or say precisely what is wrong with it. */
export function readDuration(input: unknown): DurationResult {
  if (typeof input === 'number') {
    return {
      ok: false,
      message: `${input} has no unit`,
      hint: `a bare number is ambiguous; write ${input}s, ${input}m, ${input}h or ${input}d`,
    };
  }
  if (typeof input !== 'string')
    return { ok: false, message: 'expected a duration such as 1h', hint: UNITS_HINT };
  const text = input.trim();
  if (text === '') return { ok: false, message: 'empty duration', hint: UNITS_HINT };
  if (/^\d+$/.test(text)) {
    return {
      ok: false,
      message: `"${text}" has no unit`,
      hint: `a bare number is ambiguous; write ${text}s, ${text}m, ${text}h or ${text}d`,
    };
  }
  const group = /\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*/y;
  let total = 0;
  let lastRank = -1;
  let pos = 0;
  while (pos < text.length) {
    group.lastIndex = pos;
    const m = group.exec(text);
    if (!m) {
      return {
        ok: false,
        message: `cannot read "${text}" as a duration (at "${text.slice(pos)}")`,
        hint: UNITS_HINT,
      };
    }
    pos = group.lastIndex;
    const [, amountText = '', unitText = ''] = m;
    const unit = unitOf(unitText, amountText);
    if (typeof unit !== 'string')
      return { ok: false, message: `"${text}": ${unit.message}`, hint: unit.hint };
    if (amountText.includes('.')) {
      return {
        ok: false,
        message: `"${text}": fractions are not supported`,
        hint: `write whole units, e.g. 1h30m instead of 1.5h`,
      };
    }
    const rank = unitOrder.indexOf(unit);
    if (rank <= lastRank) {
      return {
        ok: false,
        message: `"${text}": units must go from largest to smallest, each once`,
        hint: 'e.g. 1d12h or 1h30m',
      };
    }
    lastRank = rank;
    total += Number(amountText) * MS_PER[unit];
  }
  if (!Number.isSafeInteger(total)) return { ok: false, message: `"${text}" is too long a duration` };
  return { ok: true, ms: total };
}

function unitOf(text: string, amount: string): DurationUnit | { message: string; hint: string } {
  if (text in MS_PER) return text as DurationUnit;
  if (text === 'M') {
    return {
      message: 'unit "M" is ambiguous',
      hint: `write ${amount}m for minutes; for months write days, e.g. 30d`,
    };
  }
  const lower = text.toLowerCase();
  if (lower in MS_PER)
    return { message: `unit "${text}" must be lowercase`, hint: `write ${amount}${lower}` };
  const word = unitWords[lower];
  if (typeof word === 'string') return { message: `unknown unit "${text}"`, hint: `write ${amount}${word}` };
  if (word) return { message: `unknown unit "${text}"`, hint: word.advice };
  return { message: `unknown unit "${text}"`, hint: UNITS_HINT };
}

/** Parse a duration text into milliseconds; throws a RangeError with the reason. */
export function parseDuration(input: string): number {
  const result = readDuration(input);
  if (!result.ok) throw new RangeError(result.hint ? `${result.message} (${result.hint})` : result.message);
  return result.ms;
}

const formatUnits: Array<[string, number]> = [
  ['d', MS_PER.d],
  ['h', MS_PER.h],
  ['m', MS_PER.m],
  ['s', MS_PER.s],
  ['ms', 1],
];

/**
 * Format milliseconds as a short text (`2h`, `1d 4h`, `90ms`) with at most `parts` units;
 * the last shown unit is rounded to the nearest. The result parses back with parseDuration.
 */
export function formatDuration(ms: number, parts = 2): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms, parts)}`;
  let rest = Math.round(ms);
  if (rest === 0) return '0s';
  // Find the first unit shown, then round at the last unit shown so 1h59m59s → 2h, not 1h 59m.
  const first = formatUnits.findIndex(([, size]) => rest >= size);
  const lastIndex = Math.min(formatUnits.length - 1, first + parts - 1);
  const lastSize = formatUnits[lastIndex]![1];
  rest = Math.round(rest / lastSize) * lastSize;
  const out: string[] = [];
  for (let i = 0; i <= lastIndex; i++) {
    const [name, size] = formatUnits[i]!;
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out.push(`${n}${name}`);
  }
  return out.join(' ');
}
