import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { listScratchRecords, scratchStateDir, ScratchTracker } from '../../../src/scratch/index.js';

let dir: string;
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('scratch state files', () => {
  it('records resources before they exist and disappears on close', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-scratch-state-'));
    const t = await ScratchTracker.create(dir, {
      kind: 'directory',
      job: 'web',
      runId: 'abcd',
      createdAt: '2026-01-01T00:00:00Z',
    });
    await t.add({ type: 'dir', path: '/tmp/lifeboat-drill-x' });
    await t.add({ type: 'process', mention: '/tmp/lifeboat-drill-x/data', signal: 'SIGQUIT' });
    const onDisk = JSON.parse(await readFile(t.file, 'utf8'));
    expect(onDisk).toMatchObject({
      v: 1,
      id: t.id,
      kind: 'directory',
      job: 'web',
      runId: 'abcd',
      pid: process.pid,
      host: hostname(),
      resources: [
        { type: 'dir', path: '/tmp/lifeboat-drill-x' },
        { type: 'process', mention: '/tmp/lifeboat-drill-x/data', signal: 'SIGQUIT' },
      ],
    });
    const found = await listScratchRecords(dir);
    expect(found).toHaveLength(1);
    expect(found[0]!.ownerAlive).toBe(true);
    await t.close();
    expect(await listScratchRecords(dir)).toEqual([]);
  });

  it('tells leftovers of dead drills from running ones, and reports unreadable files', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-scratch-state-'));
    const states = scratchStateDir(dir);
    await mkdir(states, { recursive: true });
    const dead = spawnSync('true').pid!;
    const record = (id: string, pid: number) => ({
      v: 1,
      id,
      kind: 'ephemeral-postgres',
      job: 'db',
      pid,
      host: hostname(),
      createdAt: '2026-01-01T00:00:00Z',
      resources: [],
    });
    await writeFile(join(states, 'a.json'), JSON.stringify(record('a', dead)));
    await writeFile(join(states, 'b.json'), JSON.stringify({ ...record('b', process.pid), pidStart: '1' }));
    await writeFile(join(states, 'c.json'), '{ not json');
    const found = await listScratchRecords(dir);
    expect(found.map((f) => [f.record?.id, f.ownerAlive, Boolean(f.problem)])).toEqual([
      ['a', false, false],
      // Same PID but another start time: the PID was reused, the drill is gone.
      ['b', false, false],
      [undefined, false, true],
    ]);
  });
});
