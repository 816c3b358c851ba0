import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode, IntegrityError, LifeboatError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { Tree } from '../../../src/repository/tree.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import { packKey } from '../../../src/repository/layout.js';
import { indexedPacks, readPackHeader } from '../../../src/repository/maintenance.js';
import { flipByte, pseudoRandom, snapshotRecord, testOptions, textLike } from './helpers.js';

const PASSWORD = 'correct horse battery staple';
const open: Repository[] = [];
const track = (r: Repository) => (open.push(r), r);

afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

async function fresh(storage = new MemoryStorage(), overrides = {}) {
  return track(await initRepository(storage, PASSWORD, testOptions(overrides)));
}

const fileTree = (content: string[], name = 'file.txt'): Tree => ({
  nodes: [
    { name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1700000000000000000', size: 1, content },
  ],
});

describe('blobs', () => {
  it('round-trips compressible, incompressible, tiny and empty blobs through flush and reopen', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage);
    const blobs = [
      textLike(3 * 1024 * 1024, 'a'),
      pseudoRandom(1024 * 1024, 'b'),
      Buffer.from('x'),
      Buffer.alloc(0),
    ];
    const ids: string[] = [];
    for (const b of blobs) {
      const r = await repo.saveBlob('data', b);
      expect(r).toEqual({ id: repo.blobId(b), stored: true, length: b.length });
      ids.push(r.id);
    }
    await repo.flush();
    for (const [i, id] of ids.entries())
      expect(Buffer.from(await repo.loadBlob(id)).equals(blobs[i]!)).toBe(true);

    const again = track(await openRepository(storage, PASSWORD, testOptions()));
    expect(again.id).toBe(repo.id);
    for (const [i, id] of ids.entries()) {
      expect(again.hasBlob(id)).toBe(true);
      expect(Buffer.from(await again.loadBlob(id)).equals(blobs[i]!)).toBe(true);
    }
  });

  it('compresses what shrinks and stores the rest as is', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage);
    const text = await repo.saveBlob('data', textLike(1024 * 1024, 't'));
    const noise = await repo.saveBlob('data', pseudoRandom(1024 * 1024, 'n'));
    await repo.flush();
    const [pack] = [...indexedPacks(repo).keys()];
    const entries = await readPackHeader(repo, pack!);
    const byId = new Map(entries.map((e) => [e.id, e]));
    expect(byId.get(text.id)?.compression).toBe('zstd');
    expect(byId.get(text.id)!.length).toBeLessThan(512 * 1024);
    expect(byId.get(noise.id)?.compression).toBe('none');
    expect(byId.get(noise.id)!.length).toBe(1024 * 1024 + 28);
  });

  it('dedups within a run and against the repository', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage);
    const data = pseudoRandom(100_000, 'dup');
    const [a, b] = await Promise.all([repo.saveBlob('data', data), repo.saveBlob('data', Buffer.from(data))]);
    expect([a.stored, b.stored].sort()).toEqual([false, true]);
    await repo.flush();
    const second = track(await openRepository(storage, PASSWORD, testOptions()));
    expect((await second.saveBlob('data', data)).stored).toBe(false);
    const stats = await second.stats();
    expect(stats.dataBlobs).toBe(1);
    expect(second.writeStats()).toEqual({ blobs: 0, rawBytes: 0, storedBytes: 0, packs: 0 });
    expect(repo.writeStats()).toEqual({ blobs: 1, rawBytes: 100_000, storedBytes: 100_028, packs: 1 });
  });

  it('is not affected when the caller reuses its buffer after saveBlob', async () => {
    const repo = await fresh();
    const buf = pseudoRandom(200_000, 'reuse');
    const expected = Buffer.from(buf);
    const { id } = await repo.saveBlob('data', buf);
    buf.fill(7);
    await repo.flush();
    expect(Buffer.from(await repo.loadBlob(id)).equals(expected)).toBe(true);
  });

  it('loads a blob that is accepted but not yet flushed', async () => {
    const repo = await fresh();
    const data = textLike(50_000, 'pending');
    const { id } = await repo.saveBlob('data', data);
    expect(repo.hasBlob(id)).toBe(true);
    expect(Buffer.from(await repo.loadBlob(id)).equals(data)).toBe(true);
  });

  it('spreads blobs over packs of the target size and writes index files before the snapshot', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage, { packSize: 256 * 1024 });
    for (let i = 0; i < 10; i++) await repo.saveBlob('data', pseudoRandom(100_000, `p${i}`));
    await repo.flush();
    const packs = [...indexedPacks(repo).values()];
    expect(packs.length).toBeGreaterThanOrEqual(3);
    for (const p of packs) expect(p.blobs).toBeLessThanOrEqual(3);
    const indexFiles = [];
    for await (const o of storage.list('index/')) indexFiles.push(o.key);
    expect(indexFiles.length).toBeGreaterThanOrEqual(1);
  });

  it('rejects a flipped byte in a pack with an IntegrityError naming the pack and the blob', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage);
    const data = textLike(300_000, 'flip');
    const { id } = await repo.saveBlob('data', data);
    await repo.flush();
    const [packId] = [...indexedPacks(repo).keys()];
    const raw = storage.raw(packKey(packId!))!;
    flipByte(raw, 100);
    const reopened = track(await openRepository(storage, PASSWORD, testOptions()));
    const err = await reopened.loadBlob(id).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(id);
    expect((err as Error).message).toContain(packId);
    expect((err as IntegrityError).exitCode).toBe(ExitCode.internal);
  });

  it('reports a blob that is not in the repository', async () => {
    const repo = await fresh();
    await expect(repo.loadBlob('ab'.repeat(32))).rejects.toThrow(/is not in the index/);
  });
});

