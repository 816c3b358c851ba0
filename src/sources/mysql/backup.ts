/**
 * Backup of a `mysql` job (MySQL or MariaDB): every database is dumped on its
 * own by mariadb-dump/mysqldump into `databases/<name>.sql`, with a
 * fingerprint of exactly the dumped snapshot (see consistentDump.ts); users
 * and grants optionally go into `grants.sql`. Any failure throws: a failed
 * backup is never a restore point.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { OperationError } from '../../errors.js';
import { systemClock, type Clock } from '../../platform/clock.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { redact } from '../../platform/redact.js';
import type { Repo } from '../../repository/api.js';
import { saveStream, type SavedStream } from '../database/dumpStream.js';
import type { ServerFingerprint } from '../database/fingerprint.js';
import type { DatabaseBackupResult } from '../database/results.js';
import {
  buildDatabaseTree,
  DATABASES_DIR,
  dumpFileName,
  type DatabaseManifest,
  type DumpEntry,
} from '../database/snapshotTree.js';
import { closeMysql, connectMysql, mysqlError, rows, type MysqlConnection } from './client.js';
import {
  describeMysqlTarget,
  resolveMysqlConnection,
  withOptionFile,
  type MysqlConnectionSpec,
  type MysqlServerEngine,
  type MysqlTarget,
} from './connection.js';
import { dumpConsistently, type CommitBlock } from './consistentDump.js';
import { dumpUsersAndGrants } from './grants.js';
import { DUMP_CHARACTER_SET, dumpOptions, findMysqlTools } from './tools.js';

/** Schemas that belong to the server, never to a job's `all`. */
export const SYSTEM_SCHEMAS = new Set(['information_schema', 'performance_schema', 'mysql', 'sys']);

export interface MysqlBackupOptions {
  /** `all` (every database but the system schemas) or a list of names. */
  databases: 'all' | readonly string[];
  /** Also save users, roles and grants into grants.sql. */
  usersAndGrants: boolean;
  /** Content checksums per table in the fingerprint (one extra scan per table). */
  checksums: boolean;
  clock?: Clock;
  logger?: Logger;
  /** Directory of mariadb-dump/mysqldump (default: PATH). */
  binDir?: string;
  /** How commits are blocked while the snapshots are aligned (default: BACKUP STAGE on MariaDB ≥ 10.4, else FTWRL). */
  commitBlock?: CommitBlock;
  /** Seconds to wait for the commit block before failing (default 30). */
  lockWaitTimeoutSec?: number;
  /** Kill the dump after this many ms (default: no limit). */
  timeoutMs?: number;
  /** Where the private option file is written (default: the OS temp dir). */
  tempDir?: string;
  onProgress?: (event: { database: string; bytes: number }) => void;
}

interface ServerInfo {
  version: string;
  engine: MysqlServerEngine;
  identity: string;
  commitBlock: CommitBlock;
  databases: string[];
}

/** A stable identity of a server (host name, port, data directory, server UUID), hashed. */
export async function mysqlServerIdentity(conn: MysqlConnection): Promise<string> {
  const [r] = await rows<{ h: string; p: string | number; d: string }>(
    conn,
    'SELECT @@hostname AS h, @@port AS p, @@datadir AS d',
  );
  let uuid = '';
  try {
    const [u] = await rows<{ u: string }>(conn, 'SELECT @@server_uuid AS u');
    uuid = u?.u ?? '';
  } catch {
    // MariaDB has no server_uuid.
  }
  const digest = createHash('sha256').update(`${r?.h}|${r?.p}|${r?.d}|${uuid}`).digest('hex').slice(0, 32);
  return `mysql:${digest}`;
}

