import { afterEach, describe, expect, it } from 'vitest';
import { access, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCleanups } from '../../../src/platform/cleanup.js';
import { DirectoryScratch, listScratchRecords } from '../../../src/scratch/index.js';

let dir: string;
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

const base = () => ({
  stateDir: join(dir, 'state'),
  root: join(dir, 'scratch'),
  job: 'web',
  now: '2026-01-01T00:00:00Z',
});

describe('directory scratch', () => {
  it('creates a private empty directory and removes it with its state file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-dirscratch-'));
    const env = await DirectoryScratch.create({ ...base(), neededBytes: 1024 });
    expect(env.dir.startsWith(join(dir, 'scratch', 'lifeboat-drill-files-'))).toBe(true);
    expect(await readdir(env.dir)).toEqual([]);
    await writeFile(join(env.dir, 'restored'), 'x');
    expect(await listScratchRecords(join(dir, 'state'))).toHaveLength(1);
    await env.dispose();
    await env.dispose();
    expect(await exists(env.dir)).toBe(false);
    expect(await listScratchRecords(join(dir, 'state'))).toEqual([]);
    expect(env.interrupted).toBe(false);
  });

  it('is removed by the interrupt cleanups (SIGINT/SIGTERM) and says so', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-dirscratch-'));
    let told = 0;
    const env = await DirectoryScratch.create({ ...base(), neededBytes: 1, onInterrupt: () => told++ });
    await runCleanups();
    expect(told).toBe(1);
    expect(env.interrupted).toBe(true);
    expect(await exists(env.dir)).toBe(false);
    expect(await listScratchRecords(join(dir, 'state'))).toEqual([]);
  });

  it('refuses before creating anything when the filesystem has no room for the restore', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-dirscratch-'));
    await expect(DirectoryScratch.create({ ...base(), neededBytes: 2 ** 60 })).rejects.toMatchObject({
      code: 'E_SCRATCH_SPACE',
    });
    expect(await readdir(join(dir, 'scratch'))).toEqual([]);
    expect(await listScratchRecords(join(dir, 'state'))).toEqual([]);
  });
});
