import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../src/platform/atomicWrite.js';

let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes the whole content with the requested mode and leaves no temp file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-atomic-'));
    const path = join(dir, 'sub', 'file.yaml');
    await writeFileAtomic(path, 'hello', { mode: 0o600 });
    expect(await readFile(path, 'utf8')).toBe('hello');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'sub'))).toEqual(['file.yaml']);
  });

  it('replaces existing content, or refuses with exclusive', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-atomic-'));
    const path = join(dir, 'f');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    await expect(writeFileAtomic(path, 'newer', { exclusive: true })).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['f']);
  });
});
