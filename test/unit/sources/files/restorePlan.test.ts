import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Repo } from '../../../../src/repository/api.js';
import type { ContentRef } from '../../../../src/repository/tree.js';
import { initRepository, type Repository } from '../../../../src/repository/repository.js';
import { ContentFile, HoldBudget } from '../../../../src/sources/files/fileWriter.js';
import { WorkerHash } from '../../../../src/sources/files/restoreHash.js';
import { ContentBatch, ContentPipeline } from '../../../../src/sources/files/restorePlan.js';
import { MemoryStorage } from '../../../../src/storage/memory.js';
import { FakeRepo } from '../../../helpers/fakeRepo.js';
import { pseudoRandom, testOptions } from '../../repository/helpers.js';

const FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ContentBatch', () => {
  const file = (refs: ContentRef[]) => ({ refs, planned: 0 });

  it('plans a chunk used by several files (and twice in one file) as one read with every use', () => {
    const batch = new ContentBatch({ maxRefs: 100, maxFiles: 10 });
    const a = file(['x', 'y', { zero: 10 }, 'x']);
    const b = file(['y', 'z']);
    batch.add(a);
    batch.add(b);
    expect([...batch.uses.keys()]).toEqual(['x', 'y', 'z']);
    expect(batch.uses.get('x')!.map((u) => [u.file === a, u.index])).toEqual([
      [true, 0],
      [true, 3],
    ]);
    expect(batch.uses.get('y')!.map((u) => [u.file === a ? 'a' : 'b', u.index])).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
    expect(batch.refs).toBe(5); // the zero run needs no chunk
    expect([a.planned, b.planned]).toEqual([4, 2]);
  });

  it('splits a big file over batches at the ref limit and stops at the file limit', () => {
    const big = file(Array.from({ length: 10 }, (_, i) => `c${i}`));
    const first = new ContentBatch({ maxRefs: 4, maxFiles: 10 });
    first.add(big);
    expect(first.full).toBe(true);
    expect(big.planned).toBe(4);
    expect(first.ends).toEqual([4]);
    const second = new ContentBatch({ maxRefs: 4, maxFiles: 10 });
    second.add(big);
    expect([...second.uses.keys()]).toEqual(['c4', 'c5', 'c6', 'c7']);
    const few = new ContentBatch({ maxRefs: 100, maxFiles: 2 });
    const files = [file(['a']), file(['b']), file(['c'])];
    for (const f of files) few.add(f);
    expect(few.files).toHaveLength(2);
    expect(files[2]!.planned).toBe(0);
  });
});

