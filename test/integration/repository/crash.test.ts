/**
 * kill -9 at random moments during `lifeboat backup` (the built CLI in a
 * child process). After every kill: check (with all data) passes, every
 * earlier snapshot restores bit-identical, the next backup succeeds, and
 * prune removes what the killed run left behind.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import type { SnapshotEntry } from '../../../src/repository/api.js';
import { openRepository, type Repository } from '../../../src/repository/repository.js';
import { restoreTree, verifyRestoredTree } from '../../../src/sources/files/index.js';
import { LocalStorage } from '../../../src/storage/local.js';
import {
  json,
  lifeboat,
  listObjects,
  manifest,
  PASSWORD,
  requireBuild,
  startLifeboat,
  writeConfig,
} from './lifeboatProcess.js';

const TRIALS = 10;
const MiB = 1024 * 1024;

interface CheckJson {
  ok: boolean;
  results: { report?: { ok: boolean; problems: unknown[]; stats: { unindexedPacks: number } } }[];
}

let dir: string;

beforeAll(async () => {
  requireBuild();
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-crash-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Wait until a lock object (not a temp file) exists; returns performance.now() of that moment. */
async function lockAppears(locks: string): Promise<number> {
  for (let i = 0; i < 3000; i++) {
    const names = await readdir(locks).catch(() => [] as string[]);
    if (names.some((n) => !n.startsWith('.'))) return performance.now();
    await sleep(10);
  }
  throw new Error('the backup never took its lock');
}

/** Wait until more than `count` pack objects exist (or 30 s pass: then the kill lands later). */
async function packsExceed(data: string, count: number): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if ((await listObjects(data)).filter((n) => !n.includes('/.')).length > count) return;
    await sleep(5);
  }
}

/** Restore a snapshot in-process and compare every file with what the source held when it was taken. */
async function expectRestores(
  repo: Repository,
  s: SnapshotEntry,
  src: string,
  expected: Record<string, string>,
) {
  const target = join(dir, 'restore', s.id.slice(0, 16));
  const restored = await restoreTree(repo, s.tree, target, {
    overwrite: 'never',
    dryRun: false,
    logger: silentLogger,
  });
  expect(restored.errors).toEqual([]);
  expect(await verifyRestoredTree(repo, s.tree, target)).toEqual([]);
  expect(await manifest(join(target, src)), `snapshot ${s.id.slice(0, 12)}`).toEqual(expected);
  await rm(target, { recursive: true, force: true });
}

