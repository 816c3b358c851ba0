/**
 * Several lifeboat processes on one repository: two backups at once (shared
 * locks), and prune (exclusive) against a backup that holds its lock.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { openRepository } from '../../../src/repository/repository.js';
import { restoreTree } from '../../../src/sources/files/index.js';
import { LocalStorage } from '../../../src/storage/local.js';
import {
  json,
  lifeboat,
  manifest,
  PASSWORD,
  requireBuild,
  startLifeboat,
  writeConfig,
} from './lifeboatProcess.js';

const MiB = 1024 * 1024;
let dir: string;

beforeEach(async () => {
  requireBuild();
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-concurrency-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Wait until a lock object (not a temp file) exists in `locks`. */
async function lockAppears(locks: string): Promise<void> {
  for (let i = 0; i < 6000; i++) {
    const names = await readdir(locks).catch(() => [] as string[]);
    if (names.some((n) => !n.startsWith('.'))) return;
    await sleep(5);
  }
  throw new Error('no lock appeared');
}

async function source(name: string, mib: number): Promise<string> {
  const src = join(dir, name);
  await mkdir(join(src, 'nested'), { recursive: true });
  await writeFile(join(src, 'big.bin'), randomBytes(mib * MiB));
  await writeFile(join(src, 'nested', 'note.txt'), `${name}\n`);
  return src;
}

interface BackupJson {
  results: { job: string; outcome: string; snapshotId: string }[];
}

describe('concurrent lifeboat processes on one repository', () => {
  it('two backups of different jobs at the same time both complete, and check passes', async () => {
    const a = await source('a', 24);
    const b = await source('b', 24);
    // Shared content across the jobs: both may upload it at once; duplicates are harmless.
    await writeFile(join(a, 'shared.bin'), randomBytes(6 * MiB));
    await writeFile(join(b, 'shared.bin'), await readFile(join(a, 'shared.bin')));
    const config = await writeConfig(dir, [
      { name: 'job-a', paths: [a] },
      { name: 'job-b', paths: [b] },
    ]);
    expect((await lifeboat(config, ['repo', 'init'])).code).toBe(0);

    // Started together…
    const runA = startLifeboat(config, ['--json', 'backup', 'job-a']);
    const runB = startLifeboat(config, ['--json', 'backup', 'job-b']);
    const [ra, rb] = await Promise.all([runA.finished, runB.finished]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const idA = json<BackupJson>(ra).results[0]!.snapshotId;
    const idB = json<BackupJson>(rb).results[0]!.snapshotId;

    // …and interleaved for certain: B runs from start to end while A is suspended in the middle of its work.
    await writeFile(join(a, 'more.bin'), randomBytes(8 * MiB));
    await writeFile(join(b, 'more.bin'), randomBytes(8 * MiB));
    const laterA = startLifeboat(config, ['--json', 'backup', 'job-a']);
    await lockAppears(join(dir, 'repo', 'locks'));
    process.kill(laterA.child.pid!, 'SIGSTOP');
    const laterB = await lifeboat(config, ['--json', 'backup', 'job-b']);
    process.kill(laterA.child.pid!, 'SIGCONT');
    const laterADone = await laterA.finished;
    expect(laterB.code, laterB.stderr).toBe(0);
    expect(laterADone.code, laterADone.stderr).toBe(0);
    const idA2 = json<BackupJson>(laterADone).results[0]!.snapshotId;
    const idB2 = json<BackupJson>(laterB).results[0]!.snapshotId;

    const check = await lifeboat(config, ['--json', 'check', '--read-data']);
    expect(check.code, check.stdout + check.stderr).toBe(0);

    const repo = await openRepository(new LocalStorage(join(dir, 'repo')), PASSWORD, {
      clock: systemClock,
      host: 'verifier',
    });
    try {
      expect((await repo.listSnapshots()).map((x) => x.id).sort()).toEqual([idA, idB, idA2, idB2].sort());
      for (const [id, src] of [
        [idA2, a],
        [idB2, b],
      ] as const) {
        const snapshot = await repo.findSnapshot(id);
        const target = join(dir, `restore-${id.slice(0, 8)}`);
        const restored = await restoreTree(repo, snapshot.tree, target, {
          overwrite: 'never',
          dryRun: false,
          logger: silentLogger,
        });
        expect(restored.errors).toEqual([]);
        expect(await manifest(join(target, src))).toEqual(await manifest(src));
      }
    } finally {
      await repo.close();
    }
  }, 120_000);

  it('prune fails with exit 11 naming the backup that holds the repository, or waits for it with --wait', async () => {
    const src = await source('src', 24);
    const config = await writeConfig(dir, [{ name: 'web', paths: [src] }], { host: 'holder-host' });
    expect((await lifeboat(config, ['repo', 'init'])).code).toBe(0);

    const backup = startLifeboat(config, ['--json', 'backup', 'web']);
    const pid = backup.child.pid!;
    try {
      // Suspend the backup as soon as it holds its lock: a backup in the middle of its work.
      await lockAppears(join(dir, 'repo', 'locks'));
      process.kill(pid, 'SIGSTOP');

      const prune = await lifeboat(config, ['prune']);
      expect(prune.code, prune.stderr).toBe(11);
      expect(prune.stderr).toMatch(/repository .* is locked/);
      expect(prune.stderr).toContain('holder-host');
      expect(prune.stderr).toContain(`pid ${pid}`);
      expect(prune.stderr).toMatch(/backup of web/);
      expect(prune.stderr).toMatch(/last refreshed \d+ min old/);
      const asJson = json<{ error: { code: string; details: { locks: { pid: number; host: string }[] } } }>(
        await lifeboat(config, ['--json', 'prune']),
      );
      expect(asJson.error.code).toBe('E_REPO_LOCKED');
      expect(asJson.error.details.locks[0]).toMatchObject({ pid, host: 'holder-host' });

      // Shared locks coexist: check and a dry run of forget work beside the backup.
      const check = await lifeboat(config, ['check']);
      expect(check.code, check.stdout + check.stderr).toBe(0);
      expect((await lifeboat(config, ['forget', '--keep-last', '1', '--dry-run'])).code).toBe(0);

      // prune --wait retries until the backup is done.
      const waiting = startLifeboat(config, ['--json', 'prune', '--wait', '2m']);
      await sleep(1500);
      process.kill(pid, 'SIGCONT');
      const done = await backup.finished;
      expect(done.code, done.stderr).toBe(0);
      const pruned = await waiting.finished;
      expect(pruned.code, pruned.stderr).toBe(0);
      expect(pruned.stderr).toMatch(/waiting/);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
      backup.child.kill('SIGKILL');
      await backup.finished;
    }
  }, 180_000);
});
