import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  checkRepository,
  loadIndexView,
  parseReadDataSubset,
  selectPacks,
  summarizeCheck,
  type CheckProblem,
} from '../../../src/repository/check.js';
import { indexKey, packKey, snapshotKey } from '../../../src/repository/layout.js';
import {
  deleteIndexFile,
  listIndexFileIds,
  listPackObjects,
  readIndex,
  writeIndex,
} from '../../../src/repository/maintenance.js';
import { textLike } from './helpers.js';
import { content, createFixture, packOf, saveFileSnapshot, type Fixture } from './maintenanceFixture.js';

let fx: Fixture;

beforeEach(async () => {
  fx = await createFixture();
});
afterEach(async () => {
  await fx.close();
});

/** Two snapshots sharing `shared.bin`; `only2.bin` exists only in the second. */
async function twoSnapshots() {
  const shared = content('shared', 100);
  const s1 = await saveFileSnapshot(
    fx.repo,
    { 'shared.bin': shared, 'docs/a.txt': content('a1', 20) },
    {
      startedAt: '2025-01-30T12:00:00.000Z',
    },
  );
  const s2 = await saveFileSnapshot(
    fx.repo,
    { 'shared.bin': shared, 'docs/a.txt': content('a2', 20), 'only2.bin': content('only2', 60) },
    { startedAt: '2025-01-31T12:00:00.000Z' },
  );
  return { s1, s2 };
}

const kinds = (problems: CheckProblem[]) => problems.map((p) => p.kind);

describe('check on a healthy repository', () => {
  it('finds nothing, reads every pack with read-data, and notes leftovers and unused blobs', async () => {
    await twoSnapshots();
    const plain = await checkRepository(fx.repo);
    expect(plain.problems).toEqual([]);
    expect(plain.ok).toBe(true);
    expect(plain.stats.snapshots).toBe(2);
    expect(plain.stats.packsRead).toBe(0);
    expect(plain.stats.packs).toBe((await listPackObjects(fx.repo)).length);
    expect(plain.stats.unusedBlobs).toBe(0);
    expect(plain.notes).toEqual([]);
    expect(summarizeCheck(plain)).toBe('no problems found');

    const full = await checkRepository(fx.repo, { readData: { kind: 'all' } });
    expect(full.ok).toBe(true);
    expect(full.stats.packsRead).toBe(full.stats.packs);
    expect(full.stats.bytesRead).toBe(full.stats.packBytes);

    // An unreferenced blob and a pack no index lists are notes, not problems.
    await fx.repo.saveBlob('data', content('orphan', 30));
    await fx.repo.flush();
    const stray = Buffer.from('not really a pack');
    await fx.storage.put(packKey('ab'.repeat(32)), stray);
    const noted = await checkRepository(fx.repo);
    expect(noted.ok).toBe(true);
    expect(noted.stats.unusedBlobs).toBe(1);
    expect(noted.stats.unindexedPacks).toBe(1);
    expect(noted.notes.join('\n')).toMatch(/used by no snapshot/);
    expect(noted.notes.join('\n')).toMatch(/in no index file/);
  });

  it('reads the trees through windows of their packs, not one read per tree', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 300; i++) files[`dir${i}/sub/f.txt`] = content(`f${i}`, 1);
    await saveFileSnapshot(fx.repo, files);
    const view = await loadIndexView(fx.repo);
    const trees = [...view.blobs.entries()].filter(([, loc]) => loc.type === 'tree').length;
    expect(trees).toBeGreaterThan(300);
    const get = vi.spyOn(fx.storage, 'get');
    const result = await checkRepository(fx.repo);
    expect(result.problems).toEqual([]);
    const packReads = get.mock.calls.filter(([key]) => key.startsWith('data/')).length;
    // Pack headers (one each) and a few windows, where a read per tree took more than 300.
    expect(packReads).toBeLessThan(view.packs.size + 20);
    get.mockRestore();
  });

  it('reports progress per phase', async () => {
    await twoSnapshots();
    const phases = new Set<string>();
    let last = { done: 0, total: 0 };
    await checkRepository(fx.repo, {
      readData: { kind: 'all' },
      onProgress: (p) => {
        phases.add(p.phase);
        if (p.phase === 'read-data') last = { done: p.done, total: p.total ?? -1 };
      },
    });
    expect([...phases]).toEqual(expect.arrayContaining(['snapshots', 'index', 'trees', 'read-data']));
    expect(last.done).toBe(last.total);
  });
});