/** `10.11.19-MariaDB-0+deb12u1` → [10, 11, 19]. */
export function versionParts(version: string): number[] {
  return (/^(\d+)\.(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
}

async function readServerInfo(
  conn: MysqlConnection,
  requested: CommitBlock | undefined,
): Promise<ServerInfo> {
  const [v] = await rows<{ v: string }>(conn, 'SELECT VERSION() AS v');
  const version = v?.v ?? '?';
  const engine = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  const [major = 0, minor = 0, patch = 0] = versionParts(version);
  const hasBackupStage = engine === 'mariadb' && major * 10000 + minor * 100 + patch >= 100401;
  const schemas = await rows<{ s: string }>(
    conn,
    'SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME',
  );
  return {
    version,
    engine,
    identity: await mysqlServerIdentity(conn),
    commitBlock: requested ?? (hasBackupStage ? 'backup-stage' : 'ftwrl'),
    databases: schemas.map((r) => r.s).filter((s) => !SYSTEM_SCHEMAS.has(s.toLowerCase())),
  };
}

function selectDatabases(
  requested: 'all' | readonly string[],
  available: string[],
  target: MysqlTarget,
): string[] {
  if (requested === 'all') return available;
  const missing = requested.filter((d) => !available.includes(d));
  if (missing.length > 0) {
    throw new OperationError(
      'E_DB_NOT_FOUND',
      `database${missing.length > 1 ? 's' : ''} ${missing.map((d) => JSON.stringify(d)).join(', ')} not found on ${describeMysqlTarget(target, '')}`,
      {
        hint: `Existing databases: ${available.map((d) => JSON.stringify(d)).join(', ') || '(none)'}. Fix the job's databases list.`,
        details: { missing, available },
      },
    );
  }
  return [...new Set(requested)];
}

/** Back up the databases of a `mysql` job into the repository (no snapshot is committed here). */
export async function backupMysql(
  repo: Repo,
  spec: MysqlConnectionSpec,
  opts: MysqlBackupOptions,
): Promise<DatabaseBackupResult> {
  const logger = opts.logger ?? silentLogger;
  const clock = opts.clock ?? systemClock;
  const target = resolveMysqlConnection(spec);
  const tools = await findMysqlTools(opts.binDir);
  const conn = await connectMysql(target, undefined, 'checking the server');
  let info: ServerInfo;
  let grants: { sql: string; warnings: string[] } | undefined;
  try {
    info = await readServerInfo(conn, opts.commitBlock);
    if (opts.usersAndGrants) grants = await dumpUsersAndGrants(conn);
  } catch (err) {
    throw mysqlError(err, target, undefined, 'checking the server');
  } finally {
    await closeMysql(conn);
  }
  const databases = selectDatabases(opts.databases, info.databases, target);
  const warnings: string[] = [...(grants?.warnings ?? [])];
  const files = new Map<string, SavedStream>();
  const dumps: DumpEntry[] = [];
  const fingerprint: ServerFingerprint = {
    engine: info.engine,
    serverVersion: info.version,
    serverIdentity: info.identity,
    checksums: opts.checksums,
    databases: {},
    positions: {},
  };
  const dumpArgs = dumpOptions(tools, info.engine === 'mariadb', DUMP_CHARACTER_SET);
  await withOptionFile(
    target,
    tools.flavor,
    async (optionFile) => {
      for (const database of databases) {
        logger.info(`dumping database ${database}`);
        const dumped = await dumpConsistently(repo, target, tools, database, {
          checksums: opts.checksums,
          dumpArgs,
          optionFile,
          commitBlock: info.commitBlock,
          engine: info.engine,
          lockWaitTimeoutSec: opts.lockWaitTimeoutSec,
          timeoutMs: opts.timeoutMs,
          onProgress: (bytes) => opts.onProgress?.({ database, bytes }),
        });
        logger.debug(`database ${database}: commits were blocked for ${dumped.commitsBlockedMs} ms`);
        const path = `${DATABASES_DIR}/${dumpFileName(database, 'sql')}`;
        files.set(path, dumped.saved);
        // The dump's row text (and so its row hashes) depends on the connection's character set.
        fingerprint.databases[database] = {
          ...dumped.fingerprint,
          copySettings: { characterSet: DUMP_CHARACTER_SET },
        };
        if (Object.keys(dumped.position).length > 0 && fingerprint.positions)
          fingerprint.positions[database] = dumped.position;
        warnings.push(...dumped.warnings);
        dumps.push({
          database,
          path,
          format: 'sql',
          size: dumped.saved.size,
          sha256: dumped.saved.sha256,
          properties: { ...dumped.properties, commitsBlockedMs: String(dumped.commitsBlockedMs) },
        });
      }
    },
    opts.tempDir,
  );
  if (fingerprint.positions && Object.keys(fingerprint.positions).length === 0) delete fingerprint.positions;
  const manifest: DatabaseManifest = { v: 1, kind: 'mysql', dumpTool: tools.versionText, dumps, fingerprint };
  if (grants) {
    const saved = await saveStream(repo, Readable.from([Buffer.from(grants.sql)]));
    files.set('grants.sql', saved);
    manifest.globals = { path: 'grants.sql', size: saved.size, sha256: saved.sha256 };
  }
  const { tree, stats } = await buildDatabaseTree(repo, { manifest, files, now: clock.now() });
  return {
    tree,
    fingerprint,
    stats,
    warnings: warnings.map(redact),
    paths: [...databases, ...(grants ? ['grants'] : [])],
    manifest,
  };
}
