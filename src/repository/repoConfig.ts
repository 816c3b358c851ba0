/**
 * The `config` object (docs/repository-format.md §3): a plain header that
 * identifies the repository and its format version, and sealed parameters
 * that only key holders can read or change.
 */
import { IntegrityError } from '../errors.js';
import { CHUNKER_ALGORITHM, validateChunkerParams, type ChunkerParams } from './chunker.js';
import { associatedData, seal, unseal, type MasterKey } from './crypto.js';
import { NotARepositoryError, UnsupportedFormatError } from './errors.js';
import { CONFIG_KEY, isHex64 } from './layout.js';

/** The newest repository format this lifeboat reads and the one it writes. */
export const FORMAT_VERSION = 1;

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_COMPRESSION_LEVEL = 3;

/** The plain JSON stored in `config`. */
export interface ConfigFile {
  format: 'lifeboat-repository';
  version: number;
  id: string;
  createdAt: string;
  /** base64 of the sealed RepositoryParameters. */
  parameters: string;
}

/** The sealed part of the config. */
export interface RepositoryParameters {
  v: 1;
  id: string;
  chunker: ChunkerParams & { algorithm: string };
  compression: { algorithm: 'zstd'; level: number };
  packSize: number;
}

/** Build a new config object for a fresh repository. */
export function buildConfig(
  master: MasterKey,
  opts: { id: string; createdAt: string; chunker: ChunkerParams; packSize: number; compressionLevel: number },
): { file: ConfigFile; parameters: RepositoryParameters } {
  const parameters: RepositoryParameters = {
    v: 1,
    id: opts.id,
    chunker: { algorithm: CHUNKER_ALGORITHM, ...opts.chunker },
    compression: { algorithm: 'zstd', level: opts.compressionLevel },
    packSize: opts.packSize,
  };
  const sealed = seal(
    master.encryption,
    Buffer.from(JSON.stringify(parameters)),
    associatedData.config(opts.id),
  );
  return {
    file: {
      format: 'lifeboat-repository',
      version: FORMAT_VERSION,
      id: opts.id,
      createdAt: opts.createdAt,
      parameters: sealed.toString('base64'),
    },
    parameters,
  };
}

/** Serialized form of the config object. */
export function serializeConfig(file: ConfigFile): Buffer {
  return Buffer.from(JSON.stringify(file, null, 2) + '\n', 'utf8');
}

/** Parse the plain config header; refuses what is not a lifeboat repository or too new. */
export function parseConfigFile(bytes: Uint8Array, url: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new NotARepositoryError(url, `its ${CONFIG_KEY} object is not lifeboat JSON`);
  }
  const f = raw as Partial<ConfigFile> | null;
  if (typeof f !== 'object' || f === null || f.format !== 'lifeboat-repository') {
    throw new NotARepositoryError(url, `its ${CONFIG_KEY} object does not describe a lifeboat repository`);
  }
  if (typeof f.version !== 'number' || !Number.isInteger(f.version) || f.version < 1) {
    throw new IntegrityError(`the ${CONFIG_KEY} object of ${url} has no valid format version`);
  }
  if (f.version > FORMAT_VERSION) {
    throw new UnsupportedFormatError(
      `repository ${url} uses format version ${f.version}; this lifeboat reads versions up to ${FORMAT_VERSION}`,
    );
  }
  if (typeof f.id !== 'string' || !isHex64(f.id) || typeof f.parameters !== 'string') {
    throw new IntegrityError(`the ${CONFIG_KEY} object of ${url} is damaged (id or parameters missing)`);
  }
  return f as ConfigFile;
}

/** Decrypt and validate the sealed parameters with the master key. */
export function openParameters(master: MasterKey, file: ConfigFile, url: string): RepositoryParameters {
  const damaged = (why: string) =>
    new IntegrityError(`the ${CONFIG_KEY} object of ${url} is damaged: ${why}`, {
      hint: 'Restore the config object from a copy of the repository; it cannot be recreated.',
    });
  const plain = unseal(
    master.encryption,
    Buffer.from(file.parameters, 'base64'),
    associatedData.config(file.id),
  );
  if (!plain) throw damaged('its sealed parameters failed authentication');
  let p: RepositoryParameters;
  try {
    p = JSON.parse(plain.toString('utf8')) as RepositoryParameters;
  } catch {
    throw damaged('its parameters are not JSON');
  }
  if (p.id !== file.id) throw damaged('the sealed repository id differs from the plain one');
  if (p.chunker?.algorithm !== CHUNKER_ALGORITHM) {
    throw new UnsupportedFormatError(`repository ${url} uses chunker ${String(p.chunker?.algorithm)}`);
  }
  const chunkerProblem = validateChunkerParams(p.chunker);
  if (chunkerProblem) throw damaged(chunkerProblem);
  if (p.compression?.algorithm !== 'zstd' || !Number.isInteger(p.compression.level)) {
    throw damaged('its compression settings are invalid');
  }
  if (!Number.isInteger(p.packSize) || p.packSize < 1024 || p.packSize > 2 ** 31) {
    throw damaged('its pack size is invalid');
  }
  return p;
}
