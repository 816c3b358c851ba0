import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NotificationEvent } from '../../../src/notify/events.js';
import { Notifier, type NotifierSettings } from '../../../src/notify/notifier.js';
import { createLogger } from '../../../src/platform/logger.js';
import { deadUrl, startRecorder, type HttpRecorder } from './httpRecorder.js';

const SECRET = 'tok-3f9a1c7e5b';

function capture() {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'debug', color: false, write: (l) => lines.push(l) }) };
}

function notifier(settings: Partial<NotifierSettings>, logger = capture().logger) {
  return new Notifier(
    { webhooks: [], ...settings },
    {
      logger,
      toolVersion: '9.9.9',
      now: () => '2024-06-01T12:00:00.000Z',
      backoffMs: 10,
      retries: 2,
    },
  );
}

const failure: NotificationEvent = {
  event: 'failure',
  activity: 'backup',
  job: 'web',
  repository: 'local',
  outcome: 'failure',
  host: 'web-01',
  startedAt: '2024-06-01T11:59:00.000Z',
  endedAt: '2024-06-01T12:00:00.000Z',
  durationMs: 60_000,
  error: { code: 'E_REPO_MISSING', message: 'no repository at file:///x', hint: 'lifeboat repo init' },
  evidence: { runIds: ['0123456789abcdef'], snapshotIds: [] },
};

const success: NotificationEvent = {
  ...failure,
  event: 'success',
  outcome: 'success',
  error: undefined,
  stats: { files: 3, bytes: 1200 },
  evidence: { runIds: ['fedcba9876543210'], snapshotIds: ['ab'.repeat(32)] },
};

let servers: HttpRecorder[] = [];
let dirs: string[] = [];

