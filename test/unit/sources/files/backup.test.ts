import { appendFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/platform/clock.js';
import { silentLogger } from '../../../../src/platform/logger.js';
import type { Tree } from '../../../../src/repository/tree.js';
import {
  backupFiles,
  FileCache,
  SourcePathError,
  type FilesSpec,
} from '../../../../src/sources/files/index.js';
import { FakeRepo } from '../../../helpers/fakeRepo.js';
import { initRepository } from '../../../../src/repository/repository.js';
import { MemoryStorage } from '../../../../src/storage/memory.js';
import { testOptions } from '../../repository/helpers.js';

const spec = (paths: string[], more: Partial<FilesSpec> = {}): FilesSpec => ({
  paths,
  include: [],
  exclude: [],
  oneFileSystem: false,
  xattrs: false,
  ...more,
});
const later = new FakeClock(Date.parse('2100-01-01T00:00:00Z'));

/** Run `fn` with the effective uid of `nobody`, so permission bits apply even when tests run as root. */
async function asUnprivileged<T>(fn: () => Promise<T>): Promise<T> {
  if (process.getuid?.() !== 0 || !process.seteuid) return fn();
  process.seteuid(65534);
  try {
    return await fn();
  } finally {
    process.seteuid(0);
  }
}

describe('backupFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-backup-'));
  });
  afterEach(async () => {
    await chmod(dir, 0o700).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  it('fails clearly for a missing source path before writing anything', async () => {
    await writeFile(join(dir, 'present'), 'x');
    const repo = new FakeRepo();
    const err = await backupFiles(repo, spec([join(dir, 'present'), join(dir, 'missing')]), {
      logger: silentLogger,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourcePathError);
    expect((err as Error).message).toContain(`${join(dir, 'missing')} does not exist`);
    expect((err as SourcePathError).hint).toBeTruthy();
    expect(repo.saveCalls).toBe(0);
  });

  it('fails before writing when xattrs are enabled but the attr tools are missing', async () => {
    await writeFile(join(dir, 'f'), 'x');
    const repo = new FakeRepo();
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'no-such-bin');
    try {
      await expect(
        backupFiles(repo, spec([dir], { xattrs: true }), { logger: silentLogger }),
      ).rejects.toMatchObject({ code: 'E_XATTR_TOOLS', hint: expect.stringMatching(/attr package/) });
    } finally {
      process.env.PATH = path;
    }
    expect(repo.saveCalls).toBe(0);
  });

  it('rejects relative paths', async () => {
    await expect(
      backupFiles(new FakeRepo(), spec(['relative/path']), { logger: silentLogger }),
    ).rejects.toThrow(/not absolute/);
  });

  it('keeps several saveBlob calls in flight', async () => {
    for (let i = 0; i < 6; i++) await writeFile(join(dir, `f${i}`), randomBytes(300 * 1024));
    const repo = new FakeRepo({ chunkSize: 64 * 1024, saveDelayMs: 5 });
    const result = await backupFiles(repo, spec([dir]), { logger: silentLogger });
    expect(result.stats.files).toBe(6);
    expect(repo.maxInFlight).toBeGreaterThan(1);
  });

  it('marks the snapshot partial for unreadable files and directories, keeping the rest', async () => {
    await chmod(dir, 0o755);
    const src = join(dir, 'src');
    await mkdir(join(src, 'locked-dir'), { recursive: true });
    await writeFile(join(src, 'locked-dir', 'inside'), 'x');
    await writeFile(join(src, 'secret'), 'nope');
    await writeFile(join(src, 'fine'), 'yes');
    await chmod(join(src, 'secret'), 0o000);
    await chmod(join(src, 'locked-dir'), 0o000);
    await chmod(src, 0o755);
    const repo = new FakeRepo();
    // As root, mode 000 does not stop reads: drop to an unprivileged effective uid for the backup.
    const result = await asUnprivileged(() => backupFiles(repo, spec([src]), { logger: silentLogger }));
    expect(result.partial).toBe(true);
    expect(result.warnings.some((w) => w.includes(join(src, 'secret')) && /EACCES/.test(w))).toBe(true);
    expect(result.warnings.some((w) => w.includes(join(src, 'locked-dir')) && /EACCES/.test(w))).toBe(true);
    expect(result.stats.files).toBe(1);
    const names = await treeNames(repo, result.tree, src);
    expect(names).toEqual(['fine', 'locked-dir']);
  });

  it('gives the same verdicts when the repository workers read the small files', async () => {
    await chmod(dir, 0o755);
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(src, 'secret'), 'nope');
    await writeFile(join(src, 'fine'), 'yes');
    for (let i = 0; i < 100; i++) await writeFile(join(src, 'sub', `n${i}`), `file ${i % 10}\n`);
    await writeFile(join(src, 'sub', 'deeper', 'big'), randomBytes(300 * 1024));
    await chmod(join(src, 'secret'), 0o000);
    await chmod(join(src, 'sub'), 0o755);
    await chmod(src, 0o755);
    const repo = await initRepository(new MemoryStorage(), 'pw', testOptions({ compressionWorkers: 2 }));
    try {
      expect(repo.smallFileStore(0)).toBeDefined();
      const result = await asUnprivileged(() => backupFiles(repo, spec([src]), { logger: silentLogger }));
      expect(result.partial).toBe(true);
      expect(result.warnings).toHaveLength(1);
      expect(result.warnings[0]).toMatch(/cannot open .*secret.*EACCES/);
      expect(result.stats.files).toBe(102);
      // 10 distinct small contents, 'fine', and the big file's chunk.
      expect(result.stats.newBlobs).toBe(12);
    } finally {
      await repo.close();
    }
  });

  it('warns about a file that grows while being read and stores what was read', async () => {
    const path = join(dir, 'growing.log');
    await writeFile(path, 'first line\n');
    const repo = new FakeRepo();
    const result = await backupFiles(repo, spec([dir]), {
      logger: silentLogger,
      hooks: { afterRead: async (p) => (p === path ? appendFile(path, 'second line\n') : undefined) },
    });
    expect(result.partial).toBe(true);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain(`${path} changed while being read`);
    expect(result.stats.bytes).toBe('first line\n'.length);
  });

  it('skips sockets with a log warning, without making the snapshot partial', async () => {
    const sock = join(dir, 'app.sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      await writeFile(join(dir, 'data'), 'x');
      const logged: string[] = [];
      const result = await backupFiles(new FakeRepo(), spec([dir]), {
        logger: { ...silentLogger, warn: (m) => void logged.push(m) },
      });
      expect(result.partial).toBe(false);
      expect(result.stats.skippedSockets).toBe(1);
      expect(logged.join()).toMatch(/app\.sock is a socket/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('stores all-zero chunks as zero runs, not blobs', async () => {
    const fh = await import('node:fs/promises').then((m) => m.open(join(dir, 'holes'), 'w'));
    await fh.write(Buffer.from('head'), 0, 4, 0);
    await fh.truncate(10 * 64 * 1024);
    await fh.close();
    const repo = new FakeRepo({ chunkSize: 64 * 1024 });
    const result = await backupFiles(repo, spec([join(dir, 'holes')]), { logger: silentLogger });
    const node = await findNode(repo, result.tree, join(dir, 'holes'));
    expect(node?.content).toEqual([expect.any(String), { zero: 9 * 64 * 1024 }]);
    expect(result.stats.newBlobs).toBe(1);
  });

  it('reuses the cache: an unchanged second backup reads no file contents', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    await mkdir(join(dir, 'state'));
    for (let i = 0; i < 5; i++) await writeFile(join(src, `f${i}`), randomBytes(100_000 + i));
    const cachePath = join(dir, 'state', 'job.cache');
    const repo = new FakeRepo();
    {
      const reads: string[] = [];
      const hooks = { onRead: (p: string) => void reads.push(p) };
      const first = await backupFiles(repo, spec([src]), {
        logger: silentLogger,
        hooks,
        clock: later,
        cache: await FileCache.load(cachePath, repo.id, silentLogger),
      });
      expect(reads).toHaveLength(5);
      reads.length = 0;
      const second = await backupFiles(repo, spec([src]), {
        logger: silentLogger,
        hooks,
        clock: later,
        cache: await FileCache.load(cachePath, repo.id, silentLogger),
      });
      expect(reads).toEqual([]);
      expect(second.stats.cachedFiles).toBe(5);
      expect(second.tree).toBe(first.tree);

      // A changed file is read again; the others still come from the cache.
      await appendFile(join(src, 'f2'), 'more');
      const third = await backupFiles(repo, spec([src]), {
        logger: silentLogger,
        hooks,
        clock: later,
        cache: await FileCache.load(cachePath, repo.id, silentLogger),
      });
      expect(reads).toEqual([join(src, 'f2')]);
      expect(third.tree).not.toBe(first.tree);

      // A blob the repository no longer has is never trusted from the cache.
      reads.length = 0;
      const node = await findNode(repo, third.tree, join(src, 'f3'));
      repo.forget(node!.content![0] as string);
      await backupFiles(repo, spec([src]), {
        logger: silentLogger,
        hooks,
        clock: later,
        cache: await FileCache.load(cachePath, repo.id, silentLogger),
      });
      expect(reads).toEqual([join(src, 'f3')]);
    }
  });

  it('does not cache files modified within the last seconds', async () => {
    await writeFile(join(dir, 'fresh'), 'x');
    const cachePath = join(dir, 'job.cache');
    const repo = new FakeRepo();
    const reads: string[] = [];
    {
      for (let i = 0; i < 2; i++) {
        await backupFiles(repo, spec([join(dir, 'fresh')]), {
          logger: silentLogger,
          hooks: { onRead: (p) => void reads.push(p) },
          // "now" is the file's own modification time: a change in the same tick would be invisible.
          clock: { now: () => Date.now() },
          cache: await FileCache.load(cachePath, repo.id, silentLogger),
        });
      }
      expect(reads).toHaveLength(2);
    }
  });

  it('stops with an InterruptedError when aborted', async () => {
    for (let i = 0; i < 20; i++) await writeFile(join(dir, `f${i}`), randomBytes(1000));
    const controller = new AbortController();
    controller.abort();
    await expect(
      backupFiles(new FakeRepo(), spec([dir]), { logger: silentLogger, signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
  });
});

async function findNode(repo: FakeRepo, tree: string, abs: string) {
  const parts = abs.split('/').filter(Boolean);
  let nodes = (await repo.loadTree(tree)).nodes;
  for (const [i, part] of parts.entries()) {
    const node = nodes.find((n) => n.name === part);
    if (!node || i === parts.length - 1) return node;
    nodes = ((await repo.loadTree(node.subtree!)) as Tree).nodes;
  }
  return undefined;
}

async function treeNames(repo: FakeRepo, tree: string, abs: string): Promise<string[]> {
  const node = await findNode(repo, tree, abs);
  return (await repo.loadTree(node!.subtree!)).nodes.map((n) => n.name);
}
