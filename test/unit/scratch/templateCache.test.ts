import { afterEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyTemplateTo } from '../../../src/scratch/templateCache.js';

let dir: string;
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(parent: string, builds: string[]) {
  return {
    parent,
    key: 'engine-1.0-self',
    account: { name: 'me' },
    build: async (dataDir: string) => {
      builds.push(dataDir);
      await mkdir(dataDir);
      await writeFile(join(dataDir, 'PG_VERSION'), '15\n');
    },
  };
}

describe('server data directory templates', () => {
  it('builds the template once and copies it for every environment', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-template-'));
    const builds: string[] = [];
    expect(await copyTemplateTo(options(dir, builds), join(dir, 'a'))).toEqual({ built: true });
    expect(await copyTemplateTo(options(dir, builds), join(dir, 'b'))).toEqual({ built: false });
    expect(builds).toHaveLength(1);
    expect(builds[0]!.startsWith(join(dir, '.lifeboat-templates', '.build-'))).toBe(true);
    expect(await readFile(join(dir, 'b', 'PG_VERSION'), 'utf8')).toBe('15\n');
  });

  it('never uses a cache directory others can write to: builds in place instead', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-template-'));
    await mkdir(join(dir, '.lifeboat-templates'));
    await chmod(join(dir, '.lifeboat-templates'), 0o777);
    const builds: string[] = [];
    expect(await copyTemplateTo(options(dir, builds), join(dir, 'a'))).toEqual({ built: true });
    expect(builds).toEqual([join(dir, 'a')]);
  });
});
