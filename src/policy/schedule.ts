/**
 * Cron schedules of jobs: validation with precise messages, the next/previous run times, and
 * the longest gap between two runs (what an RPO is compared against). Pure: time comes in as
 * an argument. Run times come from cron-parser, so `run --due` and these answers agree.
 */
import { CronExpressionParser, type CronExpression, type CronFieldCollection } from 'cron-parser';
import { createRequire } from 'node:module';
import { canonicalTimeZone, offsetTransitions, zoneOffset } from './timeZone.js';

// cron-parser's dates are luxon DateTimes, which ask Intl for the system locale unless a default is
// set. Only formatting uses the locale; asking Intl loads ~8 MiB of ICU data, which every command
// (they all validate the schedules) would otherwise carry, even when every zone is UTC.
// Only memory is at stake: if cron-parser stops bringing luxon, schedules work as before.
try {
  const requireFromCronParser = createRequire(createRequire(import.meta.url).resolve('cron-parser'));
  (requireFromCronParser('luxon') as { Settings: { defaultLocale: string } }).Settings.defaultLocale =
    'en-US';
} catch {
  // luxon not found next to cron-parser: nothing to set.
}

/** A validated schedule: a 5-field cron expression (or @alias) in an IANA time zone. */
export interface Schedule {
  cron: string;
  timezone: string;
}

