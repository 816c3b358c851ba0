/**
 * Key slots (docs/repository-format.md §4): the master key wrapped with
 * AES-256-GCM under a key derived from a password with scrypt. Several slots
 * may exist; each opens the same repository.
 */
import { randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { AccessDeniedError, IntegrityError, UsageError } from '../errors.js';
import type { Clock } from '../platform/clock.js';
import type { Storage } from '../storage/types.js';
import {
  decodeMasterKey,
  encodeMasterKey,
  MASTER_KEY_ENCODED_LENGTH,
  randomHex,
  SEAL_OVERHEAD,
  seal,
  unseal,
  type MasterKey,
} from './crypto.js';
import { UnsupportedFormatError } from './errors.js';
import { keyFileKey, KEYS_PREFIX, parseKeyFileKey } from './layout.js';
import { listKeys as listStorageKeys, readObject } from './storageIo.js';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/**
 * About 0.1 s and 32 MiB per derivation on a current x86 core: the usual
 * interactive-login strength (restic's memory budget is similar). Every command
 * opens a repository, so a larger N costs every cron tick and every restore.
 * Key files store their parameters, so stronger slots remain readable.
 */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

const KEY_FILE_VERSION = 1;
const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024;

/** The JSON stored in `keys/<id>`. */
export interface KeyFile {
  format: 'lifeboat-key';
  version: 1;
  id: string;
  repository: string;
  host: string;
  user: string;
  createdAt: string;
  kdf: { algorithm: 'scrypt'; N: number; r: number; p: number; salt: string };
  /** base64 of nonce ‖ ciphertext ‖ tag. */
  masterKey: string;
}

/** What `key list` shows. */
export interface KeyInfo {
  id: string;
  host: string;
  user: string;
  createdAt: string;
  /** True for the key slot this session was opened with. */
  current: boolean;
}

/** A key file that could not be read, by name, and why. */
export interface DamagedKeyFile {
  key: string;
  reason: string;
}

const scryptMemory = (p: ScryptParams) => 128 * p.N * p.r * p.p;

function checkScryptParams(p: ScryptParams): string | undefined {
  const pow2 = Number.isInteger(p.N) && p.N >= 2 && (p.N & (p.N - 1)) === 0;
  if (!pow2 || p.N > 2 ** 22) return `scrypt N=${p.N} is not a power of two up to 2^22`;
  if (!Number.isInteger(p.r) || p.r < 1 || p.r > 32) return `scrypt r=${p.r} is outside 1..32`;
  if (!Number.isInteger(p.p) || p.p < 1 || p.p > 16) return `scrypt p=${p.p} is outside 1..16`;
  if (scryptMemory(p) > MAX_SCRYPT_MEMORY) return 'scrypt parameters ask for more than 1 GiB of memory';
  return undefined;
}

/** Derive the 32-byte wrapping key from a password (async: runs on the libuv pool). */
export function deriveWrappingKey(password: string, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
  const problem = checkScryptParams(params);
  if (problem) return Promise.reject(new RangeError(problem));
  return new Promise((resolve, reject) => {
    scryptCallback(
      Buffer.from(password.normalize('NFC'), 'utf8'),
      salt,
      32,
      { N: params.N, r: params.r, p: params.p, maxmem: scryptMemory(params) + 32 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

/** Associated data binding every plain field of the key file to the wrapped key. */
function keyFileAssociatedData(f: Omit<KeyFile, 'masterKey'>): string {
  const { id, repository, host, user, createdAt, kdf } = f;
  return (
    'lifeboat:key:v1\n' +
    JSON.stringify([id, repository, host, user, createdAt, 'scrypt', kdf.N, kdf.r, kdf.p, kdf.salt])
  );
}

export interface NewKeyFileOptions {
  repositoryId: string;
  host: string;
  user: string;
  createdAt: string;
  kdf?: ScryptParams;
}

/** Reject passwords that cannot protect anything. */
export function checkNewPassword(password: string): void {
  if (password.length === 0) {
    throw new UsageError('the repository password must not be empty', {
      hint: 'Set a password (or env:/file:/command: reference) for the repository.',
    });
  }
}

/** Wrap `master` under `password` into a new key file (not yet stored). */
export async function createKeyFile(
  master: MasterKey,
  password: string,
  opts: NewKeyFileOptions,
): Promise<KeyFile> {
  checkNewPassword(password);
  const params = opts.kdf ?? DEFAULT_SCRYPT_PARAMS;
  const salt = randomBytes(32);
  const plain: Omit<KeyFile, 'masterKey'> = {
    format: 'lifeboat-key',
    version: KEY_FILE_VERSION,
    id: randomHex(16),
    repository: opts.repositoryId,
    host: opts.host,
    user: opts.user,
    createdAt: opts.createdAt,
    kdf: { algorithm: 'scrypt', N: params.N, r: params.r, p: params.p, salt: salt.toString('base64') },
  };
  const wrappingKey = await deriveWrappingKey(password, salt, params);
  const wrapped = seal(wrappingKey, encodeMasterKey(master), keyFileAssociatedData(plain));
  return { ...plain, masterKey: wrapped.toString('base64') };
}

/** Store a key file under `keys/<id>` (never overwriting). */
export async function writeKeyFile(storage: Storage, file: KeyFile): Promise<void> {
  await storage.put(keyFileKey(file.id), Buffer.from(JSON.stringify(file, null, 2) + '\n', 'utf8'), {
    ifNoneMatch: true,
  });
}

/** Parse and validate a key file; throws IntegrityError naming the object when it is not one. */
export function parseKeyFile(bytes: Uint8Array, storageKey: string, url: string): KeyFile {
  const damaged = (reason: string) =>
    new IntegrityError(`key file ${storageKey} in ${url} is damaged: ${reason}`, {
      hint: 'Remove or replace this key file (from a copy of the repository); other key files still work.',
      details: { key: storageKey },
    });
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw damaged('it is not valid JSON (truncated or not a lifeboat key file)');
  }
  if (typeof raw !== 'object' || raw === null) throw damaged('it is not a JSON object');
  const f = raw as Record<string, unknown>;
  if (f.format !== 'lifeboat-key')
    throw damaged('it is not a lifeboat key file (format field missing or wrong)');
  if (typeof f.version === 'number' && f.version > KEY_FILE_VERSION) {
    throw new UnsupportedFormatError(
      `key file ${storageKey} in ${url} has version ${f.version}; this lifeboat reads version ${KEY_FILE_VERSION}`,
    );
  }
  if (f.version !== KEY_FILE_VERSION) throw damaged('its version field is missing or invalid');
  for (const field of ['id', 'repository', 'host', 'user', 'createdAt', 'masterKey'] as const) {
    if (typeof f[field] !== 'string') throw damaged(`field "${field}" is missing`);
  }
  if (parseKeyFileKey(storageKey) !== f.id) throw damaged('its id does not match its name');
  const kdf = f.kdf as Record<string, unknown> | undefined;
  if (
    typeof kdf !== 'object' ||
    kdf === null ||
    kdf.algorithm !== 'scrypt' ||
    typeof kdf.N !== 'number' ||
    typeof kdf.r !== 'number' ||
    typeof kdf.p !== 'number' ||
    typeof kdf.salt !== 'string'
  ) {
    throw damaged('its kdf section is missing or not scrypt');
  }
  const problem = checkScryptParams({ N: kdf.N, r: kdf.r, p: kdf.p });
  if (problem) throw damaged(problem);
  if (Buffer.from(kdf.salt, 'base64').length < 16) throw damaged('its salt is too short');
  if (Buffer.from(f.masterKey as string, 'base64').length !== MASTER_KEY_ENCODED_LENGTH + SEAL_OVERHEAD) {
    throw damaged('its wrapped master key has the wrong length');
  }
  return raw as KeyFile;
}

/** The master key if `password` opens this key file, else undefined. */
export async function unwrapKeyFile(file: KeyFile, password: string): Promise<MasterKey | undefined> {
  const key = await deriveWrappingKey(password, Buffer.from(file.kdf.salt, 'base64'), file.kdf);
  const plain = unseal(key, Buffer.from(file.masterKey, 'base64'), keyFileAssociatedData(file));
  return plain ? decodeMasterKey(plain) : undefined;
}

/** Every key file of the repository `repositoryId`, with the damaged ones separately. */
export async function readKeyFiles(
  storage: Storage,
  repositoryId: string,
): Promise<{ files: KeyFile[]; damaged: DamagedKeyFile[] }> {
  const files: KeyFile[] = [];
  const damaged: DamagedKeyFile[] = [];
  for (const { key } of await listStorageKeys(storage, KEYS_PREFIX)) {
    if (!parseKeyFileKey(key)) continue;
    try {
      const file = parseKeyFile(await readObject(storage, key), key, storage.url);
      // Leftovers of an interrupted init for another repository id are not ours.
      if (file.repository === repositoryId) files.push(file);
    } catch (err) {
      if (err instanceof IntegrityError) damaged.push({ key, reason: err.message });
      else throw err;
    }
  }
  files.sort((a, b) =>
    a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id.localeCompare(b.id),
  );
  return { files, damaged };
}

/** Find the key slot that `password` opens; AccessDeniedError when none does. */
export async function unlockMasterKey(
  storage: Storage,
  repositoryId: string,
  password: string,
  preferKeyId?: string,
): Promise<{ master: MasterKey; keyId: string }> {
  const { files, damaged } = await readKeyFiles(storage, repositoryId);
  if (files.length === 0) {
    if (damaged.length > 0)
      throw new IntegrityError(damaged.map((d) => d.reason).join('; '), { details: { damaged } });
    throw new IntegrityError(`repository ${storage.url} has no key files (keys/ is empty)`, {
      hint: 'Without a key file the repository cannot be opened; restore keys/ from a copy of the repository.',
    });
  }
  if (preferKeyId) files.sort((a, b) => Number(b.id === preferKeyId) - Number(a.id === preferKeyId));
  for (const file of files) {
    const master = await unwrapKeyFile(file, password);
    if (master) return { master, keyId: file.id };
  }
  const damagedNote =
    damaged.length > 0 ? ` Damaged key files were skipped: ${damaged.map((d) => d.key).join(', ')}.` : '';
  throw new AccessDeniedError(`wrong password for repository ${storage.url}`, {
    hint:
      `Check the repository password (or the env:/file:/command: reference it comes from); ` +
      `all ${files.length} key slot(s) were tried.${damagedNote}`,
    details: { keySlots: files.length, damaged: damaged.map((d) => d.key) },
  });
}

export interface KeySlotContext {
  storage: Storage;
  master: MasterKey;
  repositoryId: string;
  /** The key slot in use (never removed). */
  currentKeyId: string;
  clock: Clock;
}

/** Add a key slot for `password`; returns its listing. */
export async function addKey(
  ctx: KeySlotContext,
  password: string,
  opts: { host: string; user: string; kdf?: ScryptParams },
): Promise<KeyInfo> {
  const file = await createKeyFile(ctx.master, password, {
    repositoryId: ctx.repositoryId,
    host: opts.host,
    user: opts.user,
    createdAt: new Date(ctx.clock.now()).toISOString(),
    ...(opts.kdf ? { kdf: opts.kdf } : {}),
  });
  await writeKeyFile(ctx.storage, file);
  return { id: file.id, host: file.host, user: file.user, createdAt: file.createdAt, current: false };
}

/** List the key slots (damaged ones separately). */
export async function listKeys(ctx: KeySlotContext): Promise<{ keys: KeyInfo[]; damaged: DamagedKeyFile[] }> {
  const { files, damaged } = await readKeyFiles(ctx.storage, ctx.repositoryId);
  const keys = files.map((f) => ({
    id: f.id,
    host: f.host,
    user: f.user,
    createdAt: f.createdAt,
    current: f.id === ctx.currentKeyId,
  }));
  return { keys, damaged };
}

/** Remove a key slot by ID or unique prefix; never the last one or the one in use. */
export async function removeKey(ctx: KeySlotContext, idOrPrefix: string): Promise<KeyInfo> {
  const { keys } = await listKeys(ctx);
  const matches = keys.filter((k) => k.id.startsWith(idOrPrefix));
  if (idOrPrefix.length < 4 || matches.length === 0) {
    throw new UsageError(`no key slot ${idOrPrefix} in repository ${ctx.storage.url}`, {
      hint: 'Run `lifeboat key list` to see the key IDs (a prefix of at least 4 characters is enough).',
    });
  }
  if (matches.length > 1) {
    throw new UsageError(`key ID prefix ${idOrPrefix} is ambiguous (${matches.length} key slots match)`, {
      hint: 'Give more characters of the key ID.',
    });
  }
  const target = matches[0]!;
  if (target.current) {
    throw new UsageError(`key slot ${target.id} is the one this session was opened with`, {
      hint: 'Open the repository with another password to remove this key slot.',
    });
  }
  if (keys.length <= 1) {
    throw new UsageError(`key slot ${target.id} is the last one of repository ${ctx.storage.url}`, {
      hint: 'Add another key first (`lifeboat key add`); without a key slot the repository is lost.',
    });
  }
  await ctx.storage.delete(keyFileKey(target.id));
  return target;
}