describe('check finds damage and names the snapshots it affects', () => {
  it('a missing pack', async () => {
    const { s1, s2 } = await twoSnapshots();
    const pack = await packOf(fx.repo, s2.blobs.get('only2.bin')![0]!);
    await rm(fx.path(packKey(pack)));
    const r = await checkRepository(fx.repo);
    expect(r.ok).toBe(false);
    const p = r.problems.find((x) => x.kind === 'pack-missing')!;
    expect(p.object).toBe(packKey(pack));
    expect(p.message).toContain(packKey(pack));
    expect(p.snapshots).toEqual([s2.id]);
    expect(r.affectedSnapshots.map((s) => s.id)).toEqual([s2.id]);
    expect(r.affectedSnapshots[0]!.job).toBe('web');
    expect(s1.id).not.toBe(s2.id);
  });

  it('a truncated pack', async () => {
    const { s1, s2 } = await twoSnapshots();
    const pack = await packOf(fx.repo, s1.blobs.get('shared.bin')![1]!);
    const file = fx.path(packKey(pack));
    const size = (await readFile(file)).length;
    await truncate(file, size - 100);
    const r = await checkRepository(fx.repo);
    const p = r.problems.find((x) => x.kind === 'pack-size')!;
    expect(p.object).toBe(packKey(pack));
    expect(p.message).toMatch(/truncated/);
    expect(p.snapshots).toEqual([s1.id, s2.id]);
  });

  it('a flipped byte inside a blob: invisible to the structural check, found by read-data, named by pack, blob and snapshots', async () => {
    const { s2 } = await twoSnapshots();
    const blob = s2.blobs.get('only2.bin')![1]!;
    const pack = await packOf(fx.repo, blob);
    const file = fx.path(packKey(pack));
    const fh = await open(file, 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, 100);
    one[0] = one[0]! ^ 0x40;
    await fh.write(one, 0, 1, 100);
    await fh.close();

    expect((await checkRepository(fx.repo)).ok).toBe(true);

    const r = await checkRepository(fx.repo, { readData: { kind: 'all' } });
    expect(r.ok).toBe(false);
    const damaged = r.problems.find((x) => x.kind === 'blob-damaged')!;
    expect(damaged.pack).toBe(pack);
    expect(damaged.blob).toBe(blob);
    expect(damaged.object).toBe(packKey(pack));
    expect(damaged.message).toContain(blob);
    expect(damaged.snapshots).toEqual([s2.id]);
    expect(kinds(r.problems)).toContain('pack-hash');

    // Fixed groups N/M cover every pack once: exactly one group holds the damaged pack.
    const found: number[] = [];
    for (let part = 1; part <= 4; part++) {
      const sub = await checkRepository(fx.repo, { readData: { kind: 'part', part, of: 4 } });
      if (sub.problems.some((x) => x.kind === 'blob-damaged' && x.blob === blob)) found.push(part);
    }
    expect(found).toHaveLength(1);

    // A sample that happens to include the pack finds it; the sampler is injectable.
    const packs = (await listPackObjects(fx.repo)).length;
    const sampled = await checkRepository(fx.repo, {
      readData: { kind: 'fraction', fraction: 1 / packs },
      random: () => 0,
    });
    expect(sampled.stats.packsRead).toBe(1);
  });

  it('a blob missing from the index (an index file entry lost)', async () => {
    const { s1, s2 } = await twoSnapshots();
    const blob = s2.blobs.get('only2.bin')![0]!;
    const pack = await packOf(fx.repo, blob);
    // Rewrite every index file without that pack, as if its entry had been lost.
    for (const id of await listIndexFileIds(fx.repo)) {
      const body = await readIndex(fx.repo, id);
      const packs = body.packs.filter((p) => p.id !== pack);
      if (packs.length === body.packs.length) continue;
      if (packs.length > 0) await writeIndex(fx.repo, packs);
      await deleteIndexFile(fx.repo, id);
    }
    const r = await checkRepository(fx.repo);
    const missing = r.problems.filter((x) => x.kind === 'blob-missing');
    expect(missing.map((m) => m.blob)).toContain(blob);
    for (const m of missing) {
      expect(m.message).toMatch(/not in any index file/);
      expect(m.snapshots).toEqual([s2.id]);
    }
    expect(r.affectedSnapshots.map((s) => s.id)).not.toContain(s1.id);
    expect(r.stats.unindexedPacks).toBe(1);
  });

  it('a damaged snapshot', async () => {
    const { s1, s2 } = await twoSnapshots();
    const file = fx.path(snapshotKey(s1.id));
    const bytes = await readFile(file);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
    await writeFile(file, bytes);
    const r = await checkRepository(fx.repo);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({
      kind: 'snapshot-damaged',
      object: snapshotKey(s1.id),
      snapshots: [s1.id],
    });
    expect(r.affectedSnapshots.map((s) => s.id)).toEqual([s1.id]);
    expect(r.stats.snapshots).toBe(2);
    expect(s2.id).toBeDefined();
  });

  it('a damaged index file', async () => {
    await twoSnapshots();
    const [indexId] = await listIndexFileIds(fx.repo);
    const file = fx.path(indexKey(indexId!));
    const bytes = await readFile(file);
    bytes[20] = bytes[20]! ^ 1;
    await writeFile(file, bytes);
    const r = await checkRepository(fx.repo);
    const p = r.problems.find((x) => x.kind === 'index-damaged')!;
    expect(p.object).toBe(indexKey(indexId!));
    // Its blobs are unknown now: the snapshots needing them are named by the missing-blob problems.
    const missing = r.problems.filter((x) => x.kind === 'blob-missing');
    expect(missing.length).toBeGreaterThan(0);
    const affected = new Set(missing.flatMap((m) => m.snapshots));
    expect(affected.size).toBeGreaterThan(0);
    expect(r.affectedSnapshots.map((s) => s.id).sort()).toEqual([...affected].sort());
  });

  it('a damaged tree blob', async () => {
    const { s1, s2 } = await twoSnapshots();
    const docs = (await fx.repo.loadTree(s1.tree)).nodes.find((n) => n.name === 'docs')!.subtree!;
    const view = await loadIndexView(fx.repo);
    const loc = view.blobs.get(docs)!;
    const file = fx.path(packKey(loc.packId));
    const bytes = await readFile(file);
    bytes[loc.offset + 20] = bytes[loc.offset + 20]! ^ 1;
    await writeFile(file, bytes);
    const r = await checkRepository(fx.repo);
    const p = r.problems.find((x) => x.kind === 'tree-damaged')!;
    expect(p).toMatchObject({
      blob: docs,
      pack: loc.packId,
      object: packKey(loc.packId),
      snapshots: [s1.id],
    });
    expect(r.affectedSnapshots.map((s) => s.id)).toEqual([s1.id]);
    expect(s2.id).toBeDefined();
  });

  it('a pack header that disagrees with the index', async () => {
    const { s1 } = await twoSnapshots();
    const pack = await packOf(fx.repo, s1.blobs.get('docs/a.txt')![0]!);
    const file = fx.path(packKey(pack));
    const bytes = await readFile(file);
    // The last bytes are the header record's tag and length: damage the tag.
    bytes[bytes.length - 6] = bytes[bytes.length - 6]! ^ 1;
    await writeFile(file, bytes);
    const r = await checkRepository(fx.repo);
    const p = r.problems.find((x) => x.kind === 'pack-header')!;
    expect(p.object).toBe(packKey(pack));
    expect(p.snapshots).toContain(s1.id);
  });
});

