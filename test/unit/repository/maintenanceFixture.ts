/**
 * A real repository on local storage in a temp dir for the check and prune
 * tests, with helpers to store file-like snapshots whose blobs the tests can
 * find again (to damage or delete exactly the pack holding one file).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../../src/platform/clock.js';
import { loadIndexView } from '../../../src/repository/check.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import type { Tree, TreeNode } from '../../../src/repository/tree.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { pseudoRandom, snapshotRecord, testOptions } from './helpers.js';

export const PASSWORD = 'maintenance test password';

export interface Fixture {
  dir: string;
  storage: LocalStorage;
  repo: Repository;
  /** Path on disk of a storage key. */
  path(key: string): string;
  /** A second session on the same repository (another process, as it were). */
  reopen(clock?: Clock): Promise<Repository>;
  close(): Promise<void>;
}

/** A fresh repository with small packs (so a few files give many packs). */
export async function createFixture(opts: { packSize?: number; clock?: Clock } = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-maint-'));
  const storage = await LocalStorage.create(join(dir, 'repo'));
  const repo = await initRepository(
    storage,
    PASSWORD,
    testOptions({ packSize: opts.packSize ?? 64 * 1024, ...(opts.clock ? { clock: opts.clock } : {}) }),
  );
  const sessions: Repository[] = [repo];
  return {
    dir,
    storage,
    repo,
    path: (key) => join(dir, 'repo', key),
    async reopen(clock) {
      const r = await openRepository(
        storage,
        PASSWORD,
        testOptions({ packSize: opts.packSize ?? 64 * 1024, ...(clock ? { clock } : {}) }),
      );
      sessions.push(r);
      return r;
    },
    async close() {
      for (const r of sessions) await r.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const PIECE = 48 * 1024;

/** Deterministic file content: `kib` KiB of incompressible bytes. */
export const content = (seed: string, kib: number): Buffer => pseudoRandom(kib * 1024, seed);

export interface SavedSnapshot {
  id: string;
  tree: string;
  /** Data blob IDs of each file, in order. */
  blobs: Map<string, string[]>;
}

/**
 * Store files (name → content, `dir/name` for one level of directories) as
 * one snapshot of `job`. Content is cut into 48 KiB blobs.
 */
export async function saveFileSnapshot(
  repo: Repository,
  files: Record<string, Buffer>,
  opts: { job?: string; startedAt?: string; partial?: boolean } = {},
): Promise<SavedSnapshot> {
  const blobs = new Map<string, string[]>();
  const dirs = new Map<string, TreeNode[]>();
  const root: TreeNode[] = [];
  const node = (name: string, extra: Partial<TreeNode>): TreeNode => ({
    name,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtimeNs: '1700000000000000000',
    ...extra,
  });
  for (const [path, data] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const ids: string[] = [];
    for (let at = 0; at < data.length; at += PIECE) {
      ids.push((await repo.saveBlob('data', data.subarray(at, at + PIECE))).id);
    }
    blobs.set(path, ids);
    const [first, second] = path.split('/');
    const file = node(second ?? first!, { size: data.length, content: ids });
    if (second === undefined) root.push(file);
    else dirs.set(first!, [...(dirs.get(first!) ?? []), file]);
  }
  for (const [name, nodes] of dirs) {
    const sub: Tree = { nodes: nodes.sort((a, b) => (a.name < b.name ? -1 : 1)) };
    root.push(node(name, { type: 'dir', mode: 0o755, subtree: await repo.saveTree(sub) }));
  }
  root.sort((a, b) => (a.name < b.name ? -1 : 1));
  const tree = await repo.saveTree({ nodes: root });
  const id = await repo.saveSnapshot(
    snapshotRecord(tree, {
      job: opts.job ?? 'web',
      startedAt: opts.startedAt ?? '2025-01-31T12:00:00.000Z',
      endedAt: opts.startedAt ?? '2025-01-31T12:00:00.000Z',
      partial: opts.partial ?? false,
    }),
  );
  return { id, tree, blobs };
}

/** The pack holding a blob, by a fresh read of the index files. */
export async function packOf(repo: Repository, blobId: string): Promise<string> {
  const view = await loadIndexView(repo);
  const loc = view.blobs.get(blobId);
  if (!loc) throw new Error(`blob ${blobId} is not indexed`);
  return loc.packId;
}
