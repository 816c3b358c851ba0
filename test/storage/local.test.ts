import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LifeboatError } from '../../src/errors.js';
import { AccessDeniedError, UsageError } from '../../src/errors.js';
import {
  StorageConflictError,
  StorageIoError,
  StorageNotFoundError,
  StorageUnsupportedError,
} from '../../src/storage/errors.js';
import { LocalStorage, localPathFromUrl } from '../../src/storage/local.js';
import { describeStorageContract, failingStream, listKeys } from './contract.js';

const tempDirs: string[] = [];

async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-local-'));
  tempDirs.push(dir);
  return dir;
}

async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) {
    await chmodTree(dir, 0o700).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** Make everything below `dir` writable again so it can be removed. */
async function chmodTree(dir: string, mode: number): Promise<void> {
  await chmod(dir, mode);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chmodTree(join(dir, entry.name), mode);
  }
}

/** Every file and directory below `dir`, relative, including temp files. */
async function allEntries(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    found.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  }
  return found.sort();
}

/**
 * Run `fn` without the privileges that bypass file modes. As root, the
 * effective uid becomes nobody for the duration (the real uid stays 0, so it
 * can be restored); as an ordinary user the modes already apply.
 */
async function unprivileged<T>(fn: () => Promise<T>): Promise<T> {
  const isRoot = process.getuid?.() === 0;
  if (isRoot) process.seteuid!(65534);
  try {
    return await fn();
  } finally {
    if (isRoot) process.seteuid!(0);
  }
}

describeStorageContract(
  'local',
  async () => LocalStorage.create(pathToFileURL(join(await makeTempDir(), 'repo')).href),
  removeTempDirs,
);

