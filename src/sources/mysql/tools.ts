/**
 * Finding the dump tool and the client: `mariadb-dump`/`mariadb` when
 * installed, else `mysqldump`/`mysql`, and which family they belong to
 * (their options differ).
 */
import { OperationError } from '../../errors.js';
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

/** Options of every dump: one transaction, everything that belongs to the schema, binary-safe, reproducible. */
export function dumpOptions(tools: MysqlTools, serverIsMariadb: boolean): string[] {
  const args = [
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    // No timestamp at the end: unchanged databases then dump to identical bytes and dedup fully.
    '--skip-dump-date',
    '--default-character-set=utf8mb4',
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