describe('ContentFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-content-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes chunks arriving out of order at their offsets, leaves holes and hashes by reading back', async () => {
    const chunks = { a: Buffer.from('first chunk '), b: Buffer.from('second '), c: Buffer.from('third') };
    const refs: ContentRef[] = ['a', { zero: 4096 }, 'b', 'c', { zero: 10 }];
    const expected = Buffer.concat([chunks.a, Buffer.alloc(4096), chunks.b, chunks.c, Buffer.alloc(10)]);
    const lengthOf = (id: string) => chunks[id as keyof typeof chunks].length;
    const path = join(dir, 'out');
    const f = new ContentFile(Buffer.from(path), refs, FLAGS, lengthOf);
    await f.start();
    f.write(3, chunks.c);
    f.write(0, chunks.a);
    expect(f.complete).toBe(false);
    f.write(2, chunks.b);
    expect(f.complete).toBe(true);
    const written = await f.finish();
    f.close();
    expect(written).toEqual({ size: expected.length, sha256: sha(expected) });
    expect((await readFile(path)).equals(expected)).toBe(true);
  });

  it('leaves the aligned zero blocks inside chunks unwritten (holes), at any chunk offset', async () => {
    const KiB = 1024;
    const withZeros = (seed: number) =>
      Buffer.concat([Buffer.alloc(100, seed), Buffer.alloc(1000 * KiB), Buffer.alloc(10, seed + 1)]);
    const chunks = [withZeros(1), withZeros(3), Buffer.alloc(300 * KiB)]; // the last: zeros stored as data
    const expected = Buffer.concat(chunks);
    const path = join(dir, 'zero-blocks');
    const f = new ContentFile(
      Buffer.from(path),
      ['a', 'b', 'c'],
      FLAGS,
      (id) => chunks['abc'.indexOf(id)]!.length,
    );
    await f.start();
    chunks.forEach((c, i) => f.write(i, c));
    expect(await f.finish()).toEqual({ size: expected.length, sha256: sha(expected) });
    f.close();
    expect((await readFile(path)).equals(expected)).toBe(true);
    // Of 2.3 MiB, only the blocks holding the few non-zero bytes are allocated.
    expect((await stat(path)).blocks * 512).toBeLessThanOrEqual(4 * 64 * KiB);
  });

  it('hashes on the fly in file order, and discard removes the partial file', async () => {
    const data = [Buffer.from('abc'), Buffer.from('defg')];
    const path = join(dir, 'in-order');
    const f = new ContentFile(Buffer.from(path), [{ zero: 5 }, 'p', 'q'], FLAGS, (id) =>
      id === 'p' ? 3 : 4,
    );
    await f.start();
    f.write(1, data[0]!);
    f.write(2, data[1]!);
    expect((await f.finish()).sha256).toBe(sha(Buffer.concat([Buffer.alloc(5), ...data])));
    f.close();
    const partial = join(dir, 'partial');
    const g = new ContentFile(Buffer.from(partial), ['p', 'q'], FLAGS, () => 3);
    await g.start();
    g.write(0, data[0]!);
    expect((await stat(partial)).size).toBe(3);
    g.discard();
    await expect(stat(partial)).rejects.toThrow(/ENOENT/);
  });
});

describe('ContentFile hashing chunks that arrive ahead of their turn', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-early-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const chunks = { a: Buffer.from('alpha '), b: Buffer.from('bravo bravo '), c: Buffer.from('charlie') };
  // 'a' is used twice: the restore delivers it once, to both places, before 'b' arrives.
  const refs: ContentRef[] = ['a', 'b', { zero: 70_000 }, 'a', 'c'];
  const expected = Buffer.concat([chunks.a, chunks.b, Buffer.alloc(70_000), chunks.a, chunks.c]);
  const lengthOf = (id: string) => chunks[id as keyof typeof chunks].length;

  /** Deliver in the order a restore by pack might: a (to 0 and 3), c, b. */
  async function writeOutOfOrder(f: ContentFile) {
    await f.start();
    f.write(0, chunks.a);
    f.write(3, chunks.a);
    f.write(4, chunks.c);
    f.write(1, chunks.b);
    expect(f.complete).toBe(true);
    const written = await f.finish();
    f.close();
    return written;
  }

  it('keeps early chunks in memory within the budget and gives the budget back', async () => {
    const budget = new HoldBudget(100);
    const path = join(dir, 'held');
    const written = await writeOutOfOrder(
      new ContentFile(Buffer.from(path), refs, FLAGS, lengthOf, { budget }),
    );
    expect(written).toEqual({ size: expected.length, sha256: sha(expected) });
    expect((await readFile(path)).equals(expected)).toBe(true);
    expect(budget.take(100)).toBe(true); // everything held was given back
  });

  it('reads back only the early chunks that did not fit the budget', async () => {
    const path = join(dir, 'read-back');
    const f = new ContentFile(Buffer.from(path), refs, FLAGS, lengthOf, { budget: new HoldBudget(0) });
    expect(await writeOutOfOrder(f)).toEqual({ size: expected.length, sha256: sha(expected) });
    expect((await stat(path)).blocks * 512).toBeLessThan(70_000); // the zero run stayed a hole
  });

  it('gives the budget back when the file is discarded', async () => {
    const budget = new HoldBudget(10);
    const f = new ContentFile(Buffer.from(join(dir, 'dropped')), refs, FLAGS, lengthOf, { budget });
    await f.start();
    f.write(3, chunks.a);
    expect(budget.take(10)).toBe(false);
    f.discard();
    expect(budget.take(10)).toBe(true);
  });
});

