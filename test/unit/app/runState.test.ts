import { mkdtemp, readdir, readFile, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireHostRunLock, RUN_LOCK_FILE } from '../../../src/app/hostRunLock.js';
import {
  findStaleMarkers,
  recordInterruptedRuns,
  writeRunningMarker,
  type RunningMarker,
} from '../../../src/app/interruptedRuns.js';
import { appendLocalRuns, readLocalRuns, type LocalRun } from '../../../src/app/localRunLog.js';
import type { JournalInput, JournalRecord } from '../../../src/repository/journal.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-runstate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const owner = { startedAt: '2024-06-01T10:00:00.000Z', command: 'run --due' };
const lockPath = () => join(dir, RUN_LOCK_FILE);
const minutesAgo = (m: number) => (Date.now() - m * 60_000) / 1000;

describe('host run lock', () => {
  it('is exclusive while held and gone after release', async () => {
    const first = await acquireHostRunLock(dir, owner);
    expect(first.acquired).toBe(true);
    const second = await acquireHostRunLock(dir, owner);
    expect(second).toMatchObject({
      acquired: false,
      path: lockPath(),
      holder: { pid: process.pid, host: hostname(), startedAt: owner.startedAt, command: 'run --due' },
    });
    if (first.acquired) await first.lock.release();
    expect(await readdir(dir)).toEqual([]);
    const third = await acquireHostRunLock(dir, owner);
    expect(third.acquired).toBe(true);
    if (third.acquired) await third.lock.release();
  });

  it('takes over a lock whose process is gone', async () => {
    await writeFile(
      lockPath(),
      JSON.stringify({ pid: 4242, host: hostname(), startedAt: 'x', command: 'run' }),
    );
    const r = await acquireHostRunLock(dir, owner, { isAlive: () => false });
    expect(r.acquired).toBe(true);
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toMatchObject({ pid: process.pid });
    if (r.acquired) await r.lock.release();
  });

  it('takes over a lock not refreshed for ten minutes even if its pid exists (reused pid)', async () => {
    await writeFile(
      lockPath(),
      JSON.stringify({ pid: 4242, host: hostname(), startedAt: 'x', command: 'run' }),
    );
    await utimes(lockPath(), minutesAgo(5), minutesAgo(5));
    expect((await acquireHostRunLock(dir, owner, { isAlive: () => true })).acquired).toBe(false);
    await utimes(lockPath(), minutesAgo(11), minutesAgo(11));
    const r = await acquireHostRunLock(dir, owner, { isAlive: () => true });
    expect(r.acquired).toBe(true);
    if (r.acquired) await r.lock.release();
  });

  it('an empty lock file is being written: held while fresh, stale after a minute', async () => {
    await writeFile(lockPath(), '');
    expect((await acquireHostRunLock(dir, owner)).acquired).toBe(false);
    await utimes(lockPath(), minutesAgo(2), minutesAgo(2));
    const r = await acquireHostRunLock(dir, owner);
    expect(r.acquired).toBe(true);
    if (r.acquired) await r.lock.release();
  });

  it('of several callers finding the same stale lock, exactly one takes it', async () => {
    await writeFile(
      lockPath(),
      JSON.stringify({ pid: 4242, host: hostname(), startedAt: 'x', command: 'run' }),
    );
    const results = await Promise.all(
      Array.from({ length: 8 }, () => acquireHostRunLock(dir, owner, { isAlive: (pid) => pid !== 4242 })),
    );
    const winners = results.filter((r) => r.acquired);
    expect(winners).toHaveLength(1);
    for (const w of winners) if (w.acquired) await w.lock.release();
  });

  it('heartbeat refreshes the lock file', async () => {
    const r = await acquireHostRunLock(dir, owner);
    if (!r.acquired) throw new Error('not acquired');
    await utimes(lockPath(), minutesAgo(30), minutesAgo(30));
    await r.lock.heartbeat();
    expect((await acquireHostRunLock(dir, owner, { isAlive: () => true })).acquired).toBe(false);
    await r.lock.release();
  });
});

