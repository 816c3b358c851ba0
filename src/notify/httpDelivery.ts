/**
 * One HTTP request to a notification endpoint, with a timeout and a few retries. Never throws:
 * a notification must not fail the work it reports on, so the outcome is a value.
 */
import { describeFetchError } from './safeUrl.js';

export interface DeliveryOptions {
  /** Per attempt. */
  timeoutMs: number;
  /** Attempts after the first one. */
  retries: number;
  /** Wait before the first retry; doubled for each further one. */
  backoffMs: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface DeliveryRequest {
  method: 'GET' | 'POST';
  body?: string;
  contentType?: string;
}

export interface DeliveryResult {
  ok: boolean;
  attempts: number;
  /** HTTP status of the last attempt, when there was a response. */
  status?: number;
  /** Why the last attempt failed (no URL in it). */
  error?: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Statuses worth another try: the server may be restarting or rate-limiting. */
function retryable(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** Send one request; retry on network errors, timeouts and 5xx/429/408 answers. */
export async function deliver(
  url: string,
  request: DeliveryRequest,
  opts: DeliveryOptions,
): Promise<DeliveryResult> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? defaultSleep;
  let last: DeliveryResult = { ok: false, attempts: 0 };
  for (let attempt = 1; attempt <= opts.retries + 1; attempt++) {
    if (attempt > 1) await sleep(opts.backoffMs * 2 ** (attempt - 2));
    try {
      const res = await doFetch(url, {
        method: request.method,
        ...(request.body === undefined ? {} : { body: request.body }),
        headers: {
          'user-agent': 'lifeboat',
          ...(request.contentType ? { 'content-type': request.contentType } : {}),
        },
        signal: AbortSignal.timeout(opts.timeoutMs),
        redirect: 'follow',
      });
      // Drain the body so the connection is released; its content does not matter.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { ok: true, attempts: attempt, status: res.status };
      last = { ok: false, attempts: attempt, status: res.status, error: `HTTP ${res.status}` };
      if (!retryable(res.status)) return last;
    } catch (err) {
      const text = describeFetchError(err);
      last = {
        ok: false,
        attempts: attempt,
        error: text === 'timed out' ? `timed out after ${opts.timeoutMs} ms` : text,
      };
    }
  }
  return last;
}