export type ScheduleCheck =
  | { ok: true; schedule: Schedule }
  | { ok: false; message: string; hint?: string; problem: 'cron' | 'timezone' };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const FIELD_NAMES = ['minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;
const FIELD_HINT = 'five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *" (03:00 daily)';

const ALIASES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const checked = new Map<string, ScheduleCheck>();

/** Validate a cron expression and time zone; the message says which field is wrong and why. */
export function checkSchedule(cron: unknown, timezone: string): ScheduleCheck {
  if (typeof cron !== 'string') return checkScheduleUncached(cron, timezone);
  // Pure and asked again for every load of the same file: remember the answers.
  const key = `${timezone}|${cron}`;
  let result = checked.get(key);
  if (!result) {
    result = checkScheduleUncached(cron, timezone);
    checked.set(key, result);
  }
  return result;
}

function checkScheduleUncached(cron: unknown, timezone: string): ScheduleCheck {
  const zone = canonicalTimeZone(timezone);
  if (!zone) {
    return {
      ok: false,
      problem: 'timezone',
      message: `unknown time zone "${timezone}"`,
      hint: 'use an IANA name such as UTC, Europe/Berlin or America/New_York',
    };
  }
  const fields = cronFields(cron);
  if (!fields.ok) return { ...fields, problem: 'cron' };
  const text = (cron as string).trim();
  try {
    const compiled = compile({ cron: text, timezone: zone });
    if (!firesWithin28Years(compiled)) {
      return {
        ok: false,
        problem: 'cron',
        message: `"${text}" never fires (no matching day in 28 years)`,
        hint: 'check the day-of-month, month and day-of-week fields',
      };
    }
  } catch (err) {
    return { ok: false, problem: 'cron', ...explainCronError(text, fields.parts, err) };
  }
  return { ok: true, schedule: { cron: text, timezone: zone } };
}

type FieldsResult = { ok: true; parts: string[] } | { ok: false; message: string; hint?: string };

/** Split and pre-check the fields, before cron-parser sees them (it is lenient about counts). */
function cronFields(cron: unknown): FieldsResult {
  if (typeof cron !== 'string')
    return { ok: false, message: 'expected a cron expression (text)', hint: FIELD_HINT };
  const text = cron.trim();
  if (text === '') return { ok: false, message: 'empty cron expression', hint: FIELD_HINT };
  if (text.startsWith('@')) {
    const expanded = ALIASES[text.toLowerCase()];
    if (expanded) return { ok: true, parts: expanded.split(' ') };
    if (text.toLowerCase() === '@reboot') {
      return {
        ok: false,
        message: '@reboot is not a schedule lifeboat can run',
        hint: 'use a time, e.g. "@daily"',
      };
    }
    return {
      ok: false,
      message: `unknown shorthand "${text}"`,
      hint: `use one of ${Object.keys(ALIASES).join(', ')} or five cron fields`,
    };
  }
  const parts = text.split(/\s+/);
  if (parts.length === 6) {
    return {
      ok: false,
      message: `"${text}" has 6 fields; lifeboat schedules have minute resolution`,
      hint: 'drop the leading seconds field: ' + FIELD_HINT,
    };
  }
  if (parts.length !== 5) {
    return {
      ok: false,
      message: `"${text}" has ${parts.length} field${parts.length === 1 ? '' : 's'}`,
      hint: FIELD_HINT,
    };
  }
  for (const [i, part] of parts.entries()) {
    if (/(^|[^A-Za-z])H([^A-Za-z]|$)/.test(part)) {
      return {
        ok: false,
        message: `${FIELD_NAMES[i]} field "${part}": hashed values (H) are not supported`,
        hint: 'write explicit values so the run time is predictable',
      };
    }
  }
  return { ok: true, parts };
}

/** Turn cron-parser's terse errors into "which field, what value, what is allowed". */
function explainCronError(text: string, parts: string[], err: unknown): { message: string; hint?: string } {
  const raw = err instanceof Error ? err.message : String(err);
  if (raw.includes('Invalid explicit day of month')) {
    const day = fieldValues(parts, 2)?.find((v): v is number => typeof v === 'number');
    const months = (fieldValues(parts, 3) ?? []).filter((v): v is number => typeof v === 'number');
    const names = months.map((m) => MONTH_NAMES[m - 1]).join(', ');
    return {
      message: `"${text}" never fires: day ${day ?? '?'} does not exist in ${names || 'the chosen months'}`,
      hint: `the longest of these months has ${Math.max(...months.map((m) => DAYS_IN_MONTH[m - 1] ?? 31))} days; use "L" for the last day of the month`,
    };
  }
  // Find the first field that fails on its own, so the message can name it.
  for (let i = 0; i < 5; i++) {
    const probe = ['*', '*', '*', '*', '*'];
    probe[i] = parts[i] ?? '*';
    try {
      CronExpressionParser.parse(`0 ${probe.join(' ')}`, { tz: 'UTC', currentDate: 0 });
    } catch (fieldErr) {
      const detail = fieldErr instanceof Error ? fieldErr.message : String(fieldErr);
      return { message: `${FIELD_NAMES[i]} field "${parts[i]}": ${tidy(detail)}`, hint: FIELD_HINT };
    }
  }
  return { message: `cannot read "${text}": ${tidy(raw)}`, hint: FIELD_HINT };
}

function tidy(message: string): string {
  return message
    .replace(/^Constraint error, got value (\S+) expected range (\S+)$/, 'value $1 is outside $2')
    .replace(/^Validation error, cannot resolve alias "(.*)"$/, 'unknown name "$1"')
    .replace(/^Invalid characters, got value: (.*)$/, 'invalid characters in "$1"');
}

function fieldValues(parts: string[], index: number): Array<number | string> | undefined {
  const probe = ['*', '*', '*', '*', '*'];
  probe[index] = parts[index] ?? '*';
  try {
    const f = CronExpressionParser.parse(`0 ${probe.join(' ')}`, { tz: 'UTC', currentDate: 0 }).fields;
    return [...[f.minute, f.hour, f.dayOfMonth, f.month, f.dayOfWeek][index]!.values];
  } catch {
    return undefined;
  }
}

/** Throwing variant of checkSchedule for code that has a schedule from a validated config. */
export function parseSchedule(cron: string, timezone: string): Schedule {
  const result = checkSchedule(cron, timezone);
  if (!result.ok) throw new RangeError(result.hint ? `${result.message} (${result.hint})` : result.message);
  return result.schedule;
}

/** The schedule as people read it in messages: `"0 * * * *" (Europe/Berlin)`. */
export function describeSchedule(schedule: Schedule): string {
  return `"${schedule.cron}" (${schedule.timezone})`;
}

// ---------------------------------------------------------------------------------------------
// Compiled form: the time-of-day list and a day matcher, for fast gap computation.

interface Compiled {
  schedule: Schedule;
  expressionText: string;
  /** Minutes after local midnight at which the schedule fires on a matching day, ascending. */
  minutesOfDay: number[];
  /** Largest gap between two runs within one ordinary day (0 if it fires once a day). */
  innerGap: number;
  /** Minute of the day at which that largest inner gap starts. */
  innerGapFrom: number;
  iterator: CronExpression;
  matchesDay: (year: number, month: number, day: number) => boolean;
}

const compiled = new Map<string, Compiled>();

function compile(schedule: Schedule): Compiled {
  const key = `${schedule.timezone}|${schedule.cron}`;
  const cached = compiled.get(key);
  if (cached) return cached;
  const expressionText = ALIASES[schedule.cron.toLowerCase()] ?? schedule.cron;
  const iterator = CronExpressionParser.parse(expressionText, { tz: schedule.timezone, currentDate: 0 });
  const fields = iterator.fields;
  const minutesOfDay: number[] = [];
  for (const h of fields.hour.values) for (const m of fields.minute.values) minutesOfDay.push(h * 60 + m);
  minutesOfDay.sort((a, b) => a - b);
  let innerGap = 0;
  let innerGapFrom = 0;
  for (let i = 1; i < minutesOfDay.length; i++) {
    const gap = (minutesOfDay[i]! - minutesOfDay[i - 1]!) * MINUTE;
    if (gap > innerGap) [innerGap, innerGapFrom] = [gap, minutesOfDay[i - 1]!];
  }
  const result: Compiled = {
    schedule,
    expressionText,
    minutesOfDay,
    innerGap,
    innerGapFrom,
    iterator,
    matchesDay: dayMatcher(fields),
  };
  compiled.set(key, result);
  return result;
}

/**
 * The schedule's cron-parser iterator, positioned at `currentDate`. Parsing costs far more than
 * resetting, so each compiled schedule keeps one iterator; callers use it synchronously.
 */
function expression(c: Compiled, currentDate: number): CronExpression {
  c.iterator.reset(new Date(currentDate));
  return c.iterator;
}

/**
 * Which local calendar days the expression fires on. Mirrors cron-parser's rules (checked
 * against it in the tests): day-of-month and day-of-week combine with OR when both are
 * restricted, `L` is the last day (or last given weekday) of the month, `#n` the nth weekday.
 */
function dayMatcher(fields: CronFieldCollection): Compiled['matchesDay'] {
  const months = new Set(fields.month.values as number[]);
  const dom = fields.dayOfMonth;
  const dow = fields.dayOfWeek;
  const domValues: unknown[] = [...dom.values];
  const dowValues: unknown[] = [...dow.values];
  const domNumbers = new Set(domValues.filter((v): v is number => typeof v === 'number'));
  const dowNumbers = new Set(
    dowValues.filter((v): v is number => typeof v === 'number').map((v) => (v === 7 ? 0 : v)),
  );
  const lastWeekdays = new Set(dowValues.map((v) => parseInt(String(v).charAt(0), 10) % 7));
  const nth = dow.nthDay;
  return (year, month, day) => {
    if (!months.has(month)) return false;
    const length = daysInMonth(year, month);
    const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
    const domMatch = domNumbers.has(day) || (dom.hasLastChar && day === length);
    const dowMatch =
      (dowNumbers.has(weekday) && (nth <= 0 || Math.ceil(day / 7) === nth)) ||
      (dow.hasLastChar && day > length - 7 && lastWeekdays.has(weekday));
    if (!dom.isWildcard && !dow.isWildcard) return domMatch || dowMatch;
    if (!dom.isWildcard) return domMatch;
    if (!dow.isWildcard) return dowMatch;
    return true;
  };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The weekday/leap-year calendar repeats every 28 years within a century. */
function firesWithin28Years(c: Compiled): boolean {
  for (let t = Date.UTC(2001, 0, 1); t < Date.UTC(2029, 0, 1); t += DAY) {
    const d = new Date(t);
    if (c.matchesDay(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate())) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Run times.

/**
 * cron-parser can give up ("loop limit exceeded") at some daylight-saving changes (seen with
 * Australia/Lord_Howe's 30-minute shift). Step the cursor by 15 minutes and try again rather
 * than fail: a run inside the ambiguous half hour may be missed, which is what cron does too.
 */
const RECOVERY_STEP = 15 * MINUTE;
const RECOVERY_TRIES = 8;

function step(it: CronExpression, cursor: number, direction: 'next' | 'prev'): number | undefined {
  const sign = direction === 'next' ? 1 : -1;
  for (let attempt = 0; attempt <= RECOVERY_TRIES; attempt++) {
    try {
      if (attempt > 0) it.reset(new Date(cursor + sign * attempt * RECOVERY_STEP));
      const t = (direction === 'next' ? it.next() : it.prev()).getTime();
      // Near such a change cron-parser may also step backwards; only progress counts.
      if ((t - cursor) * sign > 0) return t;
    } catch {
      // Retry from a little further on; give up after two hours (no further run).
    }
  }
  return undefined;
}

/** Run times strictly after `fromMs` up to and including `untilMs`, at most `limit`. */
export function runsBetween(schedule: Schedule, fromMs: number, untilMs: number, limit = Infinity): number[] {
  const it = expression(compile(schedule), fromMs);
  const out: number[] = [];
  let cursor = fromMs;
  while (out.length < limit) {
    const t = step(it, cursor, 'next');
    if (t === undefined || t > untilMs) break;
    out.push(t);
    cursor = t;
  }
  return out;
}

/** The next `n` run times strictly after `fromMs` (fewer if the schedule stops firing). */
export function nextRuns(schedule: Schedule, fromMs: number, n: number): number[] {
  return runsBetween(schedule, fromMs, Infinity, n);
}

/** The latest run time at or before `atOrBeforeMs`, or undefined if there is none. */
export function previousRun(schedule: Schedule, atOrBeforeMs: number): number | undefined {
  return step(expression(compile(schedule), atOrBeforeMs + 1), atOrBeforeMs + 1, 'prev');
}

/** The longest interval between two consecutive runs, and the runs that bound it. */
export interface Gap {
  ms: number;
  /** The run that opens the gap. */
  start: number;
  /** The run that closes it. */
  end: number;
}

interface Block {
  first: number;
  last: number;
  /** Largest gap between consecutive runs inside the block, and the run that opens it. */
  inner: number;
  innerFrom: number;
}

/**
 * Runs within this distance of an offset change come from cron-parser itself (it places runs
 * in skipped or repeated hours in its own way); elsewhere wall time maps 1:1 to instants.
 * Offsets change by at most 2 h (Antarctica/Troll); the tests compare against cron-parser.
 */
const TRANSITION_MARGIN = 2 * HOUR;

/**
 * The largest interval between consecutive runs that touches [fromMs, fromMs + horizonMs]
 * (including the gaps that reach in from the run before and out to the run after). Sample a
 * whole year so monthly schedules and daylight-saving changes count. Undefined when the
 * schedule has fewer than two runs around the horizon.
 *
 * Fast: ordinary days are one block computed from the time-of-day list; only the hours around
 * daylight-saving changes are enumerated through cron-parser.
 */
export function longestGap(schedule: Schedule, fromMs: number, horizonMs: number): Gap | undefined {
  const c = compile(schedule);
  const tz = c.schedule.timezone;
  const end = fromMs + horizonMs;
  const transitions = offsetTransitions(tz, fromMs - 2 * DAY, end + 2 * DAY);
  const windows = mergeWindows(transitions.map((t) => [t - TRANSITION_MARGIN, t + TRANSITION_MARGIN]));
  const inWindow = (t: number) => windows.some(([a, b]) => t >= a && t <= b);
  const toInstant = offsetLookup(tz, fromMs - 2 * DAY, transitions);

  const blocks: Block[] = [];
  const single = (t: number) => blocks.push({ first: t, last: t, inner: 0, innerFrom: t });

  // Runs around offset changes: ask cron-parser.
  for (const [a, b] of windows) {
    for (const t of runsBetween(schedule, a - 1, b)) if (t >= fromMs && t <= end) single(t);
  }

  // Ordinary days: arithmetic on the time-of-day list.
  const startDay = localDayStart(tz, fromMs) - DAY;
  const endDay = localDayStart(tz, end) + DAY;
  const firstMinute = c.minutesOfDay[0]! * MINUTE;
  const lastMinute = c.minutesOfDay[c.minutesOfDay.length - 1]! * MINUTE;
  for (let wallDay = startDay; wallDay <= endDay; wallDay += DAY) {
    const date = new Date(wallDay);
    if (!c.matchesDay(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate())) continue;
    const first = toInstant(wallDay + firstMinute);
    const last = toInstant(wallDay + lastMinute);
    const whole = first >= fromMs && last <= end && !windows.some(([a, b]) => a <= last && b >= first);
    if (whole) {
      blocks.push({
        first,
        last,
        inner: c.innerGap,
        innerFrom: toInstant(wallDay + c.innerGapFrom * MINUTE),
      });
      continue;
    }
    for (const minute of c.minutesOfDay) {
      const t = toInstant(wallDay + minute * MINUTE);
      if (t >= fromMs && t <= end && !inWindow(t)) single(t);
    }
  }

  const before = previousRun(schedule, fromMs - 1);
  if (before !== undefined) single(before);
  const after = nextRuns(schedule, end, 1)[0];
  if (after !== undefined) single(after);

  blocks.sort((x, y) => x.first - y.first);
  let best: Gap | undefined;
  let prev: Block | undefined;
  for (const block of blocks) {
    if (prev && block.first === prev.last) continue; // the same run reached two ways
    if (block.inner > 0 && (!best || block.inner > best.ms)) {
      best = { ms: block.inner, start: block.innerFrom, end: block.innerFrom + block.inner };
    }
    if (prev) {
      const gap = block.first - prev.last;
      if (!best || gap > best.ms) best = { ms: gap, start: prev.last, end: block.first };
    }
    prev = block;
  }
  return best;
}

function mergeWindows(windows: number[][]): Array<[number, number]> {
  const sorted = windows.map(([a, b]) => [a!, b!] as [number, number]).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const w of sorted) {
    const last = out[out.length - 1];
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else out.push(w);
  }
  return out;
}

/**
 * Map wall-clock ms (Date.UTC of local fields) to instants without calling Intl per run: the
 * offset is constant between transitions, so look it up in a short table. Exact outside the
 * transition windows, which is the only place it is used for run times.
 */
function offsetLookup(tz: string, from: number, transitions: number[]): (wall: number) => number {
  const table: Array<{ start: number; offset: number }> = [
    { start: -Infinity, offset: zoneOffset(tz, from) },
  ];
  for (const transition of transitions) table.push({ start: transition, offset: zoneOffset(tz, transition) });
  const offsetAt = (instant: number) => {
    let offset = table[0]!.offset;
    for (const row of table) if (row.start <= instant) offset = row.offset;
    return offset;
  };
  return (wall) => wall - offsetAt(wall - offsetAt(wall - table[0]!.offset));
}

/** Wall-clock ms of local midnight of the day that holds `instant`. */
function localDayStart(tz: string, instant: number): number {
  const wall = instant + zoneOffset(tz, instant);
  return Math.floor(wall / DAY) * DAY;
}