beforeEach(() => {
  servers = [];
  dirs = [];
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function recorder(...args: Parameters<typeof startRecorder>) {
  const s = await startRecorder(...args);
  servers.push(s);
  return s;
}

describe('webhooks', () => {
  it('POSTs the event as JSON with evidence, only to webhooks that subscribed to it', async () => {
    const all = await recorder();
    const failuresOnly = await recorder();
    const n = notifier({
      webhooks: [
        { url: `${all.url}/all`, events: ['failure', 'success', 'breach'], timeoutMs: 2000 },
        { url: `${failuresOnly.url}/fail`, events: ['failure'], timeoutMs: 2000 },
      ],
    });
    n.event(success);
    n.event(failure);
    await n.flush();
    expect(all.requests).toHaveLength(2);
    expect(failuresOnly.requests).toHaveLength(1);
    const [first] = all.requests;
    expect(first!.method).toBe('POST');
    expect(first!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(first!.body)).toEqual({
      source: 'lifeboat',
      version: '9.9.9',
      time: '2024-06-01T12:00:00.000Z',
      ...success,
      error: undefined,
    });
    expect(JSON.parse(failuresOnly.requests[0]!.body)).toMatchObject({
      event: 'failure',
      job: 'web',
      outcome: 'failure',
      error: { code: 'E_REPO_MISSING' },
      evidence: { runIds: ['0123456789abcdef'] },
    });
    expect(n.problems()).toEqual([]);
  });

  it('retries after a 500 and succeeds on the next answer', async () => {
    const flaky = await recorder((_req, i) => ({ status: i === 0 ? 500 : 200 }));
    const n = notifier({ webhooks: [{ url: `${flaky.url}/hook`, events: ['failure'], timeoutMs: 2000 }] });
    n.event(failure);
    await n.flush();
    expect(flaky.requests).toHaveLength(2);
    expect(n.problems()).toEqual([]);
  });

  it('does not retry a 4xx answer, and warns', async () => {
    const gone = await recorder(() => ({ status: 404 }));
    const n = notifier({ webhooks: [{ url: `${gone.url}/hook`, events: ['failure'], timeoutMs: 2000 }] });
    n.event(failure);
    await n.flush();
    expect(gone.requests).toHaveLength(1);
    expect(n.problems()).toEqual([`webhook ${gone.url}/… failed after 1 attempt: HTTP 404`]);
  });

  it('a slow endpoint times out; each attempt is bounded by the timeout', async () => {
    const slow = await recorder(() => ({ status: 200, delayMs: 5000 }));
    const n = notifier({ webhooks: [{ url: `${slow.url}/hook`, events: ['failure'], timeoutMs: 200 }] });
    const t0 = performance.now();
    n.event(failure);
    await n.flush();
    const elapsed = performance.now() - t0;
    expect(slow.requests).toHaveLength(3);
    expect(elapsed).toBeLessThan(3000);
    expect(n.problems()).toEqual([`webhook ${slow.url}/… failed after 3 attempts: timed out after 200 ms`]);
  });

  it('a down endpoint becomes a warning without the secret in the URL', async () => {
    const { lines, logger } = capture();
    const url = `${await deadUrl()}/hooks/${SECRET}?token=${SECRET}`;
    const n = notifier({ webhooks: [{ url, events: ['failure'], timeoutMs: 1000 }] }, logger);
    n.event(failure);
    await n.flush();
    expect(n.problems()).toHaveLength(1);
    expect(n.problems()[0]).toMatch(
      /^webhook http:\/\/127\.0\.0\.1:\d+\/… failed after 3 attempts: ECONNREFUSED$/,
    );
    expect(lines.join('\n')).not.toContain(SECRET);
    expect(lines).toHaveLength(1);
  });

  it('event() returns before the endpoint answers', async () => {
    const slow = await recorder(() => ({ status: 200, delayMs: 300 }));
    const n = notifier({ webhooks: [{ url: `${slow.url}/hook`, events: ['failure'], timeoutMs: 2000 }] });
    const t0 = performance.now();
    n.event(failure);
    expect(performance.now() - t0).toBeLessThan(50);
    await n.flush();
    expect(slow.requests).toHaveLength(1);
  });
});

describe('healthchecks', () => {
  it('pings /start, then the base URL on success', async () => {
    const hc = await recorder();
    const n = notifier({ healthchecks: { url: `${hc.url}/ping/${SECRET}` } });
    await n.runStarted();
    await n.runFinished(true, 'backup web: ok');
    expect(hc.requests.map((r) => r.path)).toEqual([`/ping/${SECRET}/start`, `/ping/${SECRET}`]);
    expect(hc.requests[1]!.body).toBe('backup web: ok');
  });

  it('pings /fail with the log tail on failure', async () => {
    const hc = await recorder();
    const n = notifier({ healthchecks: { url: `${hc.url}/ping/${SECRET}/` } });
    const log = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
    await n.runFinished(false, log);
    expect(hc.requests).toHaveLength(1);
    expect(hc.requests[0]!.path).toBe(`/ping/${SECRET}/fail`);
    expect(hc.requests[0]!.body.length).toBeLessThanOrEqual(10_000);
    expect(hc.requests[0]!.body.endsWith('line 1999')).toBe(true);
  });

  it('a down healthchecks server is a warning without the UUID', async () => {
    const { lines, logger } = capture();
    const n = notifier(
      { healthchecks: { url: `${await deadUrl()}/ping/${SECRET}`, timeoutMs: 500 } },
      logger,
    );
    await n.runStarted();
    expect(n.problems()[0]).toMatch(
      /^healthchecks start ping to http:\/\/127\.0\.0\.1:\d+\/… failed after 3 attempts/,
    );
    expect(lines.join('\n')).not.toContain(SECRET);
  });
});

describe('prometheus textfile', () => {
  const model = {
    jobs: [
      {
        job: 'web',
        rpoSeconds: 3600,
        repositories: [{ repository: 'local', lastSuccessTimestamp: 1717243200, restorePointAgeSeconds: 60 }],
      },
    ],
    runsTotal: [{ job: 'web', outcome: 'success', count: 2 }],
    repositories: [{ repository: 'local', bytes: 4096 }],
  };

  it('writes <dir>/lifeboat.prom atomically, leaving no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-prom-'));
    dirs.push(dir);
    await writeFile(join(dir, 'lifeboat.prom'), 'old content\n');
    const n = notifier({ prometheus: { textfileDir: dir } });
    expect(await n.writeMetrics(model)).toBe(join(dir, 'lifeboat.prom'));
    const text = await readFile(join(dir, 'lifeboat.prom'), 'utf8');
    expect(text).toContain('lifeboat_restore_point_age_seconds{job="web",repository="local"} 60\n');
    expect(text).toContain('lifeboat_repository_bytes{repository="local"} 4096\n');
    expect(await readdir(dir)).toEqual(['lifeboat.prom']);
  });

  it('a missing directory is a clear warning, not an error, and is not created', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-prom-'));
    dirs.push(dir);
    const missing = join(dir, 'node_exporter', 'textfile');
    const n = notifier({ prometheus: { textfileDir: missing } });
    expect(await n.writeMetrics(model)).toBeUndefined();
    expect(n.problems()).toEqual([
      `metrics not written: the Prometheus textfile directory ${missing} does not exist; create it (the ` +
        "directory node_exporter's --collector.textfile.directory reads) or fix notifications.prometheus.textfileDir",
    ]);
    expect(await readdir(dir)).toEqual([]);
  });
});