describe('trees and snapshots', () => {
  it('round-trips a tree and a snapshot; equal trees dedup regardless of order', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage);
    const content = await repo.saveBlob('data', Buffer.from('hello world'));
    const tree: Tree = {
      nodes: [
        {
          name: 'b',
          type: 'file',
          mode: 0o600,
          uid: 1,
          gid: 1,
          mtimeNs: '1',
          size: 11,
          content: [content.id, { zero: 5 }],
        },
        { name: 'a', type: 'dir', mode: 0o755, uid: 1, gid: 1, mtimeNs: '2', subtree: content.id },
      ],
    };
    const treeId = await repo.saveTree(tree);
    const sameTree = await repo.saveTree({ nodes: [...tree.nodes].reverse() });
    expect(sameTree).toBe(treeId);
    const snapshotId = await repo.saveSnapshot(snapshotRecord(treeId));
    expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);

    const again = track(await openRepository(storage, PASSWORD, testOptions()));
    const loaded = await again.loadTree(treeId);
    expect(loaded.nodes.map((n) => n.name)).toEqual(['a', 'b']);
    expect(loaded.nodes[1]).toEqual(tree.nodes[0]);
    const [entry] = await again.listSnapshots();
    expect(entry).toEqual({ ...snapshotRecord(treeId), id: snapshotId });
  });

  it('refuses invalid tree entries', async () => {
    const repo = await fresh();
    for (const name of ['', '.', '..', 'a/b', 'nul\0']) {
      await expect(repo.saveTree(fileTree([], name))).rejects.toThrow(/tree entry name/);
    }
    const dup = fileTree([]);
    await expect(repo.saveTree({ nodes: [...dup.nodes, ...dup.nodes] })).rejects.toThrow(/two entries/);
  });

  it('refuses a snapshot whose root tree is not stored, and a malformed record', async () => {
    const repo = await fresh();
    await expect(repo.saveSnapshot(snapshotRecord('cd'.repeat(32)))).rejects.toThrow(/refusing to commit/);
    const { id } = await repo.saveBlob('data', Buffer.from('not a tree'));
    await expect(repo.saveSnapshot(snapshotRecord(id))).rejects.toThrow(/not a tree/);
    await expect(repo.loadTree(id)).rejects.toThrow(/not a tree/);
    const bad = { ...snapshotRecord(id), job: undefined } as unknown as ReturnType<typeof snapshotRecord>;
    await expect(repo.saveSnapshot(bad)).rejects.toThrow(/invalid snapshot record/);
  });

  it('resolves full IDs, prefixes and latest (per job); ambiguous and unknown refs are clear errors', async () => {
    const repo = await fresh();
    const ids: Record<string, string> = {};
    for (const [job, start, marker] of [
      ['web', '2025-01-01T00:00:00.000Z', 'w1'],
      ['web', '2025-01-03T00:00:00.000Z', 'w2'],
      ['db', '2025-01-02T00:00:00.000Z', 'd1'],
      ['db', '2025-01-04T00:00:00.000Z', 'd2'],
    ] as const) {
      const tree = await repo.saveTree(fileTree([(await repo.saveBlob('data', Buffer.from(marker))).id]));
      ids[marker] = await repo.saveSnapshot(snapshotRecord(tree, { job, startedAt: start, endedAt: start }));
    }
    expect((await repo.findSnapshot('latest')).id).toBe(ids.d2);
    expect((await repo.findSnapshot('latest', 'web')).id).toBe(ids.w2);
    expect((await repo.findSnapshot(ids.w1!)).id).toBe(ids.w1);
    expect((await repo.findSnapshot(ids.d1!.slice(0, 12).toUpperCase())).id).toBe(ids.d1);
    await expect(repo.findSnapshot('latest', 'nope')).rejects.toMatchObject({ code: 'E_SNAPSHOT_NOT_FOUND' });
    await expect(repo.findSnapshot('abc')).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(repo.findSnapshot(ids.w1!.slice(0, 8), 'db')).rejects.toMatchObject({
      code: 'E_SNAPSHOT_NOT_FOUND',
    });
    expect(await repo.listSnapshots()).toHaveLength(4);
  });

  it('lists snapshots oldest first and skips a damaged one with a warning', async () => {
    const storage = new MemoryStorage();
    const warnings: string[] = [];
    const repo = await fresh(storage);
    const tree = await repo.saveTree(fileTree([]));
    const a = await repo.saveSnapshot(snapshotRecord(tree, { startedAt: '2025-01-02T00:00:00.000Z' }));
    const b = await repo.saveSnapshot(snapshotRecord(tree, { startedAt: '2025-01-01T00:00:00.000Z' }));
    flipByte(storage.raw(`snapshots/${a}`)!, 20, 0xff);
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const reader = track(await openRepository(storage, PASSWORD, testOptions({ logger })));
    const list = await reader.listSnapshots();
    expect(list.map((s) => s.id)).toEqual([b]);
    expect(warnings.join('\n')).toContain(a);
    expect(reader.snapshotIssues()).toHaveLength(1);
    await expect(reader.findSnapshot(a.slice(0, 10))).rejects.toThrow(/damaged/);
  });

  it('commits snapshots from two concurrent writers into one storage', async () => {
    const storage = new MemoryStorage();
    track(await fresh(storage));
    const [w1, w2] = await Promise.all([
      openRepository(storage, PASSWORD, testOptions({ host: 'h1' })),
      openRepository(storage, PASSWORD, testOptions({ host: 'h2' })),
    ]);
    track(w1);
    track(w2);
    const write = async (repo: Repository, tag: string) => {
      const blobs = [];
      for (let i = 0; i < 5; i++)
        blobs.push((await repo.saveBlob('data', pseudoRandom(200_000, `${tag}${i}`))).id);
      // A blob both write: stored twice, harmless.
      blobs.push((await repo.saveBlob('data', Buffer.from('common'))).id);
      const tree = await repo.saveTree(fileTree(blobs));
      return repo.saveSnapshot(snapshotRecord(tree, { host: tag, tags: [tag] }));
    };
    const [s1, s2] = await Promise.all([write(w1, 'h1'), write(w2, 'h2')]);
    const reader = track(await openRepository(storage, PASSWORD, testOptions()));
    const listed = await reader.listSnapshots();
    expect(listed.map((s) => s.id).sort()).toEqual([s1, s2].sort());
    for (const snap of listed) {
      const tree = await reader.loadTree(snap.tree);
      for (const ref of tree.nodes[0]!.content!) await reader.loadBlob(ref as string);
    }
  });
});

