/**
 * healthchecks.io-style pings: `<url>/start` when a run begins, `<url>` when it succeeded,
 * `<url>/fail` with the run's log tail when it did not — so a missing or failed run raises an
 * alarm on a machine that is not the one failing.
 */
import { deliver, type DeliveryOptions, type DeliveryResult } from './httpDelivery.js';

export type PingKind = 'start' | 'success' | 'fail';

/** Healthchecks accept up to 100 kB of body; keep well under it. */
export const PING_BODY_LIMIT = 10_000;

/** The URL of a ping: the base URL, with /start or /fail appended. */
export function pingUrl(base: string, kind: PingKind): string {
  const u = new URL(base);
  if (kind !== 'success') u.pathname = `${u.pathname.replace(/\/+$/, '')}/${kind}`;
  return u.toString();
}

/** Keep the end of a text within `limit` characters (the end of a log says what went wrong). */
export function tail(text: string, limit = PING_BODY_LIMIT): string {
  if (text.length <= limit) return text;
  return '…\n' + text.slice(text.length - limit + 2);
}

/** Send one ping. */
export function ping(
  base: string,
  kind: PingKind,
  body: string,
  opts: DeliveryOptions,
): Promise<DeliveryResult> {
  return deliver(
    pingUrl(base, kind),
    { method: 'POST', body: tail(body), contentType: 'text/plain; charset=utf-8' },
    opts,
  );
}
