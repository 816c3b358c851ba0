/** Webhooks: a JSON POST per event to every endpoint that asked for that kind of event. */
import { deliver, type DeliveryOptions, type DeliveryResult } from './httpDelivery.js';
import type { NotificationEvent } from './events.js';

export interface WebhookTarget {
  url: string;
  events: readonly string[];
  timeoutMs: number;
}

/** The JSON document a webhook receives. */
export function webhookBody(event: NotificationEvent, meta: { toolVersion: string; time: string }): string {
  return JSON.stringify({ source: 'lifeboat', version: meta.toolVersion, time: meta.time, ...event });
}

/** POST the event to one webhook, if it subscribed to it; undefined when it did not. */
export async function sendWebhook(
  target: WebhookTarget,
  event: NotificationEvent,
  meta: { toolVersion: string; time: string },
  opts: Omit<DeliveryOptions, 'timeoutMs'>,
): Promise<DeliveryResult | undefined> {
  if (!target.events.includes(event.event)) return undefined;
  return deliver(
    target.url,
    { method: 'POST', body: webhookBody(event, meta), contentType: 'application/json' },
    { ...opts, timeoutMs: target.timeoutMs },
  );
}
