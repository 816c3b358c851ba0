/** What lifeboat tells the outside world about: one finished activity, or a policy breach. */

export const NOTIFICATION_EVENTS = ['success', 'failure', 'breach'] as const;
export type NotificationEventName = (typeof NOTIFICATION_EVENTS)[number];

/** One event as webhooks receive it (inside the envelope added by webhook.ts). */
export interface NotificationEvent {
  event: NotificationEventName;
  /** backup, copy, drill, retention, check — or `status` for a breach. */
  activity: string;
  job?: string;
  repository?: string;
  /** success, partial, failure, interrupted; for a breach: breached. */
  outcome: string;
  host: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  stats?: Record<string, number>;
  error?: { code: string; message: string; hint?: string };
  /** Why (for breaches: which target, by how much). */
  reason?: string;
  /** What an auditor follows: run IDs in the journal, snapshot IDs. */
  evidence: { runIds: string[]; snapshotIds: string[] };
}

/** The event name of an activity outcome: a partial backup still produced a restore point. */
export function eventOf(outcome: string): NotificationEventName {
  return outcome === 'success' || outcome === 'partial' ? 'success' : 'failure';
}
