import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { checkRepository, loadIndexView } from '../../../src/repository/check.js';
import { packKey, snapshotKey } from '../../../src/repository/layout.js';
import { deleteSnapshot, listIndexFileIds, listPackObjects } from '../../../src/repository/maintenance.js';
import { planPrune } from '../../../src/repository/prune.js';
import { openRepository, type Repository } from '../../../src/repository/repository.js';
import { backupFiles, restoreTree, verifyRestoredTree } from '../../../src/sources/files/index.js';
import { LocalStorage } from '../../../src/storage/local.js';
import type { ObjectInfo, PutOptions, Storage } from '../../../src/storage/types.js';
import { testOptions } from './helpers.js';
import {
  content,
  createFixture,
  packOf,
  PASSWORD,
  saveFileSnapshot,
  type Fixture,
  type SavedSnapshot,
} from './maintenanceFixture.js';

let fx: Fixture;

beforeEach(async () => {
  fx = await createFixture();
});
afterEach(async () => {
  await fx.close();
});

/** Every file of the listed snapshots reads back bit-identical (through a fresh session). */
async function expectReadable(repo: Repository, saved: SavedSnapshot[], files: Record<string, Buffer>[]) {
  for (const [i, s] of saved.entries()) {
    for (const [name, ids] of s.blobs) {
      const parts = [];
      for (const id of ids) parts.push(Buffer.from(await repo.loadBlob(id)));
      expect(Buffer.concat(parts).equals(files[i]![name]!), `${name} of snapshot ${i}`).toBe(true);
    }
  }
}

/** Every object key under the repository root (to prove that a dry run deletes nothing). */
async function listing(): Promise<string[]> {
  const root = fx.path('');
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else out.push(relative(root, join(dir, e.name)));
    }
  };
  await walk(root);
  return out.sort();
}

/** Three snapshots with churn: `a` in all, `b` only in the first, `c` from the second on. */
async function history() {
  const files: Record<string, Buffer>[] = [
    { a: content('a', 100), b: content('b', 60), 'docs/x': content('x1', 10) },
    { a: content('a', 100), c: content('c', 150), 'docs/x': content('x2', 10) },
    { a: content('a', 100), c: content('c', 150), d: content('d', 30), 'docs/x': content('x2', 10) },
  ];
  const saved: SavedSnapshot[] = [];
  for (const [i, f] of files.entries())
    saved.push(await saveFileSnapshot(fx.repo, f, { startedAt: `2025-01-0${i + 1}T00:00:00.000Z` }));
  return { files, saved };
}

