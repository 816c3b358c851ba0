/**
 * Backup of a `postgres` job. Per database, one REPEATABLE READ READ ONLY
 * transaction exports its snapshot, takes ACCESS SHARE locks on every table
 * and reads the schema digest (without checksums also `count(*)` of every
 * table), while `pg_dump --snapshot` dumps exactly that snapshot; pg_dump's
 * stdout goes straight through the repository chunker, and every row is
 * hashed on the way (archiveRows.ts) for the row counts and content
 * checksums, so checksums cost no second scan. The transaction stays open until pg_dump exits. Any failure throws: a
 * failed backup is never a restore point (the caller commits only on success).
 *
 * The one hazard of holding locks before pg_dump takes its own: a DDL
 * statement queued behind our lock makes pg_dump queue behind the DDL, a
 * cycle PostgreSQL cannot see (we wait for pg_dump in the application). A
 * monitor connection watches for exactly that cycle; when it appears the
 * attempt is abandoned (pg_dump killed, transaction rolled back, letting the
 * DDL through) and the database is dumped again from a fresh snapshot.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LifeboatError, OperationError } from '../../errors.js';
import { systemClock, type Clock } from '../../platform/clock.js';
import { spawnStreaming, type StreamingProcess } from '../../platform/exec.js';
import { prepareDrain, spawnDrained } from '../../platform/drainThread.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { redact } from '../../platform/redact.js';
import type { Repo } from '../../repository/api.js';
import {
  DUMP_TOOL_STDOUT_BUFFER,
  saveDumpStream,
  saveStream,
  type SavedStream,
} from '../database/dumpStream.js';
import type { DatabaseFingerprint, ServerFingerprint } from '../database/fingerprint.js';
import type { DatabaseBackupResult } from '../database/results.js';
import type { RowReaderThread } from '../database/rowReaderWorker.js';
import {
  buildDatabaseTree,
  DATABASES_DIR,
  dumpFileName,
  type DatabaseManifest,
  type DumpEntry,
} from '../database/snapshotTree.js';
import { closePg, connectPg, pgError, type PgClient } from './client.js';
import {
  describePgTarget,
  pgToolEnv,
  resolvePgConnection,
  type PgConnectionSpec,
  type PgTarget,
} from './connection.js';
import { startArchiveRowThread } from './archiveRows.js';
import {
  fingerprintDatabase,
  listTables,
  lockTables,
  prepareFingerprintSession,
  readCopySettings,
  rowHashDumpEnv,
  schemaDigest,
  withArchiveChecksums,
} from './fingerprint.js';
import { findPgTools, probeFirstPgDump, type PgTools } from './tools.js';
import { pgToolFailure } from './toolFailure.js';

export interface PostgresBackupOptions {
  /** `all` (every non-template database that allows connections) or a list of names. */
  databases: 'all' | readonly string[];
  /** Also dump roles and tablespaces (pg_dumpall --globals-only) into globals.sql. */
  globals: boolean;
  /** Content checksums per table in the fingerprint (one extra scan per table). */
  checksums: boolean;
  clock?: Clock;
  logger?: Logger;
  /** Directory of pg_dump & co. (default: PATH, then /usr/lib/postgresql/N/bin, newest first). */
  binDir?: string;
  /** Kill pg_dump / pg_dumpall after this many ms (default: no limit). */
  timeoutMs?: number;
  /** Give up waiting for a table lock after this many ms (default: wait, like pg_dump). */
  lockWaitTimeoutMs?: number;
  /** Dump attempts per database when a concurrent DDL deadlocks pg_dump (default 3). */
  maxAttempts?: number;
  onProgress?: (event: { database: string; bytes: number }) => void;
  /** Test hook: runs after the snapshot and table locks, before pg_dump starts. */
  afterSnapshot?: (database: string) => Promise<void>;
}

interface ServerInfo {
  versionNum: number;
  version: string;
  identity: string;
  superuser: boolean;
  maintenanceDb: string;
}

