/**
 * Everything a run tells the outside world, behind one object: webhooks per event,
 * healthchecks pings at start and end, the Prometheus textfile. Nothing here throws or waits
 * for the work it reports on: event() queues, flush() waits for the queue (bounded by the
 * timeouts), and every failure becomes a warning that names the endpoint without its secret.
 */
import type { Logger } from '../platform/logger.js';
import { redact } from '../platform/redact.js';
import type { NotificationEvent } from './events.js';
import { ping } from './healthchecks.js';
import type { DeliveryResult } from './httpDelivery.js';
import { renderMetrics, writeMetricsFile, type MetricsModel } from './prometheus.js';
import { describeUrl } from './safeUrl.js';
import { sendWebhook, type WebhookTarget } from './webhook.js';

/** Resolved notification settings: URLs are plain strings here (secrets already resolved). */
export interface NotifierSettings {
  webhooks: WebhookTarget[];
  healthchecks?: { url: string; timeoutMs?: number };
  prometheus?: { textfileDir: string };
}

export interface NotifierDeps {
  logger: Logger;
  toolVersion: string;
  /** ISO time for envelopes. */
  now: () => string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Attempts after the first (default 2). */
  retries?: number;
  /** First retry delay (default 1 s, doubled each time). */
  backoffMs?: number;
}

const HEALTHCHECKS_TIMEOUT_MS = 10_000;

export class Notifier {
  private readonly pending: Promise<void>[] = [];
  private readonly warnings: string[] = [];

  constructor(
    private readonly settings: NotifierSettings,
    private readonly deps: NotifierDeps,
  ) {}

  /** True when anything at all is configured. */
  get active(): boolean {
    return (
      this.settings.webhooks.length > 0 ||
      this.settings.healthchecks !== undefined ||
      this.settings.prometheus !== undefined
    );
  }

  /** True when a webhook wants `breach` events (the caller then evaluates the policies). */
  wantsBreaches(): boolean {
    return this.settings.webhooks.some((w) => w.events.includes('breach'));
  }

  /** Warnings collected so far (already logged). */
  problems(): string[] {
    return [...this.warnings];
  }

  private warn(text: string): void {
    const line = redact(text);
    this.warnings.push(line);
    this.deps.logger.warn(line);
  }

  private delivery() {
    return {
      retries: this.deps.retries ?? 2,
      backoffMs: this.deps.backoffMs ?? 1000,
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
      ...(this.deps.sleep ? { sleep: this.deps.sleep } : {}),
    };
  }

  private report(what: string, url: string, result: DeliveryResult | undefined): void {
    if (!result || result.ok) return;
    const tries = result.attempts === 1 ? '1 attempt' : `${result.attempts} attempts`;
    this.warn(`${what} ${describeUrl(url)} failed after ${tries}: ${result.error ?? 'unknown error'}`);
  }

  /** Queue the event for every webhook that subscribed to it; returns at once. */
  event(event: NotificationEvent): void {
    const meta = { toolVersion: this.deps.toolVersion, time: this.deps.now() };
    for (const target of this.settings.webhooks) {
      this.pending.push(
        sendWebhook(target, event, meta, this.delivery())
          .then((r) => this.report('webhook', target.url, r))
          .catch((err: unknown) => this.warn(`webhook ${describeUrl(target.url)} failed: ${String(err)}`)),
      );
    }
  }

  /** Ping `<url>/start`. */
  async runStarted(): Promise<void> {
    await this.pingHealthchecks('start', '');
  }

  /** Ping `<url>` on success or `<url>/fail` with the log tail on failure. */
  async runFinished(ok: boolean, body: string): Promise<void> {
    await this.pingHealthchecks(ok ? 'success' : 'fail', body);
  }

  private async pingHealthchecks(kind: 'start' | 'success' | 'fail', body: string): Promise<void> {
    const hc = this.settings.healthchecks;
    if (!hc) return;
    try {
      const result = await ping(hc.url, kind, body, {
        ...this.delivery(),
        timeoutMs: hc.timeoutMs ?? HEALTHCHECKS_TIMEOUT_MS,
      });
      this.report(`healthchecks ${kind} ping to`, hc.url, result);
    } catch (err) {
      this.warn(`healthchecks ${kind} ping to ${describeUrl(hc.url)} failed: ${String(err)}`);
    }
  }

  /** Write the Prometheus textfile; returns its path, or undefined when not configured or failed. */
  async writeMetrics(model: MetricsModel): Promise<string | undefined> {
    const prom = this.settings.prometheus;
    if (!prom) return undefined;
    try {
      return await writeMetricsFile(prom.textfileDir, renderMetrics(model));
    } catch (err) {
      this.warn(`metrics not written: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** Wait for queued webhook deliveries. */
  async flush(): Promise<void> {
    while (this.pending.length) await Promise.all(this.pending.splice(0));
  }
}