describe('ContentFile hashing on a repository worker', () => {
  let dir: string;
  let repo: Repository;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-worker-hash-'));
    repo = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
  });
  afterEach(async () => {
    await repo.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes data and long zero runs in order, waiting while the worker lags behind', async () => {
    const data = [pseudoRandom(3 * 1024 * 1024, 'w0'), pseudoRandom(5 * 1024 * 1024 + 7, 'w1')];
    const refs: ContentRef[] = ['p', { zero: 40 * 1024 * 1024 }, 'q', { zero: 3 }];
    const expected = Buffer.concat([data[0]!, Buffer.alloc(40 * 1024 * 1024), data[1]!, Buffer.alloc(3)]);
    const path = join(dir, 'big');
    const f = new ContentFile(Buffer.from(path), refs, FLAGS, (id) => data[id === 'p' ? 0 : 1]!.length, {
      hash: new WorkerHash(repo.contentHasher()),
    });
    await f.start();
    await f.write(0, data[0]!);
    const waiting = f.write(2, data[1]!); // 45 MiB queued for the worker: the writer is asked to wait
    expect(waiting).toBeInstanceOf(Promise);
    await waiting;
    expect(await f.finish()).toEqual({ size: expected.length, sha256: sha(expected) });
    f.close();
    expect((await stat(path)).blocks * 512).toBeLessThan(12 * 1024 * 1024);
  });

  it('a discarded file ends its stream on the worker', async () => {
    const f = new ContentFile(Buffer.from(join(dir, 'gone')), ['p', 'q'], FLAGS, () => 4, {
      hash: new WorkerHash(repo.contentHasher()),
    });
    await f.start();
    await f.write(0, Buffer.from('abcd'));
    f.discard();
    await expect(stat(join(dir, 'gone'))).rejects.toThrow(/ENOENT/);
  });
});

