/**
 * One database dumped by mariadb-dump/mysqldump with a fingerprint of exactly
 * the dumped data, even while other sessions commit:
 *
 *  1. connection L takes a lifeboat mutex for this database (GET_LOCK) so two
 *     lifeboat backups of it never interleave, then blocks commits server-wide:
 *     `BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT` on MariaDB ≥ 10.4 (writes
 *     may run, only COMMIT waits), else `FLUSH TABLES WITH READ LOCK`;
 *  2. connection S starts `START TRANSACTION WITH CONSISTENT SNAPSHOT` — no
 *     commit can land now, so its snapshot is the state of the moment — and
 *     reads the table list and schema digest;
 *  3. the dump starts with `--single-transaction`: its own consistent snapshot
 *     is taken while commits are still blocked, so it equals S's. To know when
 *     that has happened, the dump runs with
 *     `--where="(SELECT COALESCE(GET_LOCK('<signal>', 0), 1)) >= 0"` (on
 *     MariaDB a cheaper form, see signalWhere) — always
 *     true, but evaluating it takes a user lock that L can see with
 *     IS_USED_LOCK; the dump's first data SELECT comes after its START
 *     TRANSACTION. The holder's connection id must be newer than S's, so a
 *     stray session cannot fake the signal;
 *  4. L unblocks commits as soon as the signal is seen (or the dump has
 *     finished, if it had no table to select from); the lock is held for
 *     milliseconds. S then counts every table in its snapshot while the dump
 *     streams into the repository, and every row of the dump is hashed on
 *     the way (dumpRows.ts) for the content checksums; S's counts must equal
 *     the dump's.
 *
 * Tables of non-transactional engines (MyISAM, Aria, MEMORY …) are not
 * covered by snapshots at all: they are reported in warnings.
 */
import { createHash } from 'node:crypto';
import { OperationError } from '../../errors.js';
import { monotonicMs } from '../../platform/clock.js';
import type { StreamingProcess } from '../../platform/exec.js';
import { prepareDrain, spawnDrained } from '../../platform/drainThread.js';
import type { Repo } from '../../repository/api.js';
import { DUMP_TOOL_STDOUT_BUFFER, saveDumpStream, type SavedStream } from '../database/dumpStream.js';
import type { DatabaseFingerprint } from '../database/fingerprint.js';
import type { RowReaderThread } from '../database/rowReaderWorker.js';
import { startDumpRowThread } from './dumpRows.js';
import { closeMysql, connectMysql, mysqlError, rows, type MysqlConnection } from './client.js';
import { describeMysqlTarget, mysqlToolEnv, type MysqlServerEngine, type MysqlTarget } from './connection.js';
import {
  fingerprintMysqlTables,
  listMysqlTables,
  mysqlSchemaDigest,
  prepareMysqlFingerprintSession,
  TRANSACTIONAL_ENGINES,
  withDumpChecksums,
} from './fingerprint.js';
import type { MysqlTools } from './tools.js';
import { mysqlToolFailure } from './toolFailure.js';
import { requireDatabaseWideSelect } from './privileges.js';

/** How commits are blocked while the two snapshots are taken. */
export type CommitBlock = 'backup-stage' | 'ftwrl';

export interface ConsistentDumpOptions {
  checksums: boolean;
  /** Options passed to the dump tool (see dumpOptions). */
  dumpArgs: string[];
  /** Path of the private option file (first argument of the tools). */
  optionFile: string;
  commitBlock: CommitBlock;
  /** The server's kind: how the dump signals its snapshot (signalWhere). */
  engine: MysqlServerEngine;
  /** Seconds to wait for the commit block (lock_wait_timeout), default 30. */
  lockWaitTimeoutSec?: number;
  /** Give up when the dump has not opened its snapshot this long after the block, ms (default 60 s). */
  maxBlockMs?: number;
  timeoutMs?: number;
  onProgress?: (bytes: number) => void;
}

export interface ConsistentDump {
  saved: SavedStream;
  fingerprint: DatabaseFingerprint;
  /** How long commits were blocked, ms. */
  commitsBlockedMs: number;
  /** Replication position at the snapshot, when the server has one. */
  position: Record<string, string>;
  properties: Record<string, string>;
  warnings: string[];
}

