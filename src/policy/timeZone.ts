/**
 * IANA time-zone arithmetic on top of Intl, for schedules: validity, UTC offsets, local calendar
 * fields and the instants where a zone's offset changes (daylight-saving transitions).
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The canonical name of an IANA time zone (`europe/berlin` → `Europe/Berlin`), or undefined if unknown. */
export function canonicalTimeZone(name: string): string | undefined {
  // Answered without Intl (see localTime): '' is no zone, 'UTC' and 'Etc/UTC' are 'UTC'.
  if (name === '') return undefined;
  if (name === 'UTC' || name === 'Etc/UTC') return 'UTC';
  // Creating an Intl.DateTimeFormat costs about a millisecond; names repeat, so remember them.
  if (canonical.has(name)) return canonical.get(name);
  let result: string | undefined;
  try {
    result = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    result = undefined;
  }
  canonical.set(name, result);
  return result;
}

const canonical = new Map<string, string | undefined>();

/** Every time-zone name this runtime knows (for "did you mean" suggestions). */
export function knownTimeZones(): string[] {
  return [...Intl.supportedValuesOf('timeZone'), 'UTC'];
}

export interface LocalTime {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The wall-clock fields of an instant in a zone. */
export function localTime(timeZone: string, instant: number): LocalTime {
  // UTC without Intl: its first use pages in ~8 MiB of ICU data (docs/performance.md).
  if (timeZone === 'UTC') {
    const d = new Date(instant);
    const [year, month, day] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
    return { year, month, day, hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
  }
  const out: LocalTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(instant)) {
    if (part.type in out) out[part.type as keyof LocalTime] = Number(part.value);
  }
  return out;
}

/** Offset of local wall-clock time from UTC at an instant, in ms (Berlin in summer: +7_200_000). */
export function zoneOffset(timeZone: string, instant: number): number {
  const t = localTime(timeZone, instant);
  const wall = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  return wall - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant of a wall-clock time given as "wall ms" (Date.UTC of the local fields). Exact
 * away from offset transitions; callers handle the hours around transitions themselves.
 */
export function wallToInstant(timeZone: string, wallMs: number): number {
  const guess = wallMs - zoneOffset(timeZone, wallMs);
  return wallMs - zoneOffset(timeZone, guess);
}

const HOUR = 3_600_000;
const transitionsByYear = new Map<string, number[]>();

/**
 * Instants in [from, to) where the zone's offset changes, to the millisecond. Computed per
 * UTC calendar year and remembered, because schedules ask about the same years over and over.
 */
export function offsetTransitions(timeZone: string, from: number, to: number): number[] {
  const out: number[] = [];
  const firstYear = new Date(from).getUTCFullYear();
  const lastYear = new Date(to).getUTCFullYear();
  for (let year = firstYear; year <= lastYear; year++) {
    for (const t of transitionsInYear(timeZone, year)) if (t >= from && t < to) out.push(t);
  }
  return out;
}

function transitionsInYear(timeZone: string, year: number): number[] {
  const key = `${timeZone}|${year}`;
  let found = transitionsByYear.get(key);
  if (found) return found;
  found = [];
  // Zones change their offset a few times a year at most, never twice within a day, so
  // sampling once a day finds each change; bisection then pins it down.
  const step = 24 * HOUR;
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1);
  let prevT = start;
  let prevOffset = zoneOffset(timeZone, start);
  while (prevT < end) {
    const at = Math.min(prevT + step, end);
    const offset = zoneOffset(timeZone, at);
    if (offset !== prevOffset) {
      // Invariant: offset(lo) = prevOffset, offset(hi) != prevOffset.
      let lo = prevT;
      let hi = at;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (zoneOffset(timeZone, mid) === prevOffset) lo = mid;
        else hi = mid;
      }
      found.push(hi);
    }
    prevT = at;
    prevOffset = offset;
  }
  transitionsByYear.set(key, found);
  return found;
}
