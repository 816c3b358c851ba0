/**
 * Scheduled run times ("ticks") as `run --due` sees them: the latest tick at or before now,
 * how many ticks fell into a stretch of time, and a short human label for a schedule. Pure.
 *
 * Forward iteration (runsBetween/nextRuns) is the single truth about when a schedule fires.
 * cron-parser's backward step disagrees with it around daylight-saving changes (it skips the
 * shifted run of a spring-forward day and invents a second run in a fall-back hour), so
 * latestTick only uses previousRun as a first guess and confirms it going forwards.
 */
import { nextRuns, previousRun, runsBetween, type Schedule } from './schedule.js';

const HOUR = 3_600_000;
/** More than any daylight-saving shift, so a forward walk from here sees the confused hour whole. */
const DST_MARGIN = 3 * HOUR;

/** The latest run time at or before `now`, consistent with nextRuns; undefined if none. */
export function latestTick(schedule: Schedule, now: number): number | undefined {
  let until = now;
  for (let attempt = 0; attempt < 8; attempt++) {
    const guess = previousRun(schedule, until);
    if (guess === undefined) return undefined;
    const anchor = guess - DST_MARGIN;
    const forward = runsBetween(schedule, anchor - 1, until);
    const last = forward[forward.length - 1];
    if (last !== undefined) return last;
    // The guess was a run forward iteration never produces: look further back.
    until = anchor - 1;
  }
  return undefined;
}

/** The first run strictly after `now`, or undefined when the schedule never fires again. */
export function nextTick(schedule: Schedule, now: number): number | undefined {
  return nextRuns(schedule, now, 1)[0];
}

/** How many runs fall in (fromMs, untilMs], counting at most `cap`. */
export function ticksBetween(schedule: Schedule, fromMs: number, untilMs: number, cap = 1000): number {
  if (untilMs <= fromMs) return 0;
  return runsBetween(schedule, fromMs, untilMs, cap).length;
}

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [/^@hourly$|^\d+ \* \* \* \*$/i, () => 'hourly'],
  [/^\* \* \* \* \*$/, () => 'every minute'],
  [/^\*\/(\d+) \* \* \* \*$/, (m) => `every ${m[1]} minutes`],
  [/^\d+ \*\/(\d+) \* \* \*$/, (m) => `every ${m[1]} hours`],
  [/^@(daily|midnight)$|^\d+ \d+ \* \* \*$/i, () => 'daily'],
  [/^\d+ \d+ \* \* (1-5|mon-fri)$/i, () => 'weekdays'],
  [/^@weekly$|^\d+ \d+ \* \* [0-7a-z]+$/i, () => 'weekly'],
  [/^@monthly$|^\d+ \d+ \d+ \* \*$/i, () => 'monthly'],
  [/^@(yearly|annually)$|^\d+ \d+ \d+ \d+ \*$/i, () => 'yearly'],
];

/** A schedule as a reason reads it: `hourly (0 * * * *)`, `daily (0 3 * * * Europe/Berlin)`. */
export function scheduleLabel(schedule: Schedule): string {
  const cron = schedule.cron.trim();
  let label = 'cron';
  for (const [re, name] of PATTERNS) {
    const m = re.exec(cron);
    if (m) {
      label = name(m);
      break;
    }
  }
  const zone = schedule.timezone === 'UTC' ? '' : ` ${schedule.timezone}`;
  return `${label} (${cron}${zone})`;
}
