/**
 * check, forget and prune through the built binary, as a user would run
 * them: the retention life cycle, damage found by check, and the retention
 * safety rules fed by the journal.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.js';
import { loadIndexView } from '../../src/repository/check.js';
import { packKey } from '../../src/repository/layout.js';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { LocalStorage } from '../../src/storage/local.js';
import {
  json,
  lifeboat,
  listObjects,
  manifest,
  PASSWORD,
  requireBuild,
  writeConfig,
} from '../integration/repository/lifeboatProcess.js';

const MiB = 1024 * 1024;
let dir: string;
let src: string;
let config: string;

beforeEach(async () => {
  requireBuild();
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-maint-'));
  src = join(dir, 'site');
  await mkdir(join(src, 'pages'), { recursive: true });
  await writeFile(join(src, 'pages', 'index.html'), '<h1>hello</h1>\n');
  await writeFile(join(src, 'v1.bin'), randomBytes(3 * MiB));
  config = await writeConfig(dir, [{ name: 'site', paths: [src] }], { retention: '{ last: 2 }' });
  expect((await lifeboat(config, ['repo', 'init'])).code).toBe(0);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lb = (...args: string[]) => lifeboat(config, args);

async function backup(): Promise<string> {
  const r = await lb('--json', 'backup', 'site');
  expect(r.code, r.stderr).toBe(0);
  return json<{ results: { snapshotId: string }[] }>(r).results[0]!.snapshotId;
}

async function session<T>(fn: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepository(new LocalStorage(join(dir, 'repo')), PASSWORD, {
    clock: systemClock,
    host: 'e2e',
  });
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

interface ForgetJson {
  results: {
    jobs: {
      job: string;
      rulesFrom: string;
      keep: { id: string; reasons: string[] }[];
      forget: { id: string }[];
    }[];
    forgotten: number;
  }[];
}
interface PruneJson {
  results: {
    summary: {
      packsDeleted?: number;
      indexFilesWritten?: number;
      bytesFreed?: number;
      bytes: { freed: number };
    };
  }[];
}

describe('forget, prune and check through the CLI', () => {
  it('forgets by policy, prunes the space, stays idempotent and restores what is kept', async () => {
    const first = await backup();
    await rm(join(src, 'v1.bin'));
    await writeFile(join(src, 'v2.bin'), randomBytes(2 * MiB));
    const second = await backup();
    await writeFile(join(src, 'pages', 'about.html'), '<p>about</p>\n');
    const third = await backup();

    const before = await listObjects(join(dir, 'repo'));
    const dry = await lb('--json', 'forget', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = json<ForgetJson>(dry).results[0]!.jobs[0]!;
    expect(plan.rulesFrom).toBe('policy standard');
    expect(plan.keep.map((k) => k.id)).toEqual([third, second]);
    expect(plan.keep[0]!.reasons).toEqual(['last 2']);
    expect(plan.forget.map((f) => f.id)).toEqual([first]);
    const human = await lb('forget', '--dry-run');
    expect(human.stdout).toMatch(/would be forgotten/);
    expect(human.stdout).toContain(first.slice(0, 12));
    expect(await listObjects(join(dir, 'repo'))).toEqual(before);

    const forget = await lb('--json', 'forget');
    expect(forget.code, forget.stderr).toBe(0);
    expect(json<ForgetJson>(forget).results[0]!.forgotten).toBe(1);

    const beforePrune = await listObjects(join(dir, 'repo'));
    const dryPrune = await lb('--json', 'prune', '--dry-run');
    expect(dryPrune.code, dryPrune.stderr).toBe(0);
    expect(json<PruneJson>(dryPrune).results[0]!.summary.bytes.freed).toBeGreaterThan(2.9 * MiB);
    expect((await lb('prune', '--dry-run')).stdout).toMatch(/dry run, nothing changed/);
    expect(await listObjects(join(dir, 'repo'))).toEqual(beforePrune);

    const prune = await lb('--json', 'prune');
    expect(prune.code, prune.stderr).toBe(0);
    expect(json<PruneJson>(prune).results[0]!.summary.bytesFreed).toBeGreaterThan(2.9 * MiB);
    const again = json<PruneJson>(await lb('--json', 'prune')).results[0]!.summary;
    expect(again.packsDeleted).toBe(0);
    expect(again.indexFilesWritten).toBe(0);
    expect((await lb('prune')).stdout).toMatch(/nothing to prune/);

    const check = await lb('check', '--read-data');
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/no problems found/);

    const target = join(dir, 'restored');
    const restore = await lb('restore', 'site', '--snapshot', second, '--target', target);
    expect(restore.code, restore.stderr).toBe(0);
    const expected = { ...(await manifest(src)) };
    delete expected['pages/about.html'];
    expect(await manifest(join(target, src))).toEqual(expected);

    const kinds = await session(async (repo) => (await repo.listJournal()).records.map((r) => r.kind));
    expect(kinds).toEqual(expect.arrayContaining(['backup', 'forget', 'prune', 'check']));
  }, 120_000);

  it('check names a damaged pack, blob and snapshot only when reading data, with exit code 1', async () => {
    const first = await backup();
    await writeFile(join(src, 'v2.bin'), randomBytes(2 * MiB));
    const second = await backup();
    // Damage one byte of a data blob of v2.bin (only the second snapshot has it).
    const { blob, pack, offset } = await session(async (repo) => {
      const s = await repo.findSnapshot(second);
      const root = await repo.loadTree(s.tree);
      let tree = root;
      for (const part of src.split('/').filter(Boolean)) {
        tree = await repo.loadTree(tree.nodes.find((n) => n.name === part)!.subtree!);
      }
      const id = tree.nodes.find((n) => n.name === 'v2.bin')!.content![0] as string;
      const loc = (await loadIndexView(repo)).blobs.get(id)!;
      return { blob: id, pack: loc.packId, offset: loc.offset };
    });
    const fh = await open(join(dir, 'repo', packKey(pack)), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset + 500);
    b[0] = b[0]! ^ 0x10;
    await fh.write(b, 0, 1, offset + 500);
    await fh.close();

    expect((await lb('check')).code).toBe(0);
    const human = await lb('check', '--read-data');
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/problems? found, affecting 1 snapshot/);
    expect(human.stdout).toContain(packKey(pack));
    expect(human.stdout).toContain(`affects snapshot ${second.slice(0, 12)}`);
    const doc = json<{
      ok: boolean;
      results: {
        report: { problems: { kind: string; pack?: string; blob?: string; snapshots: string[] }[] };
      }[];
    }>(await lb('--json', 'check', '--read-data'));
    expect(doc.ok).toBe(false);
    const damaged = doc.results[0]!.report.problems.find((p) => p.kind === 'blob-damaged')!;
    expect(damaged).toMatchObject({ pack, blob, snapshots: [second] });
    expect(damaged.snapshots).not.toContain(first);

    const usage = await lb('check', '--read-data', '--read-data-subset', '10%');
    expect(usage.code).toBe(2);
    const journal = await session(async (repo) =>
      (await repo.listJournal()).records.filter((r) => r.kind === 'check'),
    );
    expect(journal.at(-1)).toMatchObject({ outcome: 'failure', error: { code: 'E_INTEGRITY' } });
  }, 120_000);

  it('keeps the snapshot a drill proved and the last good one through failed runs', async () => {
    const first = await backup();
    await writeFile(join(src, 'v2.bin'), randomBytes(MiB));
    const second = await backup();
    await writeFile(join(src, 'v3.bin'), randomBytes(MiB));
    const third = await backup();
    // A drill restored the first snapshot successfully.
    await session((repo) =>
      repo.appendJournal({
        kind: 'drill',
        job: 'site',
        startedAt: new Date(systemClock.now()).toISOString(),
        endedAt: new Date(systemClock.now()).toISOString(),
        outcome: 'success',
        snapshotIds: [first],
      }),
    );
    // Then the source vanishes: two backups fail (and are journaled).
    await rm(src, { recursive: true, force: true });
    expect((await lb('backup', 'site')).code).not.toBe(0);
    expect((await lb('backup', 'site')).code).not.toBe(0);

    const plan = json<ForgetJson>(await lb('--json', 'forget', '--keep-last', '1', '--dry-run')).results[0]!
      .jobs[0]!;
    expect(plan.rulesFrom).toBe('command line');
    const reasons = new Map(plan.keep.map((k) => [k.id, k.reasons.join('; ')]));
    expect(reasons.get(first)).toMatch(/passed a restore drill/);
    expect(reasons.get(third)).toMatch(/last 1/);
    expect(reasons.get(third)).toMatch(/newest complete snapshot \(2 newer backup runs failed\)/);
    expect(plan.forget.map((f) => f.id)).toEqual([second]);

    const human = await lb('forget', '--keep-last', '1');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/passed a restore drill/);
    const left = await session(async (repo) => (await repo.listSnapshots()).map((s) => s.id));
    expect(left.sort()).toEqual([first, third].sort());
  }, 120_000);
});
