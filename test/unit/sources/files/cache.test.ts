import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../../../src/platform/logger.js';
import { cacheName, DirRecord, FileCache, type FileIdentity } from '../../../../src/sources/files/cache.js';

const id = (n: number): FileIdentity => ({
  size: 10n,
  mtimeNs: 1_700_000_000_123_456_789n,
  ctimeNs: 5n,
  ino: BigInt(n),
});
const sha = 'ab'.repeat(32);
/** Digests of both kinds (contentDigest.ts): the whole content, and the data chunks of content with zero runs. */
const whole = { hex: sha, dataOnly: false };
const dataOnly = { hex: 'ef'.repeat(32), dataOnly: true };
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

  /** Save a cache of /top holding file `a` (identity 1) and `sub/b` (identity 2), as the walker would. */
  async function saveSample(repo = 'repo1'): Promise<void> {
    const c = await FileCache.load(path, repo, logger);
    const holder = new DirRecord();
    const top = new DirRecord();
    const sub = new DirRecord();
    c.record(sub, 'b', id(2), { content: [], digest: whole });
    await c.closeDir(sub, 'sub', top);
    c.record(top, 'a', id(1), { content: [blob, { zero: 4096 }], digest: dataOnly });
    await c.closeDir(top, 'top', holder);
    await c.closeTop('/top', holder);
    await c.save();
  }

  /** Look up /top/a and /top/sub/b in the cache at `path`. */
  async function lookBoth(c: FileCache, a = id(1), b = id(2)) {
    const top = await c.child(await c.top('/top'), 'top');
    const sub = await c.child(top, 'sub');
    return { a: c.lookup(top, 'a', a), b: c.lookup(sub, 'b', b) };
  }

  it('round-trips entries through the directory sections and matches only identical identities', async () => {
    await saveSample();
    const again = await FileCache.load(path, 'repo1', logger);
    const found = await lookBoth(again);
    expect(found.a).toEqual({ content: [blob, { zero: 4096 }], digest: dataOnly });
    expect(found.b).toEqual({ content: [], digest: whole });
    expect((await lookBoth(again, { ...id(1), ctimeNs: 6n }, { ...id(2), size: 11n })).a).toBeUndefined();
    const top = await again.child(await again.top('/top'), 'top');
    expect(again.lookup(top, 'missing', id(3))).toBeUndefined();
    expect(again.lookup(await again.child(top, 'nosuchdir'), 'b', id(2))).toBeUndefined();
    expect(again.lookup(await again.top('/other'), 'a', id(1))).toBeUndefined();
    expect(again.hits).toBe(2);
    await again.close();
    expect(warnings).toEqual([]);
    // Only the cache file itself is left: no temp files.
    expect(await readdir(join(dir, 'state'))).toEqual(['job.cache']);
  });

  it('only keeps what the last run recorded', async () => {
    await saveSample();
    const second = await FileCache.load(path, 'repo1', logger);
    const holder = new DirRecord();
    second.record(holder, 'x', id(9), { content: [blob], digest: whole });
    await second.closeTop('/x', holder);
    await second.save();
    const third = await FileCache.load(path, 'repo1', logger);
    expect((await lookBoth(third)).a).toBeUndefined();
    expect(third.lookup(await third.top('/x'), 'x', id(9))).toBeDefined();
    await third.close();
  });

  it('a run that is not saved leaves the previous cache and no temp file', async () => {
    await saveSample();
    const failed = await FileCache.load(path, 'repo1', logger);
    const holder = new DirRecord();
    for (let i = 0; i < 5000; i++) failed.record(holder, `f${i}`, id(i), { content: [blob], digest: whole });
    await failed.closeTop('/many', holder); // large enough to be written to the temp file
    await failed.close();
    expect(await readdir(join(dir, 'state'))).toEqual(['job.cache']);
    const next = await FileCache.load(path, 'repo1', logger);
    expect((await lookBoth(next)).a).toBeDefined();
    await next.close();
  });

  it('reads a cache of version 2 (digests of the whole content only) and ignores an unknown version', async () => {
    await saveSample();
    const v3 = await readFile(path, 'utf8');
    expect(v3).toContain('"data:' + dataOnly.hex + '"');
    await writeFile(path, v3.replace('"v":3', '"v":2'));
    const v2 = await FileCache.load(path, 'repo1', logger);
    expect((await lookBoth(v2)).b).toEqual({ content: [], digest: whole });
    await v2.close();
    await writeFile(path, v3.replace('"v":3', '"v":4'));
    const v4 = await FileCache.load(path, 'repo1', logger);
    expect((await lookBoth(v4)).a).toBeUndefined();
    await v4.close();
    expect(warnings).toHaveLength(1);
  });

  it('ignores a cache written for another repository', async () => {
    await saveSample('repo1');
    const other = await FileCache.load(path, 'repo2', logger);
    expect((await lookBoth(other)).a).toBeUndefined();
    expect(warnings.join()).toMatch(/another repository/);
  });

  it('a damaged section costs only the files below it', async () => {
    await saveSample();
    // The first line is the section of sub/ (written first): damage its file entry.
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"b"', '"c"'));
    const loaded = await FileCache.load(path, 'repo1', logger);
    const found = await lookBoth(loaded);
    expect(found.b).toBeUndefined();
    expect(found.a).toBeDefined();
    await loaded.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/damaged/);
  });

  it.each([
    ['a flipped byte in the trailer', (t: string) => t.replace('"repo1"', '"repo!"')],
    ['a truncated file', (t: string) => t.slice(0, t.length / 2)],
    ['a cache of the previous format', () => '["/a","10","1","5","1","' + sha + '",[]]\n{"sha256":"00"}\n'],
    ['garbage', () => '\u0000\u0001 not a cache'],
    ['an empty file', () => ''],
  ])('treats %s as an empty cache', async (_what, damage) => {
    await saveSample();
    await writeFile(path, damage(await readFile(path, 'utf8')));
    const loaded = await FileCache.load(path, 'repo1', logger);
    expect((await lookBoth(loaded)).a).toBeUndefined();
    await loaded.close();
    expect(warnings.length).toBe(1);
  });

  it('a missing cache is silent', async () => {
    const c = await FileCache.load(path, 'repo1', logger);
    expect(c.lookup(await c.top('/top'), 'a', id(1))).toBeUndefined();
    await c.close();
    expect(warnings).toEqual([]);
  });

  it('keys names that are not UTF-8 apart from every UTF-8 name', () => {
    const raw = Buffer.from([0x66, 0xff]);
    expect(cacheName(raw, undefined)).toBe(`\0${raw.toString('base64')}`);
    expect(cacheName(Buffer.from('f'), 'f')).toBe('f');
  });
});