describe('stats', () => {
  it('counts snapshots, packs, blobs and ratios', async () => {
    const repo = await fresh();
    const data = textLike(2 * 1024 * 1024, 'stats');
    const { id } = await repo.saveBlob('data', data);
    const tree = await repo.saveTree(fileTree([id]));
    const stats1 = {
      files: 1,
      dirs: 1,
      bytes: data.length,
      addedBytes: data.length,
      storedBytes: 0,
      blobs: 2,
    };
    await repo.saveSnapshot(snapshotRecord(tree, { stats: stats1 }));
    await repo.saveSnapshot(snapshotRecord(tree, { stats: stats1, startedAt: '2025-02-01T00:00:00.000Z' }));
    const s = await repo.stats();
    expect(s).toMatchObject({
      snapshots: 2,
      dataBlobs: 1,
      treeBlobs: 1,
      dataPacks: 1,
      treePacks: 1,
      indexFiles: 1,
    });
    expect(s.rawBytes).toBeGreaterThan(data.length);
    expect(s.dedupRatio).toBeGreaterThan(1.9);
    expect(s.compressionRatio).toBeGreaterThan(2);
  });
});

describe('errors', () => {
  it('is a LifeboatError with exit 10 when no repository exists', async () => {
    const err = await openRepository(new MemoryStorage('memory://nothing'), PASSWORD, testOptions()).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err.exitCode).toBe(ExitCode.repositoryMissing);
    expect(err.message).toBe(
      'no lifeboat repository at memory://nothing; create one with `lifeboat repo init`',
    );
  });

  it('refuses to init over an existing repository', async () => {
    const storage = new MemoryStorage();
    await fresh(storage);
    await expect(initRepository(storage, PASSWORD, testOptions())).rejects.toMatchObject({
      code: 'E_REPO_EXISTS',
    });
  });

  it('says when the location holds something else', async () => {
    const storage = new MemoryStorage('memory://other');
    await storage.put('config', Buffer.from('[core]\nrepositoryformatversion = 0\n'));
    await expect(openRepository(storage, PASSWORD, testOptions())).rejects.toMatchObject({
      code: 'E_NOT_A_REPOSITORY',
      exitCode: ExitCode.repositoryMissing,
    });
  });

  it('refuses a newer format version with a hint to upgrade', async () => {
    const storage = new MemoryStorage();
    await fresh(storage);
    const config = JSON.parse(storage.raw('config')!.toString());
    await storage.put('config', Buffer.from(JSON.stringify({ ...config, version: 2 })));
    await expect(openRepository(storage, PASSWORD, testOptions())).rejects.toMatchObject({
      code: 'E_FORMAT_VERSION',
      hint: expect.stringMatching(/Upgrade lifeboat/),
    });
  });

  it('detects tampered sealed config parameters', async () => {
    const storage = new MemoryStorage();
    await fresh(storage);
    const config = JSON.parse(storage.raw('config')!.toString());
    const params = Buffer.from(config.parameters, 'base64');
    flipByte(params, 20);
    await storage.put(
      'config',
      Buffer.from(JSON.stringify({ ...config, parameters: params.toString('base64') })),
    );
    await expect(openRepository(storage, PASSWORD, testOptions())).rejects.toThrow(
      /config object .* is damaged/,
    );
  });

  it('surfaces a failed pack upload at flush and refuses further writes', async () => {
    const storage = new MemoryStorage();
    const repo = await fresh(storage, { packSize: 64 * 1024 });
    const failing = storage.put.bind(storage);
    storage.put = async (key, body, opts) => {
      if (key.startsWith('data/')) throw new Error('disk full');
      return failing(key, body, opts);
    };
    await repo.saveBlob('data', pseudoRandom(100_000, 'f1'));
    await expect(repo.flush()).rejects.toThrow('disk full');
    await expect(repo.saveBlob('data', Buffer.from('more'))).rejects.toThrow('disk full');
  });
});
