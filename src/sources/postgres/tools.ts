/**
 * Finding pg_dump, pg_dumpall, pg_restore and psql of a version that can talk
 * to the server: pg_dump refuses (or worse, misdumps) servers newer than
 * itself, so the version is checked before anything runs.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { OperationError } from '../../errors.js';
import { run } from '../../platform/exec.js';

export interface PgTools {
  pgDump: string;
  pgDumpAll: string;
  pgRestore: string;
  psql: string;
  /** `pg_dump --version` output, e.g. `pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`. */
  versionText: string;
  /** In server_version_num form (15.20 → 150020, 9.6.24 → 90624). */
  versionNum: number;
}

/** Parse `pg_dump (PostgreSQL) 15.20 …` (or 9.6.24, or 16beta1) into server_version_num form. */
export function parseToolVersion(text: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[2] ?? 0);
  const c = Number(m[3] ?? 0);
  return a >= 10 ? a * 10000 + b : a * 10000 + b * 100 + c;
}

/** The major version of a server_version_num: 150020 → "15", 90624 → "9.6". */
export function majorOf(versionNum: number): string {
  return versionNum >= 100000
    ? String(Math.floor(versionNum / 10000))
    : `${Math.floor(versionNum / 10000)}.${Math.floor(versionNum / 100) % 100}`;
}

/** True when a pg_dump of `toolNum` can dump a server of `serverNum` (same or newer major). */
export function canDump(toolNum: number, serverNum: number): boolean {
  return Math.floor(toolNum / 100) >= Math.floor(serverNum / 100);
}

interface ToolVersion {
  text: string;
  num: number;
}

async function versionAt(pgDump: string): Promise<ToolVersion | undefined> {
  try {
    const r = await run([pgDump, '--version'], { timeoutMs: 15_000 });
    const num = r.code === 0 ? parseToolVersion(r.stdout) : undefined;
    return num === undefined ? undefined : { text: r.stdout.trim(), num };
  } catch {
    return undefined;
  }
}

const firstPgDump = (binDir: string | undefined) => (binDir ? join(binDir, 'pg_dump') : 'pg_dump');

/**
 * `--version` of the pg_dump findPgTools tries first (never rejects). A
 * caller starts it before it asks the server for its version, so the two
 * round trips overlap (~30 ms per backup here).
 */
export function probeFirstPgDump(binDir?: string): Promise<ToolVersion | undefined> {
  return versionAt(firstPgDump(binDir));
}

/** Directories where distributions install versioned client tools, newest first. */
async function versionedBinDirs(): Promise<string[]> {
  const dirs: string[] = [];
  const scan = async (parent: string, re: RegExp, bin: (name: string) => string) => {
    try {
      for (const name of await readdir(parent)) if (re.test(name)) dirs.push(bin(name));
    } catch {
      // Not this distribution's layout.
    }
  };
  await scan('/usr/lib/postgresql', /^\d+(\.\d+)?$/, (n) => join('/usr/lib/postgresql', n, 'bin'));
  await scan('/usr', /^pgsql-\d+$/, (n) => join('/usr', n, 'bin'));
  const ver = (d: string) => Number(/(\d+(?:\.\d+)?)/.exec(d.replace(/^\/usr\//, ''))?.[1] ?? 0);
  return dirs.sort((a, b) => ver(b) - ver(a));
}

function toolsIn(dir: string | undefined, versionText: string, versionNum: number): PgTools {
  const at = (name: string) => (dir ? join(dir, name) : name);
  return {
    pgDump: at('pg_dump'),
    pgDumpAll: at('pg_dumpall'),
    pgRestore: at('pg_restore'),
    psql: at('psql'),
    versionText,
    versionNum,
  };
}

/**
 * Client tools able to work with a server of `serverVersionNum`: `binDir` when
 * given, else the ones on PATH, else the newest versioned install
 * (/usr/lib/postgresql/N/bin, /usr/pgsql-N/bin) that is new enough.
 */
export async function findPgTools(
  serverVersionNum: number,
  serverVersion: string,
  binDir?: string,
  firstProbe: Promise<ToolVersion | undefined> = probeFirstPgDump(binDir),
): Promise<PgTools> {
  const first = firstPgDump(binDir);
  const found = await firstProbe;
  if (found && canDump(found.num, serverVersionNum)) return toolsIn(binDir, found.text, found.num);
  if (!binDir) {
    for (const dir of await versionedBinDirs()) {
      const v = await versionAt(join(dir, 'pg_dump'));
      if (v && canDump(v.num, serverVersionNum)) return toolsIn(dir, v.text, v.num);
    }
  }
  if (!found) {
    throw new OperationError('E_EXEC_NOT_FOUND', `cannot run ${first} --version`, {
      hint: `Install the PostgreSQL ${majorOf(serverVersionNum)} client tools (e.g. apt install postgresql-client-${majorOf(serverVersionNum)}).`,
    });
  }
  throw new OperationError(
    'E_PG_DUMP_TOO_OLD',
    `${found.text} is older than the server (PostgreSQL ${serverVersion}): pg_dump cannot dump a server of a newer major version`,
    {
      hint: `Install the PostgreSQL ${majorOf(serverVersionNum)} (or newer) client tools (e.g. apt install postgresql-client-${majorOf(serverVersionNum)}).`,
      details: { pgDump: found.text, server: serverVersion },
    },
  );
}
