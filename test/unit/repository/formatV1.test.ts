/**
 * Compatibility: a repository written by format version 1 (frozen bytes in
 * fixtures/repository-v1, scrypt N=1024 so the test is fast) must stay
 * readable — blobs, trees, snapshots, journal, and the same chunk boundaries
 * and blob IDs for the same repository keys. If this test fails, the format
 * changed: bump the version (docs/repository-format.md §15), keep this
 * fixture, and add one for the new version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LocalStorage } from '../../../src/storage/local.js';
import { openRepository, type Repository } from '../../../src/repository/repository.js';
import { iterate, testOptions } from './helpers.js';
import { createCipheriv, createHash } from 'node:crypto';

const FIXTURE = fileURLToPath(new URL('./fixtures/repository-v1', import.meta.url));
const SNAPSHOT = '26f7ea26647d98d48ccd9c64fc2924b2dbf78a06dc76485b010e843b0eb15a08';
const TEXT_BLOB = '3e0e1c7dd30614b58d52434510ff57da40b30780d8be66cb73fd20fe054565b2';
const BIN_BLOB = '4745bf32fa3ff3c0c7b83159a00f4685b78ea7e0081a653512df269ca17b8b89';

let dir: string;
let repo: Repository;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-fixture-'));
  await cp(FIXTURE, join(dir, 'repo'), { recursive: true });
  repo = await openRepository(
    LocalStorage.fromUrl(pathToFileURL(join(dir, 'repo')).href),
    'fixture-password-v1',
    testOptions(),
  );
});

afterAll(async () => {
  await repo?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('format version 1 fixture', () => {
  it('opens and lists its snapshot', async () => {
    const [snap, ...rest] = await repo.listSnapshots();
    expect(rest).toEqual([]);
    expect(snap).toMatchObject({ id: SNAPSHOT, job: 'fixture', tags: ['v1'], host: 'fixture-host' });
    expect((await repo.findSnapshot('26f7')).id).toBe(SNAPSHOT);
  });

  it('restores its trees and blobs byte for byte', async () => {
    const snap = await repo.findSnapshot('latest', 'fixture');
    const root = await repo.loadTree(snap.tree);
    expect(root.nodes.map((n) => [n.name, n.type])).toEqual([
      ['link', 'symlink'],
      ['readme.txt', 'file'],
      ['sub', 'dir'],
    ]);
    expect(root.nodes[0]!.linkTarget).toBe('readme.txt');
    expect(root.nodes[1]!.content).toEqual([TEXT_BLOB]);
    expect(Buffer.from(await repo.loadBlob(TEXT_BLOB)).toString()).toBe('lifeboat fixture v1\n'.repeat(5000));
    const sub = await repo.loadTree(root.nodes[2]!.subtree!);
    expect(sub.nodes[0]!.content).toEqual([BIN_BLOB, { zero: 4096 }]);
    const bin = Buffer.from(await repo.loadBlob(BIN_BLOB));
    expect(bin).toHaveLength(70_000);
    expect(bin.every((b, i) => b === (i * 7919) % 251)).toBe(true);
  });

  it('reads its journal', async () => {
    const { records, problems } = await repo.listJournal();
    expect(problems).toEqual([]);
    expect(records).toEqual([
      expect.objectContaining({
        id: '0123456789abcdef',
        kind: 'backup',
        outcome: 'success',
        snapshotIds: [SNAPSHOT],
      }),
    ]);
  });

  it('computes the same blob IDs and chunk boundaries as when it was written', async () => {
    expect(repo.blobId(Buffer.from('lifeboat fixture v1\n'.repeat(5000)))).toBe(TEXT_BLOB);
    const key = createHash('sha256').update('fixture-chunking').digest();
    const data = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(8 * 1024 * 1024));
    const lengths: number[] = [];
    for await (const chunk of repo.chunker().chunks(iterate([data]))) {
      lengths.push(chunk.length);
    }
    expect(lengths).toEqual([1270477, 1446613, 1141021, 1422675, 1170917, 1110227, 826678]);
  });
});
