/**
 * The repository engine on a real directory (LocalStorage, file://): full
 * round trips through the chunker, damage on disk, crash leftovers, journal,
 * locks and concurrent writers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ExitCode, IntegrityError, RepositoryLockedError } from '../../../src/errors.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { LocalStorage } from '../../../src/storage/local.js';
import type { Tree } from '../../../src/repository/tree.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import {
  listPackObjects,
  readAllIndexFiles,
  verifyPack,
  indexedPacks,
} from '../../../src/repository/maintenance.js';
import { packKey } from '../../../src/repository/layout.js';
import {
  flipByte,
  pseudoRandom,
  snapshotRecord,
  T0,
  testOptions,
  textLike,
} from '../../unit/repository/helpers.js';

const PASSWORD = 'local password';
let dir: string;
let url: string;
const repos: Repository[] = [];
const track = (r: Repository) => (repos.push(r), r);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-repo-'));
  url = pathToFileURL(join(dir, 'repo')).href;
});

afterEach(async () => {
  for (const r of repos.splice(0)) await r.close();
  await rm(dir, { recursive: true, force: true });
});

async function backupFile(repo: Repository, path: string): Promise<{ tree: string; ids: string[] }> {
  const ids: string[] = [];
  for await (const chunk of repo.chunker().chunks(createReadStream(path))) {
    ids.push((await repo.saveBlob('data', chunk)).id);
  }
  const tree: Tree = {
    nodes: [{ name: 'input.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '0', content: ids }],
  };
  return { tree: await repo.saveTree(tree), ids };
}

async function restore(repo: Repository, treeId: string): Promise<Buffer> {
  const tree = await repo.loadTree(treeId);
  const parts: Uint8Array[] = [];
  for (const ref of tree.nodes[0]!.content!) parts.push(await repo.loadBlob(ref as string));
  return Buffer.concat(parts);
}

describe('repository on local storage', () => {
  it('backs up a file through the chunker, commits a snapshot, and restores it after reopening', async () => {
    const input = Buffer.concat([textLike(12 * 1024 * 1024, 'txt'), pseudoRandom(10 * 1024 * 1024, 'rnd')]);
    await writeFile(join(dir, 'input.bin'), input);
    const storage = await LocalStorage.create(url);
    const repo = track(await initRepository(storage, PASSWORD, testOptions({ compressionWorkers: 2 })));
    const { tree, ids } = await backupFile(repo, join(dir, 'input.bin'));
    expect(ids.length).toBeGreaterThan(10);
    const snap = await repo.saveSnapshot(
      snapshotRecord(tree, { stats: { ...snapshotRecord(tree).stats, bytes: input.length } }),
    );

    const reader = track(await openRepository(LocalStorage.fromUrl(url), PASSWORD, testOptions()));
    const found = await reader.findSnapshot('latest', 'web');
    expect(found.id).toBe(snap);
    expect((await restore(reader, found.tree)).equals(input)).toBe(true);
    const stats = await reader.stats();
    expect(stats.storedBytes).toBeLessThan(input.length);
    expect(stats.rawBytes).toBeGreaterThanOrEqual(input.length);

    // The second backup of the same file stores nothing new.
    const before = (await listPackObjects(reader)).length;
    const second = await backupFile(reader, join(dir, 'input.bin'));
    expect(second.ids).toEqual(ids);
    await reader.saveSnapshot(snapshotRecord(second.tree, { startedAt: '2025-02-01T00:00:00.000Z' }));
    expect((await listPackObjects(reader)).length).toBe(before);
  });

  it('reports a flipped byte in a pack file on disk as an IntegrityError naming the blob', async () => {
    const storage = await LocalStorage.create(url);
    const repo = track(await initRepository(storage, PASSWORD, testOptions()));
    const data = textLike(2 * 1024 * 1024, 'flip');
    const { id } = await repo.saveBlob('data', data);
    await repo.flush();
    const [packId] = [...indexedPacks(repo).keys()];
    const file = join(dir, 'repo', ...packKey(packId!).split('/'));
    const bytes = await readFile(file);
    flipByte(bytes, 1000, 0x80);
    await writeFile(file, bytes);

    const reader = track(await openRepository(LocalStorage.fromUrl(url), PASSWORD, testOptions()));
    const err = await reader.loadBlob(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(
      new RegExp(`blob ${id} in pack data/.*${packId}.* failed authentication`),
    );
    const { problems } = await verifyPack(reader, packId!);
    expect(problems.map((p) => p.message)).toEqual([
      'content does not match its name (SHA-256)',
      expect.stringContaining('failed authentication'),
    ]);
  });

  it('leaves only unreferenced packs behind when a writer dies before its snapshot', async () => {
    const storage = await LocalStorage.create(url);
    const first = track(await initRepository(storage, PASSWORD, testOptions({ packSize: 512 * 1024 })));
    const kept = await backupFile(first, await writeInput('kept', 3));
    const keptSnap = await first.saveSnapshot(snapshotRecord(kept.tree));

    // A second writer uploads packs but never reaches its snapshot (as after kill -9).
    const crashed = await openRepository(
      LocalStorage.fromUrl(url),
      PASSWORD,
      testOptions({ packSize: 512 * 1024 }),
    );
    for (let i = 0; i < 6; i++) await crashed.saveBlob('data', pseudoRandom(300_000, `lost${i}`));
    // Drain its uploads without writing an index (what a crash after the uploads looks like).
    await (crashed as unknown as { flushPacks(): Promise<void> }).flushPacks();
    await crashed.close();

    const reader = track(await openRepository(LocalStorage.fromUrl(url), PASSWORD, testOptions()));
    expect((await reader.listSnapshots()).map((s) => s.id)).toEqual([keptSnap]);
    const onDisk = await listPackObjects(reader);
    const indexed = indexedPacks(reader);
    const unreferenced = onDisk.filter((p) => !indexed.has(p.id));
    expect(unreferenced.length).toBeGreaterThan(0);
    const { files, problems } = await readAllIndexFiles(reader);
    expect(problems).toEqual([]);
    expect(files.flatMap((f) => f.body.packs.map((p) => p.id)).sort()).toEqual([...indexed.keys()].sort());
    expect((await restore(reader, kept.tree)).length).toBe(3 * 1024 * 1024);
  });

  it('says there is no repository (exit 10) for a missing or empty directory', async () => {
    for (const target of [url, pathToFileURL(dir).href]) {
      await expect(
        openRepository(LocalStorage.fromUrl(target), PASSWORD, testOptions()),
      ).rejects.toMatchObject({
        exitCode: ExitCode.repositoryMissing,
        message: expect.stringMatching(
          /^no lifeboat repository at file:\/\/.*; create one with `lifeboat repo init`$/,
        ),
      });
    }
  });

  it('commits nothing when closed without a snapshot', async () => {
    const storage = await LocalStorage.create(url);
    const repo = await initRepository(storage, PASSWORD, testOptions());
    const { id } = await repo.saveBlob('data', textLike(100_000, 'dropped'));
    await repo.close();
    await expect(repo.saveBlob('data', Buffer.from('late'))).rejects.toThrow(/closed/);
    const reader = track(await openRepository(LocalStorage.fromUrl(url), PASSWORD, testOptions()));
    expect(reader.hasBlob(id)).toBe(false);
    expect(await reader.listSnapshots()).toEqual([]);
  });

  it('keeps journal records and locks in the directory', async () => {
    const clock = new FakeClock(T0);
    const storage = await LocalStorage.create(url);
    const a = track(await initRepository(storage, PASSWORD, testOptions({ clock, host: 'a' })));
    const b = track(
      await openRepository(LocalStorage.fromUrl(url), PASSWORD, testOptions({ clock, host: 'b' })),
    );
    const rec = await a.appendJournal({
      kind: 'check',
      startedAt: '2025-01-31T12:00:00.000Z',
      endedAt: '2025-01-31T12:00:05.000Z',
      outcome: 'success',
    });
    expect((await b.listJournal()).records).toEqual([rec]);

    const lock = await a.lock({ exclusive: true, purpose: 'prune' });
    await expect(b.lock({ exclusive: false })).rejects.toBeInstanceOf(RepositoryLockedError);
    await lock.release();
    await (await b.lock({ exclusive: false })).release();
  });

  it('lets two writers back up into the same directory at the same time', async () => {
    const storage = await LocalStorage.create(url);
    track(await initRepository(storage, PASSWORD, testOptions()));
    const inputs = [await writeInput('one', 4), await writeInput('two', 4)];
    const writers = await Promise.all(
      ['h1', 'h2'].map(async (host) =>
        track(
          await openRepository(
            LocalStorage.fromUrl(url),
            PASSWORD,
            testOptions({ host, packSize: 1024 * 1024 }),
          ),
        ),
      ),
    );
    const snaps = await Promise.all(
      writers.map(async (w, i) => {
        const { tree } = await backupFile(w, inputs[i]!);
        return w.saveSnapshot(snapshotRecord(tree, { host: `h${i + 1}` }));
      }),
    );
    const reader = track(await openRepository(LocalStorage.fromUrl(url), PASSWORD, testOptions()));
    const listed = await reader.listSnapshots();
    expect(listed.map((s) => s.id).sort()).toEqual([...snaps].sort());
    for (const s of listed) {
      const expected = await readFile(inputs[s.host === 'h1' ? 0 : 1]!);
      expect((await restore(reader, s.tree)).equals(expected)).toBe(true);
    }
  });
});

async function writeInput(name: string, mib: number): Promise<string> {
  const path = join(dir, `${name}.bin`);
  await writeFile(path, pseudoRandom(mib * 1024 * 1024, name));
  return path;
}
