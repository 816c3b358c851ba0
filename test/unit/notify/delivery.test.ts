import { describe, expect, it } from 'vitest';
import { eventOf } from '../../../src/notify/events.js';
import { pingUrl, tail } from '../../../src/notify/healthchecks.js';
import { deliver } from '../../../src/notify/httpDelivery.js';
import { describeUrl } from '../../../src/notify/safeUrl.js';

describe('describeUrl', () => {
  it.each([
    ['https://hc.example/ping/0f3c-uuid', 'https://hc.example/…'],
    ['https://hooks.example.com/services/T0/B0/XYZ?token=abc', 'https://hooks.example.com/…'],
    ['https://user:pass@hooks.example.com/', 'https://hooks.example.com'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['not a url', '(invalid URL)'],
  ])('%s → %s', (url, described) => {
    expect(describeUrl(url)).toBe(described);
  });
});

describe('healthchecks URLs and bodies', () => {
  it.each([
    ['https://hc.example/ping/uuid', 'start', 'https://hc.example/ping/uuid/start'],
    ['https://hc.example/ping/uuid/', 'fail', 'https://hc.example/ping/uuid/fail'],
    ['https://hc.example/ping/uuid', 'success', 'https://hc.example/ping/uuid'],
    ['https://hc.example/ping/uuid?create=1', 'fail', 'https://hc.example/ping/uuid/fail?create=1'],
  ] as const)('%s + %s', (base, kind, url) => {
    expect(pingUrl(base, kind)).toBe(url);
  });

  it('keeps the end of a long log', () => {
    expect(tail('abcdef', 10)).toBe('abcdef');
    const t = tail('0123456789abcdef', 10);
    expect(t).toBe('…\n89abcdef');
    expect(t.length).toBe(10);
  });
});

describe('deliver', () => {
  it('retries network errors with doubling back-off and reports the last error', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await deliver(
      'http://x.invalid/hook',
      { method: 'POST', body: '{}' },
      {
        timeoutMs: 100,
        retries: 3,
        backoffMs: 50,
        sleep: async (ms) => void waits.push(ms),
        fetch: (async () => {
          calls++;
          throw new TypeError('fetch failed', {
            cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }),
          });
        }) as typeof fetch,
      },
    );
    expect(calls).toBe(4);
    expect(waits).toEqual([50, 100, 200]);
    expect(result).toEqual({ ok: false, attempts: 4, error: 'ENOTFOUND' });
  });

  it('retries 429 and 503 but not 400', async () => {
    const statuses = [429, 503, 400, 200];
    let i = 0;
    const result = await deliver(
      'http://x.invalid/hook',
      { method: 'POST' },
      {
        timeoutMs: 100,
        retries: 5,
        backoffMs: 0,
        sleep: async () => {},
        fetch: (async () => new Response('', { status: statuses[i++] })) as typeof fetch,
      },
    );
    expect(result).toEqual({ ok: false, attempts: 3, status: 400, error: 'HTTP 400' });
  });
});

describe('eventOf', () => {
  it.each([
    ['success', 'success'],
    ['partial', 'success'],
    ['failure', 'failure'],
    ['interrupted', 'failure'],
  ])('%s → %s', (outcome, event) => {
    expect(eventOf(outcome)).toBe(event);
  });
});