describe('read-data selection', () => {
  it('parses percentages and N/M groups and rejects nonsense', () => {
    expect(parseReadDataSubset('10%')).toEqual({ kind: 'fraction', fraction: 0.1 });
    expect(parseReadDataSubset(' 2.5 % ')).toEqual({ kind: 'fraction', fraction: 0.025 });
    expect(parseReadDataSubset('100%')).toEqual({ kind: 'all' });
    expect(parseReadDataSubset('2/5')).toEqual({ kind: 'part', part: 2, of: 5 });
    for (const bad of ['0%', '101%', '0/3', '4/3', 'ten', ''])
      expect(() => parseReadDataSubset(bad)).toThrow(/subset/);
  });

  it('samples the given share at random (crypto) and partitions fixed groups', async () => {
    const { randomInt } = await import('node:crypto');
    const ids = Array.from({ length: 200 }, (_, i) => i.toString(16).padStart(64, '0'));
    const a = selectPacks(ids, { kind: 'fraction', fraction: 0.1 }, randomInt);
    const b = selectPacks(ids, { kind: 'fraction', fraction: 0.1 }, randomInt);
    expect(a).toHaveLength(20);
    expect(new Set(a).size).toBe(20);
    expect(a.sort()).not.toEqual(b.sort()); // chance of equality: 1 / C(200, 20)
    const groups = [1, 2, 3].map((part) => selectPacks(ids, { kind: 'part', part, of: 3 }, randomInt));
    expect(groups.flat().sort()).toEqual([...ids].sort());
    expect(selectPacks(ids, { kind: 'fraction', fraction: 0.001 }, randomInt)).toHaveLength(1);
  });
});

