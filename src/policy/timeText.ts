/**
 * Times and ages as reasons and status lines print them: `14:00 UTC` (today),
 * `2024-03-31 03:30 Europe/Berlin` (another day), `2h ago`. Pure: "today" is relative to the
 * `now` passed in, in the zone of the time shown.
 */
import { formatDuration } from './duration.js';
import { localTime } from './timeZone.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** A wall-clock time in `timeZone`; the date is left out when it is the same local day as `now`. */
export function formatInstant(ms: number, timeZone: string, now?: number): string {
  const t = localTime(timeZone, ms);
  const clock = `${pad(t.hour)}:${pad(t.minute)}`;
  if (now !== undefined) {
    const today = localTime(timeZone, now);
    if (today.year === t.year && today.month === t.month && today.day === t.day)
      return `${clock} ${timeZone}`;
  }
  return `${t.year}-${pad(t.month)}-${pad(t.day)} ${clock} ${timeZone}`;
}

/** How long ago `ms` was, relative to `now`: `2h ago`, `3d 4h ago`, `in 5m` for the future. */
export function formatAgo(ms: number, now: number): string {
  // Seconds only matter for the first minute: `45s ago`, then `29m ago`, not `29m 55s ago`.
  const raw = now - ms;
  const unit = Math.abs(raw) < 60_000 ? 1000 : 60_000;
  const delta = Math.round(raw / unit) * unit;
  if (delta < 0) return `in ${formatDuration(-delta)}`;
  if (delta === 0) return 'just now';
  return `${formatDuration(delta)} ago`;
}