describe('kill -9 during backup', () => {
  it('never leaves a repository that fails check, loses a snapshot, blocks the next backup or keeps leftovers after prune', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'base.bin'), randomBytes(4 * MiB));
    await writeFile(join(src, 'sub', 'small.txt'), 'steady content\n');
    const config = await writeConfig(dir, [{ name: 'data', paths: [src] }], { host: 'crash-host' });
    expect((await lifeboat(config, ['repo', 'init'])).code).toBe(0);

    const expected = new Map<string, Record<string, string>>();
    await writeFile(join(src, 'trial.bin'), randomBytes(16 * MiB));
    // Calibrate: how long the repository work lasts, from taking the lock to the end.
    const locks = join(dir, 'repo', 'locks');
    const calibration = startLifeboat(config, ['--json', 'backup', 'data']);
    const locked = await lockAppears(locks);
    const first = await calibration.finished;
    const duration = performance.now() - locked;
    expect(first.code, first.stderr).toBe(0);
    expected.set(
      json<{ results: { snapshotId: string }[] }>(first).results[0]!.snapshotId,
      await manifest(src),
    );

    // A fresh session each time: prune rewrites the index under a long-lived one.
    const session = () =>
      openRepository(new LocalStorage(join(dir, 'repo')), PASSWORD, {
        clock: systemClock,
        host: 'crash-test',
      });
    const stats = { killedMidway: 0, leftoverTrials: 0, lockedPrunes: 0 };
    for (let trial = 0; trial < TRIALS; trial++) {
      // New content each time, so the killed run has something to upload.
      await writeFile(join(src, 'trial.bin'), randomBytes(16 * MiB));
      const current = await manifest(src);
      // Kill at a random moment of the repository work (startup before the lock is uninteresting);
      // every other trial waits for the first uploaded pack, so uploads cut short are well covered.
      const packsBefore = (await listObjects(join(dir, 'repo', 'data'))).length;
      const run = startLifeboat(config, ['--json', 'backup', 'data']);
      await lockAppears(locks);
      if (trial % 2 === 1) await packsExceed(join(dir, 'repo', 'data'), packsBefore);
      const delay = randomInt(0, Math.max(1, Math.round(trial % 2 === 1 ? 25 : duration)));
      await sleep(delay);
      run.child.kill('SIGKILL');
      const killed = await run.finished;
      if (killed.signal === 'SIGKILL') stats.killedMidway++;
      const context = `trial ${trial}, killed ${delay} ms after it took its lock${trial % 2 ? ' and uploaded a pack' : ''}`;

      const repo = await session();
      try {
        // A run killed after its commit point left a complete snapshot of `current`.
        for (const s of await repo.listSnapshots()) if (!expected.has(s.id)) expected.set(s.id, current);

        // The oldest and the newest snapshot each time; all of them at the end.
        const snapshots = await repo.listSnapshots();
        for (const s of [snapshots[0]!, snapshots.at(-1)!])
          await expectRestores(repo, s, src, expected.get(s.id)!);
      } finally {
        await repo.close();
      }

      const check = await lifeboat(config, ['--json', 'check', '--read-data']);
      expect(check.code, `${context}: ${check.stdout}${check.stderr}`).toBe(0);
      const report = json<CheckJson>(check).results[0]!.report!;
      if (report.stats.unindexedPacks > 0) stats.leftoverTrials++;

      const next = await lifeboat(config, ['--json', 'backup', 'data']);
      expect(next.code, `${context}: ${next.stderr}`).toBe(0);
      expected.set(json<{ results: { snapshotId: string }[] }>(next).results[0]!.snapshotId, current);

      // The killed process's lock blocks prune until removed; the error says its process is gone.
      let prune = await lifeboat(config, ['prune', '--leftover-min-age', '0s']);
      if (prune.code === 11) {
        stats.lockedPrunes++;
        expect(prune.stderr).toContain(`pid ${run.child.pid}`);
        expect(prune.stderr).toContain('crash-host');
        expect(prune.stderr).toMatch(/no longer exists/);
        expect((await lifeboat(config, ['repo', 'unlock', '--all'])).code).toBe(0);
        prune = await lifeboat(config, ['prune', '--leftover-min-age', '0s']);
      }
      expect(prune.code, `${context}: ${prune.stderr}`).toBe(0);
      const after = json<CheckJson>(await lifeboat(config, ['--json', 'check']));
      expect(after.ok, context).toBe(true);
      expect(after.results[0]!.report!.stats.unindexedPacks, context).toBe(0);
    }
    const repo = await session();
    try {
      const all = await repo.listSnapshots();
      expect(all.length).toBeGreaterThanOrEqual(TRIALS + 1);
      for (const s of all) await expectRestores(repo, s, src, expected.get(s.id)!);
    } finally {
      await repo.close();
    }
    // Most kills must land while the backup runs, or the test proves little.
    expect(stats.killedMidway).toBeGreaterThanOrEqual(TRIALS / 2);
    // …and some must leave uploaded packs no index lists, which prune then removed.
    expect(stats.leftoverTrials).toBeGreaterThanOrEqual(1);
    console.log(
      `kill -9 trials: ${JSON.stringify(stats)} (repository work of a backup: ${Math.round(duration)} ms)`,
    );
  }, 600_000);
});