describe('LocalStorage specifics', () => {
  let base: string;
  let root: string;
  let storage: LocalStorage;

  beforeEach(async () => {
    base = await makeTempDir();
    root = join(base, 'repo');
    storage = await LocalStorage.create(root);
  });
  afterEach(removeTempDirs);

  it('stores each object as the file named by its key', async () => {
    await storage.put('data/ab/abcdef', Buffer.from('payload'));
    expect(await readFile(join(root, 'data', 'ab', 'abcdef'), 'utf8')).toBe('payload');
    expect(storage.pathFor('data/ab/abcdef')).toBe(join(root, 'data/ab/abcdef'));
    expect((await stat(join(root, 'data/ab/abcdef'))).mode & 0o777).toBe(0o600);
    expect(storage.url).toBe(pathToFileURL(root).href);
  });

  it('leaves no object and no temp file when the body fails halfway', async () => {
    await storage.put('packs/keep', Buffer.from('k'));
    await expect(storage.put('packs/broken', failingStream(1_000_000))).rejects.toThrow(
      'source failed halfway',
    );
    await expect(storage.put('new/dir/broken', failingStream(10))).rejects.toThrow('source failed halfway');
    const entries = await allEntries(root);
    expect(entries.filter((e) => e.includes('.tmp-'))).toEqual([]);
    expect(entries).not.toContain('packs/broken');
    expect(await listKeys(storage, '')).toEqual(['packs/keep']);
  });

  it('ignores temp files a killed writer left behind', async () => {
    await storage.put('data/00/obj', Buffer.from('x'));
    await writeFile(join(root, 'data/00/.obj2.tmp-0123456789ab'), 'half written');
    await writeFile(join(root, '.config.tmp-abcdefabcdef'), 'half written');
    expect(await listKeys(storage, '')).toEqual(['data/00/obj']);
    expect(await listKeys(storage, 'data/00/')).toEqual(['data/00/obj']);
  });

  it('writes stream bodies incrementally instead of buffering them', async () => {
    const chunk = 64 * 1024;
    let sizeSeenMidway = -1;
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 320; i++) {
        if (i === 160) {
          const dir = join(root, 'big');
          const temp = (await readdir(dir)).find((n) => n.includes('.tmp-'));
          sizeSeenMidway = temp ? (await stat(join(dir, temp))).size : 0;
        }
        yield randomBytes(chunk);
      }
    }
    await storage.put('big/stream', Readable.from(body(), { objectMode: false }));
    // Half of 20 MiB was produced; nearly all of it must already be on disk.
    expect(sizeSeenMidway).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    expect((await storage.stat('big/stream'))?.size).toBe(320 * chunk);
  });

  it('refuses a body whose length differs from the announced size', async () => {
    await expect(storage.put('s/short', Buffer.from('abc'), { size: 4 })).rejects.toBeInstanceOf(
      StorageIoError,
    );
    await expect(storage.put('s/short', Readable.from([Buffer.from('abcde')]), { size: 4 })).rejects.toThrow(
      /5 bytes but 4/,
    );
    expect(await allEntries(join(root, 's'))).toEqual([]);
  });

  it('reports a missing root as not found and never creates it', async () => {
    const gone = new LocalStorage(join(base, 'unmounted'));
    await expect(gone.get('config')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await gone.stat('config')).toBeUndefined();
    expect(await listKeys(gone, '')).toEqual([]);
    await gone.delete('config');
    const err = await gone.put('data/00/x', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageNotFoundError);
    expect((err as LifeboatError).hint).toMatch(/does not exist.*mounted/);
    await expect(stat(join(base, 'unmounted'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('create() makes the root once and refuses a file in its place', async () => {
    const nested = join(base, 'a', 'b', 'repo');
    const created = await LocalStorage.create(pathToFileURL(nested).href);
    expect((await stat(nested)).isDirectory()).toBe(true);
    await created.put('config', Buffer.from('c'));
    await LocalStorage.create(nested); // idempotent
    expect(await listKeys(created, '')).toEqual(['config']);
    await writeFile(join(base, 'plainfile'), 'x');
    await expect(LocalStorage.create(join(base, 'plainfile'))).rejects.toBeInstanceOf(UsageError);
  });

  it('ifNoneMatch keeps the existing object and leaves no temp file', async () => {
    await storage.put('locks/a', Buffer.from('mine'), { ifNoneMatch: true });
    await expect(storage.put('locks/a', Buffer.from('theirs'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    expect(await allEntries(join(root, 'locks'))).toEqual(['a']);
  });

  it('explains a key that collides with an existing object', async () => {
    await storage.put('a', Buffer.from('file'));
    const err = await storage.put('a/b', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageIoError);
    expect((err as Error).message).toMatch(/collide/);
    expect(await listKeys(storage, '')).toEqual(['a']);
  });

  it('does not follow symlinked directories when listing', async () => {
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'x');
    await storage.put('data/00/obj', Buffer.from('x'));
    await symlink(outside, join(root, 'data', 'link'));
    expect(await listKeys(storage, '')).toEqual(['data/00/obj']);
  });

  it('deletes the file but keeps fan-out directories', async () => {
    await storage.put('data/00/obj', Buffer.from('x'));
    await storage.delete('data/00/obj');
    expect(await allEntries(root)).toEqual(['data', 'data/00']);
    await storage.delete('data'); // a directory is not an object
    expect(await allEntries(root)).toEqual(['data', 'data/00']);
  });

  it('refuses Object Lock rather than silently ignoring it', async () => {
    await expect(storage.put('x', Buffer.from('x'), { retainUntil: new Date(0) })).rejects.toBeInstanceOf(
      StorageUnsupportedError,
    );
    expect(await listKeys(storage, '')).toEqual([]);
  });

  describe('permission denied', () => {
    it('turns EACCES into AccessDeniedError naming the path and hinting at permissions', async () => {
      await storage.put('data/00/readable', Buffer.from('x'));
      await storage.put('locked/obj', Buffer.from('y'));
      await chmod(join(root, 'data/00/readable'), 0o000);
      await chmod(join(root, 'locked'), 0o000);
      await chmod(join(root, 'data'), 0o555);
      await chmod(join(root, 'data/00'), 0o555);
      await chmod(base, 0o755); // let an unprivileged euid reach the root
      await chmod(root, 0o555);

      const errors = await unprivileged(async () => ({
        get: await storage.get('data/00/readable').catch((e: unknown) => e),
        put: await storage.put('data/00/new', Buffer.from('z')).catch((e: unknown) => e),
        putTop: await storage.put('newdir/obj', Buffer.from('z')).catch((e: unknown) => e),
        del: await storage.delete('data/00/readable').catch((e: unknown) => e),
        list: await listKeys(storage, 'locked/').catch((e: unknown) => e),
        stat: await storage.stat('locked/obj').catch((e: unknown) => e),
      }));

      for (const [op, err] of Object.entries(errors)) {
        expect(err, op).toBeInstanceOf(AccessDeniedError);
        expect((err as AccessDeniedError).message, op).toContain(root);
        expect((err as AccessDeniedError).hint, op).toMatch(/may read and write/);
        expect((err as AccessDeniedError).exitCode, op).toBe(12);
      }
      await chmodTree(root, 0o700);
      expect(await listKeys(storage, '')).toEqual(['data/00/readable', 'locked/obj']);
    });
  });
});

describe('localPathFromUrl', () => {
  it.each([
    ['/srv/backups/repo', '/srv/backups/repo'],
    ['file:///srv/backups/repo', '/srv/backups/repo'],
    ['file://localhost/srv/repo', '/srv/repo'],
    ['file:///srv/my%20repo', '/srv/my repo'],
  ])('%s -> %s', (url, path) => {
    expect(localPathFromUrl(url)).toBe(path);
  });

  it.each(['file://srv/backups', 'relative/path', 'http://example.com/x'])(
    'rejects %s with a UsageError',
    (url) => {
      expect(() => localPathFromUrl(url)).toThrow(UsageError);
    },
  );

  it('rejects a relative root', () => {
    expect(() => new LocalStorage('repo')).toThrow(UsageError);
  });
});