async function readServerInfo(target: PgTarget): Promise<ServerInfo & { databases: string[] }> {
  const maintenanceDb = target.database ?? 'postgres';
  const client = await connectPg(target, maintenanceDb, 'checking the server');
  try {
    const info = await client.query<{ num: number; version: string; superuser: boolean }>(
      `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version,
              coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS superuser`,
    );
    const row = info.rows[0];
    if (!row) throw new Error('server returned no version');
    let identity = `pg-host:${target.host}:${target.port}`;
    try {
      const sys = await client.query<{ id: string }>(
        `SELECT system_identifier::text AS id FROM pg_control_system()`,
      );
      if (sys.rows[0]?.id) identity = `pg-system:${sys.rows[0].id}`;
    } catch {
      // pg_control_system() is missing before 9.6 or may be revoked; host:port identifies the server instead.
    }
    const dbs = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname`,
    );
    return {
      versionNum: row.num,
      version: row.version,
      identity,
      superuser: row.superuser,
      maintenanceDb,
      databases: dbs.rows.map((r) => r.datname),
    };
  } catch (err) {
    throw pgError(err, target, maintenanceDb, 'checking the server');
  } finally {
    await closePg(client);
  }
}

function selectDatabases(
  requested: 'all' | readonly string[],
  available: string[],
  target: PgTarget,
): string[] {
  if (requested === 'all') return available;
  const missing = requested.filter((d) => !available.includes(d));
  if (missing.length > 0) {
    throw new OperationError(
      'E_DB_NOT_FOUND',
      `database${missing.length > 1 ? 's' : ''} ${missing.map((d) => JSON.stringify(d)).join(', ')} not found ` +
        `(or not accepting connections) on ${describePgTarget(target, '')}`,
      {
        hint: `Existing databases: ${available.map((d) => JSON.stringify(d)).join(', ') || '(none)'}. Fix the job's databases list.`,
        details: { missing, available },
      },
    );
  }
  return [...new Set(requested)];
}

/** Raised inside an attempt when pg_dump and a queued DDL wait on our locks in a cycle. */
class DdlCycle extends Error {}

interface DumpedDatabase {
  saved: SavedStream;
  fingerprint: DatabaseFingerprint;
  properties: Record<string, string>;
  attempts: number;
  /** Why the archive's rows could not be hashed (the server computed the checksums instead). */
  archiveUnreadable?: string;
}

/** How often the monitor looks for a lock cycle while pg_dump runs. */
const CYCLE_POLL_MS = 200;

/**
 * Poll until pg_dump's backend waits on a session that waits on ours;
 * resolves `true` then, `false` once `stop` is aborted. Aborting ends the
 * wait between polls at once: the backup is not held up by a sleeping poll
 * (on average half an interval, 100 ms, at the end of every dump).
 */
async function watchForCycle(
  monitor: PgClient,
  ourPid: number,
  appName: string,
  stop: AbortSignal,
): Promise<boolean> {
  while (!stop.aborted) {
    try {
      await sleep(CYCLE_POLL_MS, undefined, { signal: stop });
    } catch {
      break; // stopped
    }
    const r = await monitor.query<{ cycle: boolean }>(
      `SELECT EXISTS (
         SELECT 1 FROM pg_stat_activity a, unnest(pg_blocking_pids(a.pid)) AS b(pid)
          WHERE a.application_name = $1 AND $2 = ANY (pg_blocking_pids(b.pid))
       ) AS cycle`,
      [appName, ourPid],
    );
    if (r.rows[0]?.cycle) return true;
  }
  return false;
}

