import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../../../src/platform/logger.js';
import { FileCache, type FileIdentity } from '../../../../src/sources/files/cache.js';

const id = (n: number): FileIdentity => ({
  size: 10n,
  mtimeNs: 1_700_000_000_123_456_789n,
  ctimeNs: 5n,
  ino: BigInt(n),
});
const sha = 'ab'.repeat(32);
const blob = 'cd'.repeat(32);

describe('FileCache', () => {
  let dir: string;
  let path: string;
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (m) => void warnings.push(m) };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-cache-'));
    path = join(dir, 'state', 'job.cache');
    warnings.length = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips entries and matches only identical identities', async () => {
    const c = await FileCache.load(path, 'repo1', logger);
    expect(c.size).toBe(0);
    c.record('/a', id(1), { content: [blob, { zero: 4096 }], sha256: sha });
    c.record('/b', id(2), { content: [], sha256: sha });
    await c.save();
    const again = await FileCache.load(path, 'repo1', logger);
    expect(again.size).toBe(2);
    expect(again.lookup('/a', id(1))).toEqual({ content: [blob, { zero: 4096 }], sha256: sha });
    expect(again.lookup('/b', { ...id(2), ctimeNs: 6n })).toBeUndefined();
    expect(again.lookup('/missing', id(3))).toBeUndefined();
    expect(again.hits).toBe(1);
    expect(warnings).toEqual([]);
  });

  it('only keeps what the last run recorded', async () => {
    const c = await FileCache.load(path, 'repo1', logger);
    c.record('/a', id(1), { content: [blob], sha256: sha });
    await c.save();
    const second = await FileCache.load(path, 'repo1', logger);
    second.record('/b', id(2), { content: [blob], sha256: sha });
    await second.save();
    const third = await FileCache.load(path, 'repo1', logger);
    expect(third.lookup('/a', id(1))).toBeUndefined();
    expect(third.lookup('/b', id(2))).toBeDefined();
  });

  it('ignores a cache written for another repository', async () => {
    const c = await FileCache.load(path, 'repo1', logger);
    c.record('/a', id(1), { content: [blob], sha256: sha });
    await c.save();
    const other = await FileCache.load(path, 'repo2', logger);
    expect(other.size).toBe(0);
    expect(warnings.join()).toMatch(/another repository/);
  });

  it.each([
    ['a flipped byte', (t: string) => t.replace('"/a"', '"/b"')],
    ['a truncated file', (t: string) => t.slice(0, t.length / 2)],
    ['garbage', () => '\u0000\u0001 not a cache'],
    ['an empty file', () => ''],
  ])('treats %s as an empty cache', async (_what, damage) => {
    const c = await FileCache.load(path, 'repo1', logger);
    c.record('/a', id(1), { content: [blob], sha256: sha });
    await c.save();
    await writeFile(path, damage(await readFile(path, 'utf8')));
    const loaded = await FileCache.load(path, 'repo1', logger);
    expect(loaded.size).toBe(0);
    expect(loaded.lookup('/a', id(1))).toBeUndefined();
    expect(warnings.length).toBe(1);
  });

  it('a missing cache is silent', async () => {
    const c = await FileCache.load(path, 'repo1', logger);
    expect(c.size).toBe(0);
    expect(warnings).toEqual([]);
  });
});
