/**
 * `lifeboat copy` between two local repositories, through the app layer and
 * the CLI: copies restore bit-identical from the target, a second copy
 * transfers nothing, an incremental copy reads only what changed, restore
 * without --repository falls back to the next reachable repository and says
 * which, and a wrong password for the target is exit 12.
 */
import { appendFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backupJobs } from '../../../src/app/backup.js';
import { checkRepositories } from '../../../src/app/check.js';
import { copyRestorePoints, newestPerRepository } from '../../../src/app/copy.js';
import { openConfiguredRepository } from '../../../src/app/repositories.js';
import { restoreJob } from '../../../src/app/restore.js';
import { listSnapshotsByRepository } from '../../../src/app/snapshots.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { cli } from '../../helpers/cli.js';
import { initRepo, localObjects, makeSandbox, readTree, type Sandbox } from './copyFixture.js';

let sb: Sandbox;
let config: LifeboatConfig;

beforeEach(async () => {
  sb = await makeSandbox();
  config = await sb.load();
  await initRepo(config, 'a', sb.clock);
  await initRepo(config, 'b', sb.clock);
});
afterEach(async () => {
  await sb.cleanup();
});

async function backup(): Promise<string> {
  const [r] = await backupJobs(config, { jobs: ['site'] }, sb.deps);
  expect(r?.outcome).toBe('success');
  sb.clock.advance(60_000);
  return r!.snapshotId!;
}

async function restoreFrom(repository: string | undefined, name: string) {
  const target = join(sb.dir, name);
  const r = await restoreJob(
    config,
    {
      job: 'site',
      snapshot: 'latest',
      dryRun: false,
      target,
      ...(repository ? { repository } : {}),
    },
    sb.deps,
  );
  return { result: r, files: await readTree(join(target, sb.source)) };
}

