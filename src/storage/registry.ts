import { UsageError } from '../errors.js';
import { redact } from '../platform/redact.js';
import { LocalStorage } from './local.js';
import { MemoryStorage } from './memory.js';
import type { S3StorageOptions } from './s3/options.js';
import type { Storage } from './types.js';

export interface OpenStorageOptions {
  /** Create the storage location if it does not exist (`repo init`). Otherwise nothing is created. */
  create?: boolean;
  /** For `s3://` URLs: region, endpoint, credentials (already resolved), parallelism; they win over URL parameters. */
  s3?: S3StorageOptions;
}

/** Opens one URL scheme. Heavy backends import their SDK inside the factory, so `--help` stays fast. */
export type StorageFactory = (url: string, opts: OpenStorageOptions) => Promise<Storage>;

interface SchemeEntry {
  factory: StorageFactory;
  /** Example URL shown in error messages. */
  example: string;
}

const schemes = new Map<string, SchemeEntry>([
  [
    'file',
    {
      example: 'file:///srv/backups/repo (or just /srv/backups/repo)',
      factory: async (url, opts) => (opts.create ? LocalStorage.create(url) : LocalStorage.fromUrl(url)),
    },
  ],
  [
    'memory',
    {
      example: 'memory://name (in-process, for tests and the demo)',
      factory: async (url) => memoryStorage(url),
    },
  ],
  [
    's3',
    {
      example: 's3://bucket/prefix?region=eu-west-1',
      // Loaded on first use so that commands without S3 (and --help) never load the AWS SDK.
      factory: async (url, opts) => (await import('./s3/index.js')).openS3Storage(url, opts),
    },
  ],
]);

/**
 * Register (or replace) the factory for a URL scheme, e.g.
 * `registerStorageScheme('s3', async (url, o) => (await import('./s3/index.js')).openS3(url, o), 's3://bucket/prefix')`.
 */
export function registerStorageScheme(
  scheme: string,
  factory: StorageFactory,
  example = `${scheme}://…`,
): void {
  schemes.set(scheme.toLowerCase(), { factory, example });
}

/** The URL schemes openStorage() knows, for help texts. */
export function supportedStorageSchemes(): string[] {
  return [...schemes.keys()];
}

/**
 * Open the storage a URL names: `file:///abs/path` or a bare absolute path,
 * `memory://name`, `s3://bucket/prefix`. Unknown schemes and relative paths are
 * a UsageError listing what is supported; the URL is redacted in messages.
 */
export async function openStorage(url: string, opts: OpenStorageOptions = {}): Promise<Storage> {
  const scheme = url.startsWith('/') ? 'file' : /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const entry = scheme === undefined ? undefined : schemes.get(scheme);
  if (!entry) {
    const known = [...schemes.values()].map((e) => e.example).join(', ');
    const what =
      scheme === undefined ? 'is neither a URL nor an absolute path' : `uses unknown scheme "${scheme}:"`;
    throw new UsageError(`storage location ${redact(url)} ${what}`, { hint: `Supported: ${known}.` });
  }
  return entry.factory(url, opts);
}

const namedMemoryStorages = new Map<string, MemoryStorage>();

/** The process-wide MemoryStorage for `memory://name`; the same name always gives the same store. */
export function memoryStorage(url: string): MemoryStorage {
  const name = url.replace(/^memory:\/\//i, '');
  let storage = namedMemoryStorages.get(name);
  if (!storage) {
    storage = new MemoryStorage(`memory://${name}`);
    namedMemoryStorages.set(name, storage);
  }
  return storage;
}

/** Drop a named memory store (or all of them), so tests start clean. */
export function forgetMemoryStorage(name?: string): void {
  if (name === undefined) namedMemoryStorages.clear();
  else namedMemoryStorages.delete(name.replace(/^memory:\/\//i, ''));
}