describe('prune', () => {
  it('after forget frees space, keeps every remaining snapshot intact, and is idempotent; a dry run deletes nothing', async () => {
    const { files, saved } = await history();
    await deleteSnapshot(fx.repo, saved[0]!.id);
    const before = await listing();
    const bytesBefore = (await listPackObjects(fx.repo)).reduce((n, p) => n + p.size, 0);

    const plan = await planPrune(fx.repo, { now: Date.now() });
    expect(await listing()).toEqual(before); // planning is the dry run: nothing changes
    const s = plan.summary;
    expect(s.snapshots).toBe(2);
    expect(s.packs.delete + s.packs.repack).toBeGreaterThan(0);
    expect(s.bytes.freed).toBeGreaterThan(60 * 1024);
    expect(s.indexFiles.rewrite).toBe(true);

    const done = await plan.execute();
    expect(done.packsDeleted).toBe(s.packs.delete + s.packs.repack);
    expect(done.packsWritten).toBe(s.packs.repack > 0 ? done.packsWritten : 0);
    const bytesAfter = (await listPackObjects(fx.repo)).reduce((n, p) => n + p.size, 0);
    expect(bytesBefore - bytesAfter).toBe(done.bytesFreed);
    expect(done.bytesFreed).toBeGreaterThan(60 * 1024);

    const fresh = await fx.reopen();
    await expectReadable(fresh, saved.slice(1), files.slice(1));
    const check = await checkRepository(fresh, { readData: { kind: 'all' } });
    expect(check.problems).toEqual([]);
    expect(check.stats.unusedBlobs).toBe(0);
    expect(check.stats.unindexedPacks).toBe(0);

    // Idempotent: nothing left to do, nothing written or deleted.
    const settled = await listing();
    const again = await planPrune(fresh, { now: Date.now() });
    expect(again.summary.packs.delete + again.summary.packs.repack).toBe(0);
    expect(again.summary.indexFiles.rewrite).toBe(false);
    const second = await again.execute();
    expect(second.packsDeleted + second.indexFilesWritten + second.indexFilesDeleted).toBe(0);
    expect(await listing()).toEqual(settled);
  });

  it('repacks a partly used pack above the threshold and keeps it below', async () => {
    // Two blobs per pack: one used by the surviving snapshot, one not.
    const big = await createFixture({ packSize: 90 * 1024 });
    try {
      const keep = await saveFileSnapshot(big.repo, { k: content('k', 48) });
      await saveFileSnapshot(big.repo, { k: content('k', 48), g: content('g', 48) });
      const both = await saveFileSnapshot(big.repo, { u: content('u', 48), v: content('v', 48) });
      await deleteSnapshot(big.repo, both.id);
      // `both` packed u and v together; now only a snapshot using u would keep half of it.
      const half = await saveFileSnapshot(big.repo, { u: content('u', 48) });

      const lenient = await planPrune(big.repo, { now: Date.now(), maxUnused: 0.9 });
      expect(lenient.summary.packs.repack).toBe(0);

      const strict = await planPrune(big.repo, { now: Date.now(), maxUnused: 0.1 });
      expect(strict.summary.packs.repack).toBeGreaterThanOrEqual(1);
      const repacked = strict.summary.repackPacks.map((p) => p.id);
      const done = await strict.execute();
      expect(done.packsWritten).toBeGreaterThanOrEqual(1);
      const remaining = new Set((await listPackObjects(big.repo)).map((p) => p.id));
      for (const id of repacked) expect(remaining.has(id)).toBe(false);

      const fresh = await big.reopen();
      await expectReadable(fresh, [keep, half], [{ k: content('k', 48) }, { u: content('u', 48) }]);
      expect((await checkRepository(fresh, { readData: { kind: 'all' } })).problems).toEqual([]);
    } finally {
      await big.close();
    }
  });

  it('removes leftovers of an interrupted backup only once they are older than the safety age', async () => {
    const { files, saved } = await history();
    // A backup that uploaded packs and died before writing its index.
    const crashed = await fx.reopen();
    let last = '';
    for (let i = 0; i < 6; i++) last = (await crashed.saveBlob('data', content(`lost${i}`, 48))).id;
    await crashed.loadBlob(last); // uploads the packs (no index file is written for them)
    await crashed.close();
    const leftovers = (await checkRepository(fx.repo)).stats.unindexedPacks;
    expect(leftovers).toBeGreaterThan(0);

    const young = await planPrune(fx.repo, { now: Date.now(), leftoverMinAgeMs: 3_600_000 });
    expect(young.summary.leftovers.keep).toHaveLength(leftovers);
    expect(young.summary.leftovers.delete).toHaveLength(0);
    await young.execute();
    expect((await checkRepository(fx.repo)).stats.unindexedPacks).toBe(leftovers);

    const old = await planPrune(fx.repo, { now: Date.now() + 2 * 3_600_000, leftoverMinAgeMs: 3_600_000 });
    expect(old.summary.leftovers.delete).toHaveLength(leftovers);
    await old.execute();
    const after = await checkRepository(fx.repo, { readData: { kind: 'all' } });
    expect(after.problems).toEqual([]);
    expect(after.stats.unindexedPacks).toBe(0);
    await expectReadable(await fx.reopen(), saved, files);
  });

  it('refuses (deleting nothing) when it cannot see everything a snapshot needs', async () => {
    const { saved } = await history();
    await deleteSnapshot(fx.repo, saved[0]!.id);
    const bytes = await readFile(fx.path(snapshotKey(saved[1]!.id)));
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 1;
    await writeFile(fx.path(snapshotKey(saved[1]!.id)), bytes);
    const before = await listing();
    await expect(planPrune(fx.repo, { now: Date.now() })).rejects.toThrow(IntegrityError);
    await expect(planPrune(fx.repo, { now: Date.now() })).rejects.toThrow(/prune refused: snapshot/);
    expect(await listing()).toEqual(before);

    // A needed pack that vanished: refuse too.
    await rm(fx.path(snapshotKey(saved[1]!.id)));
    const pack = await packOf(fx.repo, saved[2]!.blobs.get('d')![0]!);
    await rm(fx.path(packKey(pack)));
    await expect(planPrune(fx.repo, { now: Date.now() })).rejects.toThrow(/missing or has the wrong size/);
  });

  it('after forget, a files backup still restores bit-identical', async () => {
    const src = join(fx.dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'keep.bin'), content('keep', 700));
    await writeFile(join(src, 'sub', 'gone.bin'), content('gone', 900));
    const spec = { paths: [src], include: [], exclude: [], oneFileSystem: false, xattrs: false };
    const first = await backupFiles(fx.repo, spec, { logger: silentLogger });
    const firstId = await fx.repo.saveSnapshot(snapshotOf(first.tree, '2025-01-01T00:00:00.000Z'));
    await rm(join(src, 'sub', 'gone.bin'));
    await writeFile(join(src, 'sub', 'new.bin'), content('new', 300));
    const second = await backupFiles(fx.repo, spec, { logger: silentLogger });
    await fx.repo.saveSnapshot(snapshotOf(second.tree, '2025-01-02T00:00:00.000Z'));

    await deleteSnapshot(fx.repo, firstId);
    const plan = await planPrune(fx.repo, { now: Date.now() });
    expect(plan.summary.bytes.freed).toBeGreaterThan(800 * 1024);
    await plan.execute();

    const fresh = await fx.reopen();
    const target = join(fx.dir, 'restored');
    const restored = await restoreTree(fresh, second.tree, target, {
      overwrite: 'never',
      dryRun: false,
      logger: silentLogger,
    });
    expect(restored.errors).toEqual([]);
    expect(await verifyRestoredTree(fresh, second.tree, target)).toEqual([]);
  });
});