describe('copy between local repositories', () => {
  it('copies what B lacks; the copy restores bit-identical and passes check', async () => {
    const first = await backup();
    const result = await copyRestorePoints(config, { from: 'a', to: 'b', jobs: [], dryRun: false }, sb.deps);
    expect(result.ok).toBe(true);
    expect(result.jobs).toHaveLength(1);
    const job = result.jobs[0]!;
    expect(job.copied.map((c) => c.sourceId)).toEqual([first]);
    expect(job.skipped).toBe(0);
    expect(job.stats.newBlobs).toBeGreaterThan(3);
    // 3 MiB random + 2 MiB of zeros (a hole, not stored) + small files
    expect(job.stats.bytesRead).toBeGreaterThan(3 * 1024 * 1024);
    expect(job.stats.bytesRead).toBeLessThan(4 * 1024 * 1024);

    const b = await openConfiguredRepository(config, 'b', sb.deps);
    try {
      const [copy] = await b.listSnapshots();
      const a = await openConfiguredRepository(config, 'a', sb.deps);
      const [original] = await a.listSnapshots();
      expect(copy!.id).not.toBe(original!.id); // sealed with B's key
      expect(copy!.tree).not.toBe(original!.tree); // B's keyed blob IDs
      expect(copy!.copiedFrom).toEqual({ repository: a.id, snapshot: first });
      expect({ ...copy, id: '', tree: '', copiedFrom: undefined }).toEqual({
        ...original,
        id: '',
        tree: '',
        copiedFrom: undefined,
      });
      const { records } = await b.listJournal();
      const copyRecord = records.find((r) => r.kind === 'copy');
      expect(copyRecord).toMatchObject({
        job: 'site',
        outcome: 'success',
        snapshotIds: [copy!.id],
        details: { from: 'a', to: 'b', copied: 1, skipped: 0 },
      });
      // The source's journal is not touched by the copy (only its backup record).
      expect((await a.listJournal()).records.map((r) => r.kind)).toEqual(['backup']);
      await a.close();
    } finally {
      await b.close();
    }

    const fromA = await restoreFrom('a', 'restore-a');
    const fromB = await restoreFrom('b', 'restore-b');
    expect(fromB.result.repository).toBe('b');
    expect(fromB.files).toEqual(await readTree(sb.source));
    expect(fromB.files).toEqual(fromA.files);

    const checks = await checkRepositories(config, { repository: 'b', readData: { kind: 'all' } }, sb.deps);
    expect(checks[0]!.report?.problems).toEqual([]);
    expect(checks[0]!.report?.ok).toBe(true);
  });

  it('a second copy transfers nothing; an incremental copy reads only what changed', async () => {
    await backup();
    await copyRestorePoints(config, { from: 'a', to: 'b', jobs: ['site'], dryRun: false }, sb.deps);
    const before = await localObjects(join(sb.dir, 'repo-b'));

    const again = await copyRestorePoints(
      config,
      { from: 'a', to: 'b', jobs: ['site'], dryRun: false },
      sb.deps,
    );
    expect(again.jobs[0]).toMatchObject({ copied: [], skipped: 1, stats: { bytesRead: 0, newBlobs: 0 } });
    const after = await localObjects(join(sb.dir, 'repo-b'));
    // Only one more journal record: no pack, index file or snapshot.
    const added = after.filter((k) => !before.includes(k));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^journal\//);

    // Change one small file and add one: the next copy reads just those.
    await appendFile(join(sb.source, 'pages', 'index.html'), '<p>more</p>\n');
    await writeFile(join(sb.source, 'pages', 'new.txt'), 'new file\n');
    await backup();
    const incremental = await copyRestorePoints(
      config,
      { from: 'a', to: 'b', jobs: ['site'], dryRun: false },
      sb.deps,
    );
    const job = incremental.jobs[0]!;
    expect(job.copied).toHaveLength(1);
    expect(job.skipped).toBe(1);
    expect(job.stats.blobsRead).toBe(2); // the changed and the new file; random.bin is not read again
    expect(job.stats.bytesRead).toBeLessThan(1024);
    expect(job.copied[0]!.stats!.treesReused).toBeGreaterThan(0);

    const fromB = await restoreFrom('b', 'restore-incremental');
    expect(fromB.files).toEqual(await readTree(sb.source));
    const checks = await checkRepositories(config, { repository: 'b', readData: { kind: 'all' } }, sb.deps);
    expect(checks[0]!.report?.ok).toBe(true);
  });

  it('a dry run lists what it would copy and writes nothing', async () => {
    const id = await backup();
    const before = await localObjects(join(sb.dir, 'repo-b'));
    const result = await copyRestorePoints(config, { from: 'a', to: 'b', jobs: [], dryRun: true }, sb.deps);
    expect(result.dryRun).toBe(true);
    expect(result.jobs[0]!.copied).toEqual([{ sourceId: id, startedAt: expect.any(String) }]);
    expect(await localObjects(join(sb.dir, 'repo-b'))).toEqual(before);
  });

  it('copies back the other way without duplicating, and reports freshness per repository', async () => {
    await backup();
    await copyRestorePoints(config, { from: 'a', to: 'b', jobs: [], dryRun: false }, sb.deps);
    // B → A: A already has the original of B's copy.
    const back = await copyRestorePoints(config, { from: 'b', to: 'a', jobs: [], dryRun: false }, sb.deps);
    expect(back.jobs[0]).toMatchObject({ copied: [], skipped: 1 });

    const listing = await listSnapshotsByRepository(config, { job: 'site' }, sb.deps);
    const fresh = newestPerRepository(listing, { jobs: ['site'] });
    const inA = fresh.jobs.site!.a!;
    const inB = fresh.jobs.site!.b!;
    expect(inB.startedAt).toBe(inA.startedAt);
    expect(inB.copiedFrom?.snapshot).toBe(inA.snapshotId);
    expect(fresh.unreachable).toEqual([]);
  });

  it('restore without --repository uses the first reachable repository and names it', async () => {
    await backup();
    await copyRestorePoints(config, { from: 'a', to: 'b', jobs: [], dryRun: false }, sb.deps);
    await rename(join(sb.dir, 'repo-a'), join(sb.dir, 'repo-a-gone'));

    const { result, files } = await restoreFrom(undefined, 'restore-fallback');
    expect(result.repository).toBe('b');
    expect(files).toEqual(await readTree(sb.source));
    expect(sb.logs.some((l) => l.level === 'warn' && l.message.startsWith('repository a:'))).toBe(true);

    // The CLI says where it restored from, and snapshots shows A as unreachable.
    const target = join(sb.dir, 'restore-cli');
    const r = await cli(['--config', sb.configPath, 'restore', 'site', '--target', target], sb.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ from b\b/);
    const listing = await listSnapshotsByRepository(config, { job: 'site' }, sb.deps);
    expect(newestPerRepository(listing, { jobs: ['site'] }).unreachable.map((u) => u.repository)).toEqual([
      'a',
    ]);

    // `ls` and `snapshots` take --repository too.
    const ls = await cli(
      ['--config', sb.configPath, 'ls', 'latest', '--job', 'site', '--repository', 'b'],
      sb.env,
    );
    expect(ls.code).toBe(0);
  });

  it('through the CLI: copy --json, and a wrong password for B is exit 12', async () => {
    await backup();
    const ok = await cli(['--config', sb.configPath, '--json', 'copy', '--from', 'a', '--to', 'b'], sb.env);
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.stdout);
    expect(doc).toMatchObject({ ok: true, from: 'a', to: 'b', jobs: [{ job: 'site', skipped: 0 }] });
    expect(doc.jobs[0].copied).toHaveLength(1);

    const human = await cli(['--config', sb.configPath, 'copy', '--from', 'a', '--to', 'b'], sb.env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('site: copied 0 restore points from a to b, 1 already there');

    const wrong = await cli(['--config', sb.configPath, 'copy', '--from', 'a', '--to', 'b'], {
      ...sb.env,
      LB_PW_B: 'not the password of b',
    });
    expect(wrong.code).toBe(12);
    expect(wrong.stdout + wrong.stderr).not.toContain('not the password of b');

    const same = await cli(['--config', sb.configPath, 'copy', '--from', 'a', '--to', 'a'], sb.env);
    expect(same.code).toBe(2);
  });

  it('copies nothing and says so when A has no restore points of the job', async () => {
    await rm(join(sb.source, 'random.bin'));
    const result = await copyRestorePoints(
      config,
      { from: 'a', to: 'b', jobs: ['site'], dryRun: false },
      sb.deps,
    );
    expect(result.jobs).toEqual([
      expect.objectContaining({ job: 'site', outcome: 'success', copied: [], skipped: 0 }),
    ]);
  });
});
