import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogTail } from '../../../src/notify/logTail.js';
import { addRunCounts, readRunCounts, runCountSamples } from '../../../src/notify/runCounters.js';
import { createLogger } from '../../../src/platform/logger.js';
import { clearRegisteredSecrets, registerSecret } from '../../../src/platform/redact.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-counters-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  clearRegisteredSecrets();
});

describe('run counters', () => {
  it('accumulate across runs in a file', async () => {
    const file = join(dir, 'run-counts.json');
    expect(await readRunCounts(file)).toEqual({});
    await addRunCounts(file, [{ job: 'web', outcome: 'success' }]);
    await addRunCounts(file, [
      { job: 'web', outcome: 'success' },
      { job: 'web', outcome: 'failure' },
      { job: 'db', outcome: 'success' },
    ]);
    expect(runCountSamples(await readRunCounts(file))).toEqual([
      { job: 'db', outcome: 'success', count: 1 },
      { job: 'web', outcome: 'failure', count: 1 },
      { job: 'web', outcome: 'success', count: 2 },
    ]);
  });

  it('a damaged file starts from zero', async () => {
    const file = join(dir, 'run-counts.json');
    await writeFile(file, '{"web": {"success": "many"}, "x": 3');
    expect(await readRunCounts(file)).toEqual({});
    await writeFile(file, '{"web": {"success": "many", "failure": 2}, "x": 3}');
    expect(await readRunCounts(file)).toEqual({ web: { failure: 2 } });
  });
});

describe('log tail', () => {
  it('keeps the last lines, redacted, and still logs them', () => {
    registerSecret('hunter2-secret');
    const seen: string[] = [];
    const inner = createLogger({ level: 'debug', color: false, write: (l) => seen.push(l) });
    const t = createLogTail(inner, 3);
    t.logger.info('one');
    t.logger.debug('not kept');
    t.logger.warn('password hunter2-secret leaked');
    t.logger.error('three');
    t.add('four');
    expect(t.text()).toBe('warn: password *** leaked\nerror: three\nfour');
    expect(seen).toHaveLength(4);
  });
});