describe('check --read-data on packs of large blobs', () => {
  it('verifies records that span the chunks a pack is read in, several at once, and names each damaged one', async () => {
    const big = await createFixture({ packSize: 16 * 1024 * 1024 });
    try {
      // Local storage reads a pack in 1 MiB chunks: most of these records span two or three of them.
      const sizes = [1536, 20, 700, 2300, 5, 900, 1100];
      const ids: string[] = [];
      for (const [i, kib] of sizes.entries()) {
        const data = i % 2 ? content(`big${i}`, kib) : textLike(kib * 1024, `big${i}`);
        ids.push((await big.repo.saveBlob('data', data)).id);
      }
      await big.repo.flush();
      const healthy = await checkRepository(big.repo, { readData: { kind: 'all' } });
      expect(healthy.problems).toEqual([]);
      expect(healthy.stats.packsRead).toBe(1);

      const view = await loadIndexView(big.repo);
      const damaged = [ids[3]!, ids[4]!, ids[6]!];
      const fh = await open(big.path(packKey(view.blobs.get(ids[0]!)!.packId)), 'r+');
      for (const id of damaged) {
        const loc = view.blobs.get(id)!;
        const at = loc.offset + (loc.length >> 1);
        const one = Buffer.alloc(1);
        await fh.read(one, 0, 1, at);
        one[0] = one[0]! ^ 0x40;
        await fh.write(one, 0, 1, at);
      }
      await fh.close();
      const r = await checkRepository(big.repo, { readData: { kind: 'all' } });
      const blobs = r.problems.filter((p) => p.kind === 'blob-damaged');
      expect(blobs.map((p) => p.blob)).toEqual(damaged);
      for (const p of blobs) expect(p.message).toMatch(/failed authentication/);
      expect(kinds(r.problems)).toContain('pack-hash');
    } finally {
      await big.close();
    }
  });
});