describe('ContentPipeline', () => {
  let dir: string;
  const repos: Repository[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-pipeline-'));
  });
  afterEach(async () => {
    for (const r of repos.splice(0)) await r.close();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Restore `contents` (lists of chunk indexes) with tiny batches; returns
   * the bytes written. `onWorker`: every file hashes on a repository worker.
   */
  async function restore(
    repo: Repo,
    chunks: Buffer[],
    ids: string[],
    contents: number[][],
    onWorker = false,
    checking: ReadonlySet<number> = new Set(),
  ) {
    const files = contents.map((list, i) => {
      const file = new ContentFile(
        Buffer.from(join(dir, `f${i}`)),
        list.map((c) => ids[c]!),
        FLAGS,
        (id) => repo.blobLength?.(id),
        onWorker ? { hash: new WorkerHash(repo.contentHasher!()) } : {},
      );
      // As a restored file with a recorded SHA-256 says of itself (RestoringContent.checksContent).
      if (checking.has(i)) Object.defineProperty(file, 'checksContent', { value: true });
      return file;
    });
    const done: number[] = [];
    const failed: unknown[] = [];
    const finishing: Promise<void>[] = [];
    let bytes = 0;
    const pipeline = new ContentPipeline<ContentFile>(
      repo,
      {
        done: (f) => {
          const i = files.indexOf(f);
          const want = sha(Buffer.concat(contents[i]!.map((c) => chunks[c]!)));
          finishing.push(
            f.finish().then((written) => {
              f.close();
              expect(written.sha256).toBe(want);
              done.push(i);
            }),
          );
        },
        failed: (f, err) => {
          f.discard();
          failed.push(err);
        },
        checkAbort: () => {},
        onBytes: (n) => (bytes += n),
      },
      { maxRefs: 3, maxFiles: 2 },
    );
    for (const f of files) await pipeline.add(f);
    await pipeline.drain();
    await Promise.all(finishing);
    expect(failed).toEqual([]);
    expect(done.sort()).toEqual(contents.map((_, i) => i));
    for (const [i, list] of contents.entries()) {
      const want = Buffer.concat(list.map((c) => chunks[c]!));
      expect((await readFile(join(dir, `f${i}`))).equals(want)).toBe(true);
    }
    return bytes;
  }

  const contents = [[0, 1, 2, 3, 4, 1], [1], [5, 0], []];

  it('restores files sharing chunks across batches from a real repository', async () => {
    const repo = await initRepository(new MemoryStorage(), 'pw', testOptions());
    repos.push(repo);
    const chunks = Array.from({ length: 6 }, (_, i) => pseudoRandom(1000 + i * 100, `c${i}`));
    const ids = [];
    for (const c of chunks) ids.push((await repo.saveBlob('data', c)).id);
    await repo.flush();
    const bytes = await restore(repo, chunks, ids, contents);
    expect(bytes).toBe(contents.flat().reduce((n, c) => n + chunks[c]!.length, 0));
  });

  it('moves a chunk to the hashing worker only when no other use shares its buffer', async () => {
    // Chunks opened on the workers come back in ArrayBuffers of their own, the kind a write may give away.
    const repo = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
    repos.push(repo);
    const chunks = Array.from({ length: 6 }, (_, i) => pseudoRandom(40_000 + i * 1000, `w${i}`));
    const ids = [];
    for (const c of chunks) ids.push((await repo.saveBlob('data', c)).id);
    await repo.flush();
    // Chunk 0 three times in one batch (twice in one file), chunk 1 once per batch.
    await restore(repo, chunks, ids, [[0, 1, 0], [0], [2, 1], [3, 4, 5]], true);
  });

  it('skips the ID check only for chunks whose every use checks the whole file', async () => {
    const real = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
    repos.push(real);
    const chunks = Array.from({ length: 4 }, (_, i) => pseudoRandom(40_000 + i, `k${i}`));
    const ids: string[] = [];
    for (const c of chunks) ids.push((await real.saveBlob('data', c)).id);
    await real.flush();
    // What loadBlobs was told about each chunk (each is loaded once here).
    const told = new Map<string, boolean>();
    const repo = new Proxy(real, {
      get(target, key) {
        if (key !== 'loadBlobs') return Reflect.get(target, key, target) as unknown;
        const loadBlobs: Repo['loadBlobs'] = (batch, consume, opts) => {
          const wanted = [...batch];
          for (const id of wanted) {
            expect(told.has(id)).toBe(false);
            told.set(id, opts?.contentChecked?.(id) === true);
          }
          return target.loadBlobs(wanted, consume, opts);
        };
        return loadBlobs;
      },
    });
    // Files 0 and 2 check their content, file 1 does not. Batches of 3 refs: [0, 2 | 2] then [1 | 3], so
    // chunk 2 is shared in its batch by a file that checks and one that does not.
    await restore(repo, chunks, ids, [[0, 2], [2, 1], [3]], true, new Set([0, 2]));
    expect(ids.map((id) => told.get(id))).toEqual([true, false, false, true]);
  });

  it('restores chunk by chunk from a repository without loadBlobs', async () => {
    // FakeRepo (test double): a Repo without pack access or known blob lengths, the fallback path.
    const repo = new FakeRepo();
    const chunks = Array.from({ length: 6 }, (_, i) => pseudoRandom(700 + i, `f${i}`));
    const ids = [];
    for (const c of chunks) ids.push((await repo.saveBlob('data', c)).id);
    await restore(repo, chunks, ids, contents);
  });
});
