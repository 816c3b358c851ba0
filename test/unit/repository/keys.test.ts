import { afterEach, describe, expect, it } from 'vitest';
import { AccessDeniedError, ExitCode, IntegrityError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { DEFAULT_SCRYPT_PARAMS, deriveWrappingKey } from '../../../src/repository/keys.js';
import { initRepository, openRepository, type Repository } from '../../../src/repository/repository.js';
import { testOptions } from './helpers.js';

const open: Repository[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

async function setup() {
  const storage = new MemoryStorage('memory://keys');
  const repo = await initRepository(storage, 'first password', testOptions());
  open.push(repo);
  return { storage, repo };
}

const keyObjects = async (storage: MemoryStorage) => {
  const keys: string[] = [];
  for await (const o of storage.list('keys/')) keys.push(o.key);
  return keys;
};

describe('passwords and key slots', () => {
  it('refuses a wrong password with AccessDeniedError (exit 12) and a hint', async () => {
    const { storage } = await setup();
    const err = await openRepository(storage, 'not the password', testOptions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessDeniedError);
    expect((err as AccessDeniedError).exitCode).toBe(ExitCode.accessDenied);
    expect((err as Error).message).toBe('wrong password for repository memory://keys');
    expect((err as AccessDeniedError).hint).toMatch(/password/);
    expect((err as AccessDeniedError).hint).not.toContain('not the password');
  });

  it('opens with any of several key slots; lists and removes them with the safety rules', async () => {
    const { storage, repo } = await setup();
    const added = await repo.addKey('second password', {
      host: 'laptop',
      user: 'ops',
      kdf: { N: 1024, r: 8, p: 1 },
    });
    const viaSecond = await openRepository(storage, 'second password', testOptions());
    open.push(viaSecond);
    expect(viaSecond.id).toBe(repo.id);
    expect(viaSecond.keyId).toBe(added.id);

    const { keys, damaged } = await viaSecond.listKeys();
    expect(damaged).toEqual([]);
    expect(keys.map((k) => [k.host, k.user, k.current]).sort()).toEqual([
      ['laptop', 'ops', true],
      ['test-host', 'tester', false],
    ]);
    // Not the one in use …
    await expect(viaSecond.removeKey(added.id)).rejects.toThrow(/opened with/);
    // … a prefix works for another one.
    await viaSecond.removeKey(repo.keyId.slice(0, 6));
    await expect(openRepository(storage, 'first password', testOptions())).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    expect(await keyObjects(storage)).toEqual([`keys/${added.id}`]);
    await expect(viaSecond.removeKey('ffff')).rejects.toThrow(/no key slot/);
  });

  it('refuses to remove the last key slot', async () => {
    const { repo, storage } = await setup();
    const other = await repo.addKey('other', { kdf: { N: 1024, r: 8, p: 1 } });
    // Simulate the current slot having vanished: only `other` is left.
    await storage.delete(`keys/${repo.keyId}`);
    await expect(repo.removeKey(other.id)).rejects.toThrow(/last one/);
  });

  it('names a truncated key file in an IntegrityError', async () => {
    const { storage, repo } = await setup();
    const key = `keys/${repo.keyId}`;
    const whole = storage.raw(key)!;
    await storage.put(key, whole.subarray(0, 40));
    const err = await openRepository(storage, 'first password', testOptions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(key);
    expect((err as Error).message).toMatch(/not valid JSON/);
  });

  it('names a foreign key file in an IntegrityError', async () => {
    const { storage, repo } = await setup();
    const key = `keys/${repo.keyId}`;
    await storage.put(key, Buffer.from(JSON.stringify({ format: 'restic', id: repo.keyId })));
    await expect(openRepository(storage, 'first password', testOptions())).rejects.toThrow(
      new RegExp(`key file ${key} .* is damaged: it is not a lifeboat key file`),
    );
  });

  it('still opens through a healthy slot when another key file is damaged, and lists the damage', async () => {
    const { storage, repo } = await setup();
    const second = await repo.addKey('second', { kdf: { N: 1024, r: 8, p: 1 } });
    await storage.put(`keys/${second.id}`, Buffer.from('{"format":"lifeboat-key"'));
    const again = await openRepository(storage, 'first password', testOptions());
    open.push(again);
    const { keys, damaged } = await again.listKeys();
    expect(keys).toHaveLength(1);
    expect(damaged.map((d) => d.key)).toEqual([`keys/${second.id}`]);
    // With a wrong password the error mentions the damaged file.
    const err = await openRepository(storage, 'wrong', testOptions()).catch((e: unknown) => e);
    expect((err as AccessDeniedError).hint).toContain(`keys/${second.id}`);
  });

  it('treats a modified host field in a key file like a wrong password (fields are authenticated)', async () => {
    const { storage, repo } = await setup();
    const key = `keys/${repo.keyId}`;
    const file = JSON.parse(storage.raw(key)!.toString());
    await storage.put(key, Buffer.from(JSON.stringify({ ...file, host: 'evil' })));
    await expect(openRepository(storage, 'first password', testOptions())).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
  });

  it('refuses key files asking for absurd scrypt memory', async () => {
    const { storage, repo } = await setup();
    const key = `keys/${repo.keyId}`;
    const file = JSON.parse(storage.raw(key)!.toString());
    await storage.put(key, Buffer.from(JSON.stringify({ ...file, kdf: { ...file.kdf, N: 2 ** 30 } })));
    await expect(openRepository(storage, 'first password', testOptions())).rejects.toThrow(/scrypt N/);
  });

  it('refuses an empty password', async () => {
    await expect(initRepository(new MemoryStorage(), '', testOptions())).rejects.toMatchObject({
      code: 'E_USAGE',
    });
  });

  it('uses scrypt parameters that cost real work by default, stored in the key file', async () => {
    expect(DEFAULT_SCRYPT_PARAMS.N * DEFAULT_SCRYPT_PARAMS.r * 128).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    const storage = new MemoryStorage();
    const repo = await initRepository(storage, 'pw', { ...testOptions(), kdf: undefined });
    open.push(repo);
    const file = JSON.parse(storage.raw(`keys/${repo.keyId}`)!.toString());
    expect(file.kdf).toMatchObject({ algorithm: 'scrypt', N: 2 ** 15, r: 8, p: 1 });
    expect(Buffer.from(file.kdf.salt, 'base64')).toHaveLength(32);
    const k1 = await deriveWrappingKey('pw', Buffer.alloc(16), { N: 1024, r: 8, p: 1 });
    const k2 = await deriveWrappingKey('pw\u0301'.normalize('NFD'), Buffer.alloc(16), {
      N: 1024,
      r: 8,
      p: 1,
    });
    const k3 = await deriveWrappingKey('pw\u0301'.normalize('NFC'), Buffer.alloc(16), {
      N: 1024,
      r: 8,
      p: 1,
    });
    expect(k1).toHaveLength(32);
    expect(k2.equals(k3)).toBe(true);
  });
});
