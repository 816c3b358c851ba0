import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadAccounts, parseIdFile } from '../../../../src/sources/files/accounts.js';

describe('accounts', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('parses passwd-style lines, first entry wins, junk ignored', () => {
    const { byId, byName } = parseIdFile(
      'root:x:0:0::/root:/bin/sh\n# c\nbad\nwww:x:33:33\nalias:x:33:33\nneg:x:-1:0\n',
    );
    expect(byId.get(0)).toBe('root');
    expect(byId.get(33)).toBe('www');
    expect(byName.get('alias')).toBe(33);
    expect(byName.has('neg')).toBe(false);
  });

  it('loads both databases and tolerates missing files', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-accounts-'));
    await writeFile(join(dir, 'passwd'), 'alice:x:1000:1000::/home/alice:/bin/sh\n');
    await writeFile(join(dir, 'group'), 'staff:x:50:\n');
    const a = await loadAccounts(join(dir, 'passwd'), join(dir, 'group'));
    expect(a.userName(1000)).toBe('alice');
    expect(a.uidOf('alice')).toBe(1000);
    expect(a.groupName(50)).toBe('staff');
    expect(a.gidOf('nobody-here')).toBeUndefined();
    const none = await loadAccounts(join(dir, 'missing'), join(dir, 'missing2'));
    expect(none.userName(0)).toBeUndefined();
  });
});
