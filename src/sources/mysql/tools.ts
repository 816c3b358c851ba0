/**
 * Finding the dump tool and the client: `mariadb-dump`/`mariadb` when
 * installed, else `mysqldump`/`mysql`, and which family they belong to
 * (their options differ).
 */
import { OperationError } from '../../errors.js';
import { UnsupportedFormatError } from '../../repository/errors.js';
import { run } from '../../platform/exec.js';
import type { MysqlToolFlavor } from './connection.js';

export interface MysqlTools {
  dump: string;
  client: string;
  flavor: MysqlToolFlavor;
  /** `--version` output of the dump tool. */
  versionText: string;
}

/** The family of a dump tool from its `--version` output. */
export function toolFlavor(versionText: string): MysqlToolFlavor {
  return /mariadb/i.test(versionText) ? 'mariadb' : 'mysql';
}

async function version(cmd: string): Promise<string | undefined> {
  try {
    const r = await run([cmd, '--version'], { timeoutMs: 15_000 });
    return r.code === 0 ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Locate the tools (optionally in `binDir`). */
export async function findMysqlTools(binDir?: string): Promise<MysqlTools> {
  const at = (name: string) => (binDir ? `${binDir.replace(/\/$/, '')}/${name}` : name);
  for (const [dump, client] of [
    ['mariadb-dump', 'mariadb'],
    ['mysqldump', 'mysql'],
  ] as const) {
    const text = await version(at(dump));
    if (text) return { dump: at(dump), client: at(client), flavor: toolFlavor(text), versionText: text };
  }
  throw new OperationError(
    'E_EXEC_NOT_FOUND',
    `neither mariadb-dump nor mysqldump can be run${binDir ? ` from ${binDir}` : ''}`,
    {
      hint: 'Install the MariaDB or MySQL client tools (e.g. apt install mariadb-client).',
    },
  );
}

/**
 * The character set of the dump's connection, recorded in the fingerprint
 * (`copySettings.characterSet`) because the dump's row text, and so its
 * row hashes, depend on it.
 *
 * - `binary` (new dumps): the server converts nothing and the dump tool
 *   escapes bytes without utf8mb4's multibyte checks; every value goes into
 *   the dump as the bytes it is stored as, and is replayed as such
 *   (`--binary-mode`, and the dump's own `SET NAMES binary`). Measured on
 *   500 MB of sysbench-like rows: mariadb-dump's CPU 1.84 → 0.67 s, the whole
 *   lifeboat backup 5.0–5.2 → 4.3–4.4 s on 2 cores. `--hex-blob` is left out:
 *   under the binary character set every string column counts as binary and
 *   would be written in hex, twice the size.
 * - `utf8mb4` (dumps made before): converted to utf8mb4, binary columns in
 *   hex. A restore of such a snapshot is verified with the same options.
 */
export type DumpCharacterSet = 'binary' | 'utf8mb4';

/** The character set new dumps are made with. */
export const DUMP_CHARACTER_SET: DumpCharacterSet = 'binary';

/** The character set a database fingerprint's dump was made with (none recorded: `utf8mb4`, the dumps before). */
export function dumpCharacterSetOf(fingerprint: { copySettings?: Record<string, string> }): DumpCharacterSet {
  const recorded = fingerprint.copySettings?.characterSet;
  if (recorded === undefined || recorded === 'utf8mb4') return 'utf8mb4';
  if (recorded === 'binary') return 'binary';
  throw new UnsupportedFormatError(
    `the snapshot's dump was made with the character set ${JSON.stringify(recorded)}, which this version of lifeboat does not know`,
  );
}

/** Options of every dump: one transaction, everything that belongs to the schema, binary-safe, reproducible. */
export function dumpOptions(
  tools: MysqlTools,
  serverIsMariadb: boolean,
  characterSet: DumpCharacterSet = DUMP_CHARACTER_SET,
): string[] {
  const args = [
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    ...(characterSet === 'utf8mb4' ? ['--hex-blob'] : []),
    // No timestamp at the end: unchanged databases then dump to identical bytes and dedup fully.
    '--skip-dump-date',
    `--default-character-set=${characterSet}`,
    '--max-allowed-packet=1G',
  ];
  if (tools.flavor === 'mariadb') args.push('--add-drop-trigger');
  else {
    // MySQL's mysqldump: GTID statements would break restores into other servers; tablespaces need PROCESS.
    args.push('--set-gtid-purged=OFF', '--no-tablespaces');
    if (serverIsMariadb) args.push('--column-statistics=0');
  }
  return args;
}
