import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../../src/errors.js';
import { contentStream, saveDumpStream, saveStream } from '../../../../src/sources/database/dumpStream.js';
import type { RowReaderThread } from '../../../../src/sources/database/rowReaderWorker.js';
import {
  buildDatabaseTree,
  dumpFileName,
  loadDatabaseTree,
  type DatabaseManifest,
} from '../../../../src/sources/database/snapshotTree.js';
import { FakeRepo } from '../../../helpers/fakeRepo.js';

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(Buffer.from(p as Uint8Array));
  return Buffer.concat(parts);
}

const bytes = (n: number, seed = 1) => {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x & 0xff;
  }
  return b;
};

describe('dumpFileName', () => {
  it('percent-encodes only what cannot be a file name', () => {
    expect(dumpFileName('shop', 'dump')).toBe('shop.dump');
    expect(dumpFileName('a/b%c', 'sql')).toBe('a%2Fb%25c.sql');
    expect(dumpFileName('x\0y', 'sql')).toBe('x%00y.sql');
    expect(dumpFileName('..', 'dump')).toBe('...dump');
    expect(dumpFileName('we\'ird "db" ü', 'dump')).toBe('we\'ird "db" ü.dump');
  });
});

describe('saveStream and contentStream', () => {
  it('round-trips a stream, dedups a second save and reports sizes', async () => {
    const repo = new FakeRepo({ chunkSize: 1000 });
    const data = bytes(10_500);
    const first = await saveStream(repo, Readable.from([data.subarray(0, 3333), data.subarray(3333)]));
    expect(first.size).toBe(10_500);
    expect(first.content).toHaveLength(11);
    expect(first.addedBytes).toBe(10_500);
    const again = await saveStream(repo, Readable.from([data]));
    expect(again.content).toEqual(first.content);
    expect(again.addedBytes).toBe(0);
    expect(again.sha256).toBe(first.sha256);
    const back = await collect(
      contentStream(repo, first.content, { size: first.size, sha256: first.sha256, label: 'x' }),
    );
    expect(back.equals(data)).toBe(true);
  });

  it('saves a dump without a whole-stream SHA-256, showing every byte to the tap, in order', async () => {
    const repo = new FakeRepo({ chunkSize: 1000 });
    const data = bytes(700_000, 7);
    const seen: Buffer[] = [];
    // Only push() is used by saveDumpStream; a recording tap stands in for the worker thread.
    const tap = { push: (c: Uint8Array) => void seen.push(Buffer.from(c)) } as unknown as RowReaderThread;
    const pieces = async function* () {
      for (let at = 0; at < data.length; at += 4096) yield data.subarray(at, at + 4096);
    };
    const saved = await saveDumpStream(repo, pieces(), tap);
    expect(saved.sha256).toBeUndefined();
    expect(saved.size).toBe(data.length);
    expect(Buffer.concat(seen).equals(data)).toBe(true);
    // Without a tap (no checksums) the same chunks; the size is still checked on the way back.
    const untapped = await saveDumpStream(repo, pieces(), undefined);
    expect(untapped.content).toEqual(saved.content);
    const back = await collect(contentStream(repo, saved.content, { size: saved.size, label: 'dump of x' }));
    expect(back.equals(data)).toBe(true);
  });

  it('expands recorded zero runs', async () => {
    const repo = new FakeRepo();
    const back = await collect(contentStream(repo, [{ zero: 3 * 1024 * 1024 + 5 }]));
    expect(back.length).toBe(3 * 1024 * 1024 + 5);
    expect(back.every((b) => b === 0)).toBe(true);
  });

  it('fails with IntegrityError when the content does not match the recorded hash or size', async () => {
    const repo = new FakeRepo({ chunkSize: 100 });
    const saved = await saveStream(repo, Readable.from([bytes(1000)]));
    await expect(
      collect(contentStream(repo, saved.content, { sha256: 'f'.repeat(64), label: 'dump of x' })),
    ).rejects.toThrow(IntegrityError);
    await expect(
      collect(contentStream(repo, saved.content, { size: 999, label: 'dump of x' })),
    ).rejects.toThrow(/read 1000 bytes/);
    repo.corrupt(saved.content[5] as string);
    await expect(collect(contentStream(repo, saved.content, { label: 'dump' }))).rejects.toThrow(
      IntegrityError,
    );
  });

  it('fails when saving a blob fails, and does not leave the error unhandled', async () => {
    const repo = new FakeRepo({ chunkSize: 10 });
    let calls = 0;
    const original = repo.saveBlob.bind(repo);
    repo.saveBlob = async (type, data) => {
      if (++calls === 3) throw new Error('disk full');
      return original(type, data);
    };
    await expect(saveStream(repo, Readable.from([bytes(200)]))).rejects.toThrow('disk full');
  });
});

describe('buildDatabaseTree and loadDatabaseTree', () => {
  const fingerprint = {
    engine: 'postgres' as const,
    serverVersion: '15',
    serverIdentity: 'pg-system:1',
    checksums: true,
    databases: {},
  };

  it('stores the manifest and dumps, and loads them back', async () => {
    const repo = new FakeRepo({ chunkSize: 100 });
    const dump = await saveStream(repo, Readable.from([bytes(450)]));
    const globals = await saveStream(repo, Readable.from([Buffer.from('CREATE ROLE x;')]));
    const path = `databases/${dumpFileName('a/b', 'dump')}`;
    const manifest: DatabaseManifest = {
      v: 1,
      kind: 'postgres',
      dumpTool: 'pg_dump (PostgreSQL) 15.20',
      dumps: [
        { database: 'a/b', path, format: 'pg-custom', size: dump.size, sha256: dump.sha256, properties: {} },
      ],
      globals: { path: 'globals.sql', size: globals.size, sha256: globals.sha256 },
      fingerprint,
    };
    const { tree, stats } = await buildDatabaseTree(repo, {
      manifest,
      files: new Map([
        [path, dump],
        ['globals.sql', globals],
      ]),
      now: Date.UTC(2024, 0, 2),
    });
    expect(stats).toMatchObject({ files: 3, dirs: 2 });
    // The dump, globals.sql and the manifest.
    expect(stats.bytes).toBeGreaterThan(450 + 14 + 100);
    const loaded = await loadDatabaseTree(repo, tree, 'postgres');
    expect(loaded.manifest).toEqual(manifest);
    const node = loaded.files.get(path);
    expect(node).toMatchObject({
      name: 'a%2Fb.dump',
      type: 'file',
      size: 450,
      sha256: dump.sha256,
      mtimeNs: '1704153600000000000',
    });
    expect(loaded.files.get('globals.sql')?.content).toEqual(globals.content);
  });

  it('rejects a tree of another kind or without a manifest', async () => {
    const repo = new FakeRepo();
    const manifest: DatabaseManifest = { v: 1, kind: 'mysql', dumpTool: 'x', dumps: [], fingerprint };
    const { tree } = await buildDatabaseTree(repo, { manifest, files: new Map(), now: 0 });
    await expect(loadDatabaseTree(repo, tree, 'postgres')).rejects.toThrow(
      /does not describe a postgres backup/,
    );
    const empty = await repo.saveTree({ nodes: [] });
    await expect(loadDatabaseTree(repo, empty, 'mysql')).rejects.toThrow(IntegrityError);
  });
});