function snapshotOf(tree: string, startedAt: string) {
  return {
    v: 1 as const,
    job: 'files',
    kind: 'files',
    host: 'test-host',
    startedAt,
    endedAt: startedAt,
    tree,
    paths: ['/src'],
    tags: [],
    partial: false,
    fingerprint: {},
    stats: { files: 1, dirs: 1, bytes: 1, addedBytes: 1, storedBytes: 1, blobs: 1 },
    toolVersion: 'test',
  };
}

/** Storage that "crashes" (every later write fails) after `limit` puts and deletes; counts them. */
class CrashingStorage implements Storage {
  mutations = 0;
  constructor(
    private readonly inner: Storage,
    private readonly limit: number,
  ) {}
  get url() {
    return this.inner.url;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  private mutate(): void {
    if (this.mutations++ >= this.limit) throw new Error('injected crash');
  }
  async put(key: string, body: Uint8Array | Readable, opts?: PutOptions) {
    this.mutate();
    return this.inner.put(key, body, opts);
  }
  get(key: string, range?: { offset: number; length: number }) {
    return this.inner.get(key, range);
  }
  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  async delete(key: string) {
    this.mutate();
    return this.inner.delete(key);
  }
}

describe('prune interrupted at every step', () => {
  it('leaves a readable repository that the next prune finishes', async () => {
    const { files, saved } = await history();
    await deleteSnapshot(fx.repo, saved[0]!.id);
    // Count the writes and deletes of a complete prune on a copy.
    const probeDir = join(fx.dir, 'probe');
    await cp(fx.path(''), probeDir, { recursive: true });
    const counting = new CrashingStorage(new LocalStorage(probeDir), Infinity);
    const probe = await openRepository(counting, PASSWORD, testOptions({ packSize: 64 * 1024 }));
    const probePlan = await planPrune(probe, { now: Date.now() });
    // The interesting paths are all taken: deletion, repacking, index rewrite.
    expect(probePlan.summary.packs.delete).toBeGreaterThan(0);
    expect(probePlan.summary.packs.repack).toBeGreaterThan(0);
    await probePlan.execute();
    await probe.close();
    const mutations = counting.mutations;
    expect(mutations).toBeGreaterThan(3);

    for (let n = 0; n < mutations; n++) {
      const dir = join(fx.dir, `crash-${n}`);
      await cp(fx.path(''), dir, { recursive: true });
      const crashing = await openRepository(
        new CrashingStorage(new LocalStorage(dir), n),
        PASSWORD,
        testOptions({ packSize: 64 * 1024 }),
      );
      await expect((await planPrune(crashing, { now: Date.now() })).execute()).rejects.toThrow(
        /injected crash/,
      );
      await crashing.close();

      const after = await openRepository(new LocalStorage(dir), PASSWORD, testOptions());
      try {
        const check = await checkRepository(after, { readData: { kind: 'all' } });
        expect(check.problems, `crash after ${n} writes`).toEqual([]);
        await expectReadable(after, saved.slice(1), files.slice(1));
        await (await planPrune(after, { now: Date.now() + 2 * 3_600_000 })).execute();
        const final = await checkRepository(after, { readData: { kind: 'all' } });
        expect(final.problems).toEqual([]);
        expect(final.stats.unusedBlobs + final.stats.unindexedPacks).toBe(0);
        expect((await listIndexFileIds(after)).length).toBe(1);
      } finally {
        await after.close();
        await rm(dir, { recursive: true, force: true });
      }
    }
  });
});

describe('prune with blobs stored in more than one pack', () => {
  it('keeps the intact copy when the first listed pack of a blob has the wrong size', async () => {
    // Packs of 1 MiB: each session's blobs land in one pack.
    await fx.close();
    fx = await createFixture({ packSize: 1024 * 1024 });
    // Two sessions store the same files at once: each writes every blob into a pack of its own. Each also
    // stores a blob no snapshot uses, so the pack left is repacked below (maxUnused 0) from the locations
    // prune assigns to the copies in it.
    const other = await fx.reopen();
    const files = { 'a.bin': content('dup-a', 96), 'b.bin': content('dup-b', 96) };
    await fx.repo.saveBlob('data', content('unused 1', 40));
    await other.saveBlob('data', content('unused 2', 24)); // another size: the copies sit at other offsets
    const [first] = await Promise.all([saveFileSnapshot(fx.repo, files), saveFileSnapshot(other, files)]);
    const blob = first!.blobs.get('a.bin')![0]!;
    const firstPack = await packOf(fx.repo, blob);
    const view = await loadIndexView(fx.repo);
    expect(view.copies.has(blob)).toBe(true);
    // The pack the index names first for this blob grows by a byte: it no longer counts as intact.
    await writeFile(fx.path(packKey(firstPack)), Buffer.from([0]), { flag: 'a' });

    const fresh = await fx.reopen();
    const plan = await planPrune(fresh, { now: Date.now(), maxUnused: 0 });
    expect(plan.summary.packs.repack).toBeGreaterThan(0);
    await plan.execute();
    const after = await fx.reopen();
    const check = await checkRepository(after, { readData: { kind: 'all' } });
    expect(check.problems).toEqual([]);
    expect(Buffer.from(await after.loadBlob(blob)).equals(files['a.bin'].subarray(0, 48 * 1024))).toBe(true);
    expect(await packOf(after, blob)).not.toBe(firstPack);
  });
});
