/**
 * Notification URLs often carry their secret in the path or query (a Slack hook, a
 * healthchecks UUID, ?token=…). Messages name them by scheme and host only.
 */
import { redact } from '../platform/redact.js';

/** `https://hc.example/…`: enough to tell which endpoint failed, nothing that grants access. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const rest = u.pathname !== '/' || u.search ? '/…' : '';
    return `${u.protocol}//${u.host}${rest}`;
  } catch {
    return '(invalid URL)';
  }
}

/** An error as a short, secret-free text: the network cause, not the URL. */
export function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      return redact(code ? `${code}` : cause.message);
    }
    return redact(err.message);
  }
  return redact(String(err));
}
