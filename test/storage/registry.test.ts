import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { LifeboatError } from '../../src/errors.js';
import { UsageError } from '../../src/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import {
  forgetMemoryStorage,
  openStorage,
  registerStorageScheme,
  supportedStorageSchemes,
} from '../../src/storage/registry.js';
import { listKeys } from './contract.js';

const tempDirs: string[] = [];
afterEach(async () => {
  forgetMemoryStorage();
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-registry-'));
  tempDirs.push(dir);
  return dir;
}

describe('openStorage', () => {
  it('opens file:// URLs and bare absolute paths as LocalStorage without creating anything', async () => {
    const root = join(await tempDir(), 'repo');
    const byUrl = await openStorage(pathToFileURL(root).href);
    const byPath = await openStorage(root);
    expect(byUrl).toBeInstanceOf(LocalStorage);
    expect((byPath as LocalStorage).root).toBe(root);
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('creates the root only when asked', async () => {
    const root = join(await tempDir(), 'new', 'repo');
    const storage = await openStorage(`file://${root}`, { create: true });
    expect((await stat(root)).isDirectory()).toBe(true);
    await storage.put('config', Buffer.from('c'));
    expect(await listKeys(await openStorage(root), '')).toEqual(['config']);
  });

  it('shares one memory store per name', async () => {
    const a = await openStorage('memory://demo');
    await a.put('k', Buffer.from('v'));
    const again = await openStorage('memory://demo');
    const other = await openStorage('memory://other');
    expect(again).toBe(a);
    expect(again).toBeInstanceOf(MemoryStorage);
    expect(await listKeys(again, '')).toEqual(['k']);
    expect(await listKeys(other, '')).toEqual([]);
    forgetMemoryStorage('memory://demo');
    expect(await listKeys(await openStorage('memory://demo'), '')).toEqual([]);
  });

  it('refuses credentials in an s3:// URL, with them redacted', async () => {
    const err = await openStorage('s3://AKIAEXAMPLE:sup3rsecret@bucket/prefix').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as LifeboatError).message).toMatch(/credentials do not belong in the repository URL/);
    expect((err as LifeboatError).message).not.toContain('sup3rsecret');
    expect((err as LifeboatError).exitCode).toBe(2);
  });

  it.each(['ftp://user:hunter22@host/x', 'relative/repo', 'C:repo', ''])(
    'rejects %j with a UsageError listing the supported schemes',
    async (url) => {
      const err = await openStorage(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).hint).toMatch(/file:\/\/\/.*memory:\/\/.*s3:\/\//);
      expect((err as UsageError).message).not.toContain('hunter22');
    },
  );

  it('rejects file URLs with a host', async () => {
    await expect(openStorage('file://server/share')).rejects.toBeInstanceOf(UsageError);
  });

  it('accepts new schemes through registerStorageScheme', async () => {
    const seen: string[] = [];
    registerStorageScheme('unit-test', async (url, opts) => {
      seen.push(`${url} ${String(opts.create)}`);
      return new MemoryStorage(url);
    });
    expect(supportedStorageSchemes()).toContain('unit-test');
    const storage = await openStorage('unit-test://x', { create: true });
    expect(storage.url).toBe('unit-test://x');
    expect(seen).toEqual(['unit-test://x true']);
  });
});