/** Names of the two user locks for a database (≤ 64 characters). */
export function lockNames(database: string): { mutex: string; signal: string } {
  const h = createHash('sha256').update(database).digest('hex').slice(0, 40);
  return { mutex: `lifeboat-m-${h}`, signal: `lifeboat-s-${h}` };
}

/**
 * The always-true WHERE clause whose evaluation signals that the dump's
 * snapshot is open. The server evaluates it for every row of every table.
 *
 * MariaDB: the lock is taken once per dump session and remembered in a user
 * variable (COALESCE stops at its first non-NULL argument). GET_LOCK on every
 * row, as the subquery form does, costs an MDL request and a lock-hash
 * lookup per row: ~0.1 s of server CPU per 625,000 rows here, 0.4 s per
 * 500 MB dump on a 2-core machine that the dump already keeps busy.
 * MySQL 8 deprecates assignments inside expressions, so it keeps the subquery.
 */
export function signalWhere(signal: string, engine: MysqlServerEngine): string {
  if (engine === 'mariadb')
    return `COALESCE(@lifeboat_signal, @lifeboat_signal := GET_LOCK('${signal}', 0), 1) >= 0`;
  return `(SELECT COALESCE(GET_LOCK('${signal}', 0), 1)) >= 0`;
}

async function blockCommits(conn: MysqlConnection, how: CommitBlock): Promise<void> {
  if (how === 'backup-stage') {
    await conn.query('BACKUP STAGE START');
    await conn.query('BACKUP STAGE BLOCK_COMMIT');
  } else {
    await conn.query('FLUSH TABLES WITH READ LOCK');
  }
}

/** Seconds one attempt at the commit block may wait before it steps back and tries again. */
const BLOCK_ATTEMPT_SEC = 2;

/**
 * Block commits, waiting at most `budgetSec` in all. FLUSH TABLES WITH READ LOCK waits for running
 * statements, and a waiting FTWRL holds back new ones: a writer whose UPDATE waits for a row that
 * another writer locked earlier in its transaction can then never finish, because that other writer's
 * next statement waits behind the FTWRL. Nothing detects this cycle, so each attempt waits only a
 * short time; stepping back lets both writers finish, and the next attempt usually gets through.
 * Returns the number of attempts it took.
 */