async function dumpOnce(
  repo: Repo,
  target: PgTarget,
  tools: PgTools,
  database: string,
  opts: PostgresBackupOptions,
): Promise<Omit<DumpedDatabase, 'attempts'>> {
  const what = `backing up database ${database}`;
  let client: PgClient | undefined;
  let monitor: PgClient | undefined;
  let proc: StreamingProcess | undefined;
  let reader: RowReaderThread | undefined;
  const watching = new AbortController();
  let closing: Promise<void> | undefined;
  const closeClient = () => (closing ??= closePg(client));
  // Made ready while we connect and take the snapshot, so pg_dump starts without waiting for it.
  const draining = prepareDrain();
  try {
    client = await connectPg(target, database, what);
    monitor = await connectPg(target, database, what);
    // What pg_dump's session will use (same user, same database defaults), before we pin our own.
    const copySettings = opts.checksums ? await readCopySettings(client) : undefined;
    await prepareFingerprintSession(client);
    if (opts.lockWaitTimeoutMs)
      await client.query(`SET lock_timeout = ${Math.max(1, Math.trunc(opts.lockWaitTimeoutMs))}`);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = await client.query<{ id: string; pid: number }>(
      `SELECT pg_export_snapshot() AS id, pg_backend_pid() AS pid`,
    );
    const snapshotId = snap.rows[0]?.id;
    const ourPid = snap.rows[0]?.pid;
    if (!snapshotId || ourPid === undefined) throw new Error('pg_export_snapshot() returned nothing');
    const tables = await listTables(client);
    await lockTables(client, tables);
    const propsRow = await client.query<{ encoding: string; collate: string; ctype: string }>(
      `SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype
         FROM pg_database WHERE datname = current_database()`,
    );
    const properties = { ...(propsRow.rows[0] ?? {}) };
    await opts.afterSnapshot?.(database);

    const appName = `lifeboat-pg_dump-${randomBytes(6).toString('hex')}`;
    const env = { ...pgToolEnv(target, database), ...rowHashDumpEnv(undefined), PGAPPNAME: appName };
    proc = await spawnDrained(
      [tools.pgDump, '--format=custom', '--compress=0', `--snapshot=${snapshotId}`, '--no-password'],
      { env, timeoutMs: opts.timeoutMs, stdoutBuffer: DUMP_TOOL_STDOUT_BUFFER },
      draining,
    );
    const running = proc;
    let firstFailure: unknown;
    const fail = (err: unknown): never => {
      firstFailure ??= err;
      running.kill('SIGKILL');
      // Ending our session cancels a fingerprint still running (and rolls back, releasing the locks).
      void closeClient();
      throw err;
    };
    // Rows are read and hashed on a worker thread: this one drains pg_dump's pipe and chunks.
    const tap = (reader = opts.checksums ? startArchiveRowThread() : undefined);
    const saving = saveDumpStream(repo, running.stdout, tap, {
      onProgress: (bytes) => opts.onProgress?.({ database, bytes }),
    }).catch(fail);
    // With checksums, counts and checksums come from the archive's rows (same snapshot, no second
    // scan) and this session only reads the schema; without, it counts every table.
    const fingerprinting = (
      opts.checksums
        ? schemaDigest(client).then((digest): DatabaseFingerprint => ({ tables: {}, schemaDigest: digest }))
        : fingerprintDatabase(client, tables, false)
    ).catch(fail);
    const dumping = running.done.catch((err) => {
      firstFailure ??= pgToolFailure('pg_dump', what, err, target);
      void closeClient();
      throw firstFailure;
    });
    const cycle = watchForCycle(monitor, ourPid, appName, watching.signal).then((found) => {
      if (found) fail(new DdlCycle());
    });
    cycle.catch(() => {});
    const settled = await Promise.allSettled([saving, fingerprinting, dumping]);
    watching.abort();
    await cycle.catch(() => {});
    if (firstFailure !== undefined || settled.some((s) => s.status === 'rejected')) {
      throw firstFailure ?? (settled.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
    }
    const saved = (settled[0] as PromiseFulfilledResult<SavedStream>).value;
    let fingerprint = (settled[1] as PromiseFulfilledResult<DatabaseFingerprint>).value;
    let archiveUnreadable: string | undefined;
    if (tap) {
      // Checksums on: counts and checksums come from the dump's rows.
      let rows: Awaited<ReturnType<RowReaderThread['result']>> | undefined;
      try {
        rows = await tap.result();
      } catch (err) {
        archiveUnreadable = err instanceof Error ? err.message : String(err);
      }
      fingerprint = rows
        ? { ...withArchiveChecksums(database, tables, fingerprint.schemaDigest, rows), copySettings }
        : // Still inside the snapshot: the server computes the checksums instead (one more scan).
          await fingerprintDatabase(client, tables, true);
    }
    await client.query('COMMIT');
    return { saved, fingerprint, properties, archiveUnreadable };
  } catch (err) {
    proc?.kill('SIGKILL');
    if (err instanceof DdlCycle || err instanceof LifeboatError) throw err;
    throw pgError(err, target, database, what);
  } finally {
    watching.abort();
    // Ending the connection rolls back the transaction, releasing our locks.
    await closeClient();
    await closePg(monitor);
    await reader?.close();
    if (proc) await proc.done.catch(() => {});
    // Not given to pg_dump (a failure before it started), the drain still has to go.
    await (await draining)?.release();
  }
}

async function dumpDatabase(
  repo: Repo,
  target: PgTarget,
  tools: PgTools,
  database: string,
  opts: PostgresBackupOptions,
  logger: Logger,
): Promise<DumpedDatabase> {
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
  for (let attempt = 1; ; attempt++) {
    try {
      return { ...(await dumpOnce(repo, target, tools, database, opts)), attempts: attempt };
    } catch (err) {
      if (!(err instanceof DdlCycle)) throw err;
      if (attempt >= maxAttempts) {
        throw new OperationError(
          'E_PG_DDL_CONFLICT',
          `pg_dump of database ${database} was blocked by concurrent schema changes ${attempt} times (${describePgTarget(target, database)})`,
          { hint: 'Run the backup outside the window of schema migrations, or raise maxAttempts.' },
        );
      }
      logger.warn(
        `database ${database}: a concurrent schema change blocked pg_dump; starting again from a new snapshot`,
      );
    }
  }
}

async function dumpGlobals(
  repo: Repo,
  target: PgTarget,
  tools: PgTools,
  info: ServerInfo,
  opts: PostgresBackupOptions,
  warnings: string[],
): Promise<SavedStream> {
  const argv = [tools.pgDumpAll, '--globals-only', '--no-password', `--database=${info.maintenanceDb}`];
  if (!info.superuser) {
    // Reading role passwords needs pg_authid (superuser only); without it pg_dumpall fails outright.
    argv.push('--no-role-passwords');
    warnings.push(`globals.sql has no role passwords: user ${target.user} is not a superuser`);
  }
  const proc = spawnStreaming(argv, {
    env: pgToolEnv(target, info.maintenanceDb),
    timeoutMs: opts.timeoutMs,
  });
  let saveError: unknown;
  const saving = saveStream(repo, proc.stdout).catch((err) => {
    saveError = err;
    proc.kill('SIGKILL');
    return undefined;
  });
  try {
    await proc.done;
  } catch (err) {
    await saving;
    if (saveError !== undefined) throw saveError;
    throw pgToolFailure('pg_dumpall', 'dumping roles and tablespaces', err, target);
  }
  const saved = await saving;
  if (!saved) throw saveError;
  return saved;
}

/** Back up the databases of a `postgres` job into the repository (no snapshot is committed here). */
export async function backupPostgres(
  repo: Repo,
  spec: PgConnectionSpec,
  opts: PostgresBackupOptions,
): Promise<DatabaseBackupResult> {
  const logger = opts.logger ?? silentLogger;
  const clock = opts.clock ?? systemClock;
  const target = resolvePgConnection(spec);
  const firstPgDump = probeFirstPgDump(opts.binDir);
  const info = await readServerInfo(target);
  const tools = await findPgTools(info.versionNum, info.version, opts.binDir, firstPgDump);
  const databases = selectDatabases(opts.databases, info.databases, target);
  const warnings: string[] = [];
  const files = new Map<string, SavedStream>();
  const dumps: DumpEntry[] = [];
  const fingerprint: ServerFingerprint = {
    engine: 'postgres',
    serverVersion: info.version,
    serverIdentity: info.identity,
    checksums: opts.checksums,
    databases: {},
  };
  for (const database of databases) {
    logger.info(`dumping database ${database}`);
    const dumped = await dumpDatabase(repo, target, tools, database, opts, logger);
    const path = `${DATABASES_DIR}/${dumpFileName(database, 'dump')}`;
    files.set(path, dumped.saved);
    fingerprint.databases[database] = dumped.fingerprint;
    dumps.push({
      database,
      path,
      format: 'pg-custom',
      size: dumped.saved.size,
      sha256: dumped.saved.sha256,
      properties: dumped.properties,
    });
    if (dumped.archiveUnreadable !== undefined) {
      warnings.push(
        `database ${database}: could not read pg_dump's archive (${dumped.archiveUnreadable}); the server computed the checksums instead`,
      );
    }
    if (dumped.attempts > 1) {
      warnings.push(
        `database ${database}: dumped on attempt ${dumped.attempts} after concurrent schema changes`,
      );
    }
  }
  const manifest: DatabaseManifest = {
    v: 1,
    kind: 'postgres',
    dumpTool: tools.versionText,
    dumps,
    fingerprint,
  };
  if (opts.globals) {
    const saved = await dumpGlobals(repo, target, tools, info, opts, warnings);
    files.set('globals.sql', saved);
    manifest.globals = { path: 'globals.sql', size: saved.size, sha256: saved.sha256 };
  }
  const { tree, stats } = await buildDatabaseTree(repo, { manifest, files, now: clock.now() });
  return {
    tree,
    fingerprint,
    stats,
    warnings: warnings.map(redact),
    paths: [...databases, ...(opts.globals ? ['globals'] : [])],
    manifest,
  };
}

export type { DatabaseBackupResult };