describe('running markers', () => {
  const marker: Omit<RunningMarker, 'v' | 'pid' | 'host' | 'wallStartedMs'> = {
    activity: 'backup:web',
    kind: 'backup',
    job: 'web',
    repository: 'local',
    startedAt: '2024-06-01T10:00:00.000Z',
  };

  it('a marker of a live process is not stale; of a gone one it is', async () => {
    const handle = await writeRunningMarker(dir, marker);
    expect(await findStaleMarkers(dir, () => true)).toEqual([]);
    // Our own markers are never stale, whatever isAlive says.
    expect(await findStaleMarkers(dir, () => false)).toEqual([]);
    const text = JSON.parse(await readFile(handle.file, 'utf8')) as RunningMarker;
    await writeFile(handle.file, JSON.stringify({ ...text, pid: 4242 }));
    const stale = await findStaleMarkers(dir, () => false);
    expect(stale).toHaveLength(1);
    expect(stale[0]!.marker).toMatchObject({ activity: 'backup:web', pid: 4242 });
    expect(stale[0]!.lastSeenMs).toBeGreaterThanOrEqual(Date.parse(marker.startedAt));
    await handle.remove();
    expect(await findStaleMarkers(dir, () => false)).toEqual([]);
  });

  it('records stale markers as interrupted, skips ones the journal has, keeps ones it cannot write', async () => {
    const running = join(dir, 'running');
    await mkdir(running, { recursive: true });
    const write = (name: string, m: Partial<RunningMarker>) =>
      writeFile(
        join(running, `${name}.json`),
        JSON.stringify({ v: 1, pid: 4242, host: hostname(), ...marker, ...m }),
      );
    await write('a', {});
    await write('b', { activity: 'backup:db', job: 'db', startedAt: '2024-06-01T11:00:00.000Z' });
    await write('c', { activity: 'check:offsite', kind: 'check', job: undefined, repository: 'offsite' });
    await writeFile(join(running, 'garbage.json'), '{ nope');
    const stale = await findStaleMarkers(dir, () => false);
    expect(stale.map((s) => s.marker.activity).sort()).toEqual(['backup:db', 'backup:web', 'check:offsite']);

    const appended: Array<[string, JournalInput]> = [];
    const result = await recordInterruptedRuns(
      stale,
      { local: [{ kind: 'backup', job: 'db', host: hostname(), startedAt: '2024-06-01T11:00:00.200Z' }] },
      async (repository, input) => {
        if (repository === 'offsite') throw new Error('offsite unreachable');
        appended.push([repository, input]);
        return {
          ...input,
          v: 1,
          id: '0123456789abcdef',
          host: hostname(),
          toolVersion: 't',
        } as JournalRecord;
      },
    );
    expect(appended).toEqual([
      [
        'local',
        expect.objectContaining({
          kind: 'backup',
          job: 'web',
          outcome: 'interrupted',
          startedAt: '2024-06-01T10:00:00.000Z',
          error: expect.objectContaining({ code: 'E_INTERRUPTED' }),
        }),
      ],
    ]);
    expect(result.duplicates.map((d) => d.marker.activity)).toEqual(['backup:db']);
    expect(result.kept.map((k) => [k.stale.marker.activity, k.error])).toEqual([
      ['check:offsite', 'offsite unreachable'],
    ]);
    // Recorded and duplicate markers are gone; the one that could not be recorded stays for next time.
    expect((await readdir(running)).length).toBe(1);
  });
});

describe('local run history', () => {
  const localRun = (i: number, activity = 'backup:web'): LocalRun => ({
    activity,
    repository: 'local',
    kind: 'backup',
    job: 'web',
    startedAt: new Date(Date.UTC(2024, 5, 1, 0, i)).toISOString(),
    endedAt: new Date(Date.UTC(2024, 5, 1, 0, i, 30)).toISOString(),
    outcome: 'failure',
  });

  it('keeps the newest ten runs per activity', async () => {
    expect(await readLocalRuns(dir)).toEqual([]);
    await appendLocalRuns(
      dir,
      Array.from({ length: 8 }, (_, i) => localRun(i)),
    );
    await appendLocalRuns(dir, [
      ...Array.from({ length: 5 }, (_, i) => localRun(8 + i)),
      localRun(0, 'check:local'),
    ]);
    const runs = await readLocalRuns(dir);
    const web = runs.filter((r) => r.activity === 'backup:web');
    expect(web.map((r) => r.startedAt)).toEqual(
      Array.from({ length: 10 }, (_, i) => localRun(3 + i).startedAt),
    );
    expect(runs.filter((r) => r.activity === 'check:local')).toHaveLength(1);
  });

  it('a damaged history is empty, and invalid entries are dropped', async () => {
    await writeFile(join(dir, 'run-history.json'), '[{"activity": 1}, ');
    expect(await readLocalRuns(dir)).toEqual([]);
    await writeFile(join(dir, 'run-history.json'), JSON.stringify([{ activity: 'x' }, localRun(1)]));
    expect(await readLocalRuns(dir)).toEqual([localRun(1)]);
  });
});