async function blockCommitsPatiently(
  conn: MysqlConnection,
  how: CommitBlock,
  budgetSec: number,
): Promise<number> {
  const deadline = monotonicMs() + budgetSec * 1000;
  for (let attempt = 1; ; attempt++) {
    const leftSec = Math.ceil((deadline - monotonicMs()) / 1000);
    await conn.query('SET SESSION lock_wait_timeout = ?', [
      Math.max(1, Math.min(BLOCK_ATTEMPT_SEC, leftSec)),
    ]);
    try {
      await blockCommits(conn, how);
      return attempt;
    } catch (err) {
      const timedOut = (err as { errno?: number }).errno === 1205;
      if (how === 'backup-stage') await conn.query('BACKUP STAGE END').catch(() => {});
      if (!timedOut || monotonicMs() + 100 >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
    }
  }
}

async function unblockCommits(conn: MysqlConnection, how: CommitBlock): Promise<void> {
  await conn.query(how === 'backup-stage' ? 'BACKUP STAGE END' : 'UNLOCK TABLES');
}

async function readPosition(conn: MysqlConnection): Promise<Record<string, string>> {
  const position: Record<string, string> = {};
  try {
    const [master] = await rows<{ File?: string; Position?: string | number }>(conn, 'SHOW MASTER STATUS');
    if (master?.File) {
      position.binlogFile = master.File;
      position.binlogPosition = String(master.Position);
    }
  } catch {
    // Needs BINLOG MONITOR / REPLICATION CLIENT; the position is informative only.
  }
  for (const v of ['gtid_binlog_pos', 'gtid_executed']) {
    try {
      const [r] = await rows<{ v: string | null }>(conn, `SELECT @@GLOBAL.${v} AS v`);
      if (r?.v) position[v] = r.v;
    } catch {
      // Not this server family.
    }
  }
  return position;
}

/** Dump one database with a fingerprint of exactly the dumped snapshot (see the file comment). */
export async function dumpConsistently(
  repo: Repo,
  target: MysqlTarget,
  tools: MysqlTools,
  database: string,
  opts: ConsistentDumpOptions,
): Promise<ConsistentDump> {
  const what = `backing up database ${database}`;
  const { mutex, signal } = lockNames(database);
  const warnings: string[] = [];
  let control: MysqlConnection | undefined;
  let snap: MysqlConnection | undefined;
  let proc: StreamingProcess | undefined;
  let reader: RowReaderThread | undefined;
  let blocked = false;
  let blockedAt = 0;
  let commitsBlockedMs = 0;
  const unblock = async () => {
    if (!blocked || !control) return;
    blocked = false;
    commitsBlockedMs = monotonicMs() - blockedAt;
    await unblockCommits(control, opts.commitBlock);
  };
  // Made ready while we connect: not inside the window where commits are blocked.
  const draining = prepareDrain();
  try {
    control = await connectMysql(target, undefined, what);
    snap = await connectMysql(target, undefined, what);
    const [ids] = await rows<{ c: string | number }>(control, 'SELECT CONNECTION_ID() AS c');
    const [sid] = await rows<{ c: string | number }>(snap, 'SELECT CONNECTION_ID() AS c');
    const newestOurs = Math.max(Number(ids?.c), Number(sid?.c));

    const [got] = await rows<{ got: number | string | null }>(control, 'SELECT GET_LOCK(?, 0) AS got', [
      mutex,
    ]);
    if (Number(got?.got) !== 1) {
      throw new OperationError(
        'E_BACKUP_RUNNING',
        `another lifeboat backup of database ${database} is running on ${describeMysqlTarget(target, '')}`,
        {
          hint: 'Wait for it to finish (or stop it), then run the backup again.',
        },
      );
    }
    const [stray] = await rows<{ id: string | number | null }>(control, 'SELECT IS_USED_LOCK(?) AS id', [
      signal,
    ]);
    if (stray?.id !== null && stray?.id !== undefined) {
      throw new OperationError(
        'E_BACKUP_RUNNING',
        `an earlier dump of database ${database} is still running (connection ${stray.id})`,
        {
          hint: `Stop it (KILL ${stray.id}) or wait for it, then run the backup again.`,
        },
      );
    }
    await requireDatabaseWideSelect(control, target, database);
    let dumpArgs = opts.dumpArgs;
    if (/['"\\\p{Cc}]/u.test(database)) {
      // mariadb-dump escapes such a name as a string, then uses it as a name when it switches to the database for --events.
      const [ev] = await rows<{ n: string | number }>(
        control,
        'SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?',
        [database],
      );
      if (Number(ev?.n) > 0) {
        throw new OperationError(
          'E_MYSQL_UNSUPPORTED_NAME',
          `cannot dump the events of database ${database}: ${tools.dump} fails on database names containing quotes, backslashes or control characters when dumping events`,
          {
            hint: 'Rename the database, or move its events to another database.',
          },
        );
      }
      dumpArgs = dumpArgs.filter((a) => a !== '--events');
    }
    const [props] = await rows<{ charset: string; collation: string }>(
      control,
      `SELECT DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`,
      [database],
    );
    await prepareMysqlFingerprintSession(snap);
    const attempts = await blockCommitsPatiently(
      control,
      opts.commitBlock,
      Math.max(1, Math.trunc(opts.lockWaitTimeoutSec ?? 30)),
    );
    if (attempts > 1) {
      warnings.push(
        `database ${database}: commits could be blocked only at attempt ${attempts} (long-running statements or lock waits on the server)`,
      );
    }
    blocked = true;
    blockedAt = monotonicMs();
    const position = await readPosition(control);
    await snap.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');

    proc = await spawnDrained(
      [
        tools.dump,
        `--defaults-file=${opts.optionFile}`,
        ...dumpArgs,
        `--where=${signalWhere(signal, opts.engine)}`,
        '--',
        database,
      ],
      {
        env: mysqlToolEnv(),
        timeoutMs: opts.timeoutMs,
        stdoutBuffer: DUMP_TOOL_STDOUT_BUFFER,
      },
      draining,
    );
    const running = proc;
    let dumpEnded = false;
    const dumping = running.done.finally(() => {
      dumpEnded = true;
    });
    dumping.catch(() => {});
    // With checksums, every row is hashed as the dump streams past (dumpRows.ts): no second scan.
    // On a worker thread: this one drains the dump's pipe and chunks.
    const tap = (reader = opts.checksums ? startDumpRowThread() : undefined);
    // Rows as text compress ~2:1, where zstd's level 1 spends most of its time on short matches (FAST_FIRST_LEVEL).
    const saving = saveDumpStream(repo, running.stdout, tap, {
      onProgress: opts.onProgress,
      fastFirst: true,
    });
    saving.catch(() => running.kill('SIGKILL'));

    // Read the schema while commits (and DDL) are blocked: it is the schema of the snapshot.
    const snapConn = snap;
    const schema = (async () => {
      const tables = await listMysqlTables(snapConn, database);
      const digest = await mysqlSchemaDigest(snapConn, database);
      return { tables, digest };
    })();
    schema.catch(() => {});

    const maxBlockMs = opts.maxBlockMs ?? 60_000;
    for (;;) {
      const [holder] = await rows<{ id: string | number | null }>(control, 'SELECT IS_USED_LOCK(?) AS id', [
        signal,
      ]);
      if (holder?.id !== null && holder?.id !== undefined && Number(holder.id) > newestOurs) break;
      // A dump without any table to SELECT from ends while commits are still blocked: exact as well.
      if (dumpEnded) break;
      if (monotonicMs() - blockedAt > maxBlockMs) {
        throw new OperationError(
          'E_MYSQL_SNAPSHOT_TIMEOUT',
          `the dump of database ${database} did not open its snapshot within ${maxBlockMs} ms`,
          {
            hint: 'Commits were blocked meanwhile and are released now; check the server load and run the backup again.',
          },
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const { tables, digest } = await schema;
    await unblock();

    for (const t of tables) {
      if (!TRANSACTIONAL_ENGINES.has((t.engine ?? '').toLowerCase())) {
        warnings.push(
          `table ${database}.${t.name} uses the ${t.engine ?? 'unknown'} engine, which has no snapshots: ` +
            `writes to it during the dump may make it differ from the fingerprint`,
        );
      }
    }
    // Counts in S's snapshot: they must equal the dump's, which proves the two snapshots are one.
    const counted = await fingerprintMysqlTables(snap, database, tables, false, digest).catch(
      (err: unknown) => {
        running.kill('SIGKILL');
        throw err;
      },
    );
    try {
      await dumping;
    } catch (err) {
      await saving.catch(() => {});
      throw mysqlToolFailure('dump', what, err, target);
    }
    const saved = await saving;
    let fingerprint = counted;
    if (tap) {
      // Checksums on: counts and checksums come from the dump's rows.
      let fromDump: Awaited<ReturnType<RowReaderThread['result']>> | undefined;
      try {
        fromDump = await tap.result();
      } catch (err) {
        warnings.push(
          `database ${database}: could not read the dump's rows (${err instanceof Error ? err.message : String(err)}); the server computed the checksums instead`,
        );
      }
      fingerprint = fromDump
        ? withDumpChecksums(database, tables, counted, fromDump)
        : // Still inside S's snapshot: the server computes the checksums (one more scan).
          await fingerprintMysqlTables(snap, database, tables, true, digest);
    }
    await snap.query('COMMIT');
    return {
      saved,
      fingerprint,
      commitsBlockedMs,
      position,
      properties: props ? { charset: props.charset, collation: props.collation } : {},
      warnings,
    };
  } catch (err) {
    proc?.kill('SIGKILL');
    throw mysqlError(err, target, database, what);
  } finally {
    try {
      await unblock();
    } catch {
      // Closing the connection releases the block as well.
    }
    await closeMysql(snap);
    await closeMysql(control);
    await reader?.close();
    if (proc) await proc.done.catch(() => {});
    // Not given to a dump (a failure before it started), the drain still has to go.
    await (await draining)?.release();
  }
}
