import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesMentioning, releaseAll } from '../../../src/scratch/index.js';
import { processAlive } from '../../../src/scratch/processes.js';

let dir: string;
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

describe('releasing scratch resources', () => {
  it('removes only directories named like scratch directories, whatever a state file says', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-release-'));
    const scratch = join(dir, 'lifeboat-drill-files-abc');
    const precious = join(dir, 'precious');
    await mkdir(join(scratch, 'sub'), { recursive: true });
    await writeFile(join(scratch, 'sub', 'f'), 'x');
    await mkdir(precious);
    const problems = await releaseAll([
      { type: 'dir', path: precious },
      { type: 'dir', path: 'relative/lifeboat-drill-x' },
      { type: 'dir', path: scratch },
    ]);
    expect(await exists(scratch)).toBe(false);
    expect(await exists(precious)).toBe(true);
    expect(problems).toHaveLength(2);
    expect(problems.join('\n')).toContain('not a lifeboat scratch directory');
  });

  it('stops every process mentioning a server directory, children included, and is idempotent', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-release-'));
    const marker = join(dir, 'lifeboat-drill-pg-test', 'data');
    // sh mentions the marker; its child sleep does not (like postgres backends).
    const child = spawn('sh', ['-c', 'sleep 60 & wait', marker], { stdio: 'ignore' });
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pids = await processesMentioning(marker);
    }
    expect(pids).toContain(child.pid);
    expect(pids.length).toBe(2);
    const resource = { type: 'process' as const, mention: marker, signal: 'SIGTERM' as const };
    expect(await releaseAll([resource])).toEqual([]);
    for (const pid of pids) expect(await processAlive(pid)).toBe(false);
    expect(await releaseAll([resource])).toEqual([]);
  });

  it('reports a database it cannot reach instead of forgetting it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-release-'));
    const problems = await releaseAll([
      { type: 'database', engine: 'postgres', job: 'db', name: 'lifeboat_drill_1' },
    ]);
    expect(problems).toEqual([
      'postgres database lifeboat_drill_1 (drill server of job db): no way to reach the server of postgres database lifeboat_drill_1 (drill server of job db)',
    ]);
  });
});
