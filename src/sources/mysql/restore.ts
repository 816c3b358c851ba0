/**
 * Restore of a `mysql` snapshot through the `mariadb`/`mysql` client: the
 * stored dump streams from the repository into the client's stdin. Before
 * anything is written the target is checked: it must be empty unless `clean`
 * (the dump drops and recreates each of its tables, views, triggers, routines
 * and events), must exist unless `create`, and must not be the very database
 * the snapshot came from unless `force`. Afterwards the fingerprint is
 * recomputed on the restored database and every difference is returned.
 */
import type { Readable } from 'node:stream';
import { OperationError, UsageError } from '../../errors.js';
import { monotonicMs } from '../../platform/clock.js';
import { formatCommand, spawnStreaming } from '../../platform/exec.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { redact } from '../../platform/redact.js';
import type { Repo } from '../../repository/api.js';
import type { TreeNode } from '../../repository/tree.js';
import { contentStream, DUMP_TOOL_STDOUT_BUFFER } from '../database/dumpStream.js';
import { feedProcess } from '../database/feedProcess.js';
import {
  compareDatabaseFingerprints,
  type DatabaseFingerprint,
  type Difference,
} from '../database/fingerprint.js';
import type { DatabaseRestoreResult, DatabaseSnapshotRef } from '../database/results.js';
import { loadDatabaseTree, type DumpEntry } from '../database/snapshotTree.js';
import { mysqlServerIdentity } from './backup.js';
import { closeMysql, connectMysql, mysqlError, rows, type MysqlConnection } from './client.js';
import {
  describeMysqlTarget,
  mysqlToolEnv,
  quoteMysqlIdent,
  resolveMysqlConnection,
  withOptionFile,
  type MysqlConnectionSpec,
  type MysqlTarget,
} from './connection.js';
import { startDumpRowThread } from './dumpRows.js';
import {
  fingerprintFromDump,
  fingerprintMysqlTables,
  listMysqlTables,
  mysqlSchemaDigest,
  prepareMysqlFingerprintSession,
  ROWHASH_METHOD,
} from './fingerprint.js';
import {
  dumpCharacterSetOf,
  dumpOptions,
  findMysqlTools,
  type DumpCharacterSet,
  type MysqlTools,
} from './tools.js';
import { mysqlToolFailure } from './toolFailure.js';

export interface MysqlRestoreOptions {
  /** Server to restore into (its `database`, if any, is the target when one database is restored). */
  into: MysqlConnectionSpec;
  /** Restore only this database of the snapshot (default: every database in it). */
  database?: string;
  /** Name of the target database (one database only). Default: into.database, else the source name. */
  target?: string;
  /** Create the target database (with the source's character set and collation) when it does not exist. */
  create: boolean;
  /** Allow a non-empty target: the dump replaces each object it contains; other objects stay. */
  clean: boolean;
  /** Also replay grants.sql (users, roles, grants) before the databases. */
  globals: boolean;
  /** Accepted for symmetry with postgres; the client loads one stream, so only 1 is meaningful. */
  jobs?: number;
  /** Allow restoring over the very database the snapshot was taken from. */
  force: boolean;
  /** Check and plan only: return the commands, write nothing. */
  dryRun: boolean;
  /** Recompute and compare the fingerprint after restoring (default true). */
  verify?: boolean;
  binDir?: string;
  /** Where the private option file is written (default: the OS temp dir). */
  tempDir?: string;
  timeoutMs?: number;
  logger?: Logger;
}

interface PlannedDatabase {
  dump: DumpEntry;
  node: TreeNode;
  target: string;
  exists: boolean;
}

function selectDumps(dumps: DumpEntry[], opts: { database?: string; target?: string }, into: MysqlTarget) {
  let chosen = dumps;
  if (opts.database !== undefined) {
    chosen = dumps.filter((d) => d.database === opts.database);
    if (chosen.length === 0) {
      throw new UsageError(`the snapshot has no database ${JSON.stringify(opts.database)}`, {
        hint: `It holds: ${dumps.map((d) => JSON.stringify(d.database)).join(', ') || '(none)'}.`,
      });
    }
  }
  if (chosen.length === 1) {
    const only = chosen[0] as DumpEntry;
    return [{ dump: only, target: opts.target ?? into.database ?? only.database }];
  }
  if (opts.target !== undefined) {
    throw new UsageError(
      `a target name can only be given when restoring one database; the snapshot holds ${chosen.length}`,
      {
        hint: 'Pick one database of the snapshot (--database NAME) to restore it under another name.',
      },
    );
  }
  return chosen.map((dump) => ({ dump, target: dump.database }));
}

async function isNonEmpty(conn: MysqlConnection, database: string): Promise<boolean> {
  const [r] = await rows<{ n: string | number }>(
    conn,
    `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?)
          + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)
          + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) AS n`,
    [database, database, database],
  );
  return Number(r?.n ?? 0) > 0;
}

function createDatabaseSql(name: string, props: Record<string, string>): string {
  let sql = `CREATE DATABASE ${quoteMysqlIdent(name)}`;
  if (props.charset && /^\w+$/.test(props.charset)) sql += ` CHARACTER SET ${props.charset}`;
  if (props.collation && /^\w+$/.test(props.collation)) sql += ` COLLATE ${props.collation}`;
  return sql;
}

/**
 * Data-only dumps that verification runs side by side. Measured on a restored
 * sysbench-like database (4 tables, 478 MiB of dump text, 2 cores): one dump
 * 3.49-3.55 s, two dumps of two tables each 2.72-2.77 s. The server reads each
 * dump's tables on its own thread, so one large table is not split.
 */
const VERIFY_DUMPS = 2;
/** Above this many tables, one dump of the whole database (a command line per table list stays short). */
const MAX_LISTED_TABLES = 1000;

/**
 * The base tables of `database` in VERIFY_DUMPS groups of about equal size
 * (largest first, each to the smallest group), or one group meaning "the
 * whole database" when splitting would not help.
 */
async function verifyGroups(conn: MysqlConnection, database: string): Promise<(string[] | undefined)[]> {
  const tables = await rows<{ name: string; size: string | number | null }>(
    conn,
    `SELECT TABLE_NAME AS name, DATA_LENGTH AS size FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`,
    [database],
  );
  if (tables.length < 2 || tables.length > MAX_LISTED_TABLES) return [undefined];
  return splitBySize(
    tables.map((t) => ({ name: t.name, size: Number(t.size ?? 0) })),
    VERIFY_DUMPS,
  );
}

/** Tables in at most `count` groups of about equal total size: largest first, each into the smallest group. */
export function splitBySize(tables: readonly { name: string; size: number }[], count: number): string[][] {
  const groups = Array.from({ length: count }, () => ({ names: [] as string[], size: 0 }));
  for (const t of [...tables].sort((a, b) => b.size - a.size)) {
    const smallest = groups.reduce((a, b) => (b.size < a.size ? b : a));
    smallest.names.push(t.name);
    smallest.size += t.size;
  }
  return groups.filter((g) => g.names.length > 0).map((g) => g.names);
}

/**
 * Rows and checksums of the tables of `database` (all of them, or those
 * named), from a data-only dump streamed to us.
 */
async function dumpRowsOf(
  tools: MysqlTools,
  optionFile: string,
  database: string,
  serverIsMariadb: boolean,
  characterSet: DumpCharacterSet,
  timeoutMs: number | undefined,
  tables?: readonly string[],
) {
  const argv = [
    tools.dump,
    `--defaults-file=${optionFile}`,
    ...dumpOptions(tools, serverIsMariadb, characterSet),
    // Rows only: the same INSERT text as the backup's dump, nothing else.
    '--no-create-info',
    '--skip-triggers',
    '--skip-routines',
    '--skip-events',
    '--',
    database,
    ...(tables ?? []),
  ];
  const proc = spawnStreaming(argv, {
    env: mysqlToolEnv(),
    timeoutMs,
    stdoutBuffer: DUMP_TOOL_STDOUT_BUFFER,
  });
  // On a worker thread: this one only drains the pipe, so the dump tool never waits for the hashing.
  const reader = startDumpRowThread();
  try {
    const reading = (async () => {
      for await (const chunk of proc.stdout) await reader.push(chunk as Uint8Array);
    })();
    reading.catch(() => proc.kill('SIGKILL'));
    await proc.done;
    await reading;
    return await reader.result();
  } finally {
    await reader.close();
  }
}

/** Fingerprint of a (restored) database with the same method as the backup. */
async function fingerprintOf(
  target: MysqlTarget,
  database: string,
  checksums: boolean,
  expected: DatabaseFingerprint | undefined,
  tools: MysqlTools,
  optionFile: string,
  timeoutMs: number | undefined,
) {
  const what = `verifying database ${database}`;
  const conn = await connectMysql(target, undefined, what);
  try {
    await prepareMysqlFingerprintSession(conn);
    if (checksums && expected?.checksumMethod === ROWHASH_METHOD) {
      const [v] = await rows<{ v: string }>(conn, 'SELECT VERSION() AS v');
      const mariadb = /mariadb/i.test(v?.v ?? '');
      // Dumped as the backup's dump was: the row text depends on the character set.
      const characterSet = dumpCharacterSetOf(expected);
      // The dumps stream the rows while this session reads the schema: they overlap.
      const dumps = (await verifyGroups(conn, database)).map((group) =>
        dumpRowsOf(tools, optionFile, database, mariadb, characterSet, timeoutMs, group),
      );
      // Every dump ends before the answer, also when one fails: no dump outlives the verification.
      const fromDump = Promise.allSettled(dumps).then((settled) => {
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw mysqlToolFailure('dump', what, failed.reason, target);
        return new Map(settled.flatMap((s) => (s.status === 'fulfilled' ? [...s.value] : [])));
      });
      fromDump.catch(() => {});
      const tables = await listMysqlTables(conn, database);
      const digest = await mysqlSchemaDigest(conn, database);
      return fingerprintFromDump(tables, digest, await fromDump);
    }
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const tables = await listMysqlTables(conn, database);
    const digest = await mysqlSchemaDigest(conn, database);
    const fp = await fingerprintMysqlTables(conn, database, tables, checksums, digest);
    await conn.query('COMMIT');
    return fp;
  } catch (err) {
    throw mysqlError(err, target, database, what);
  } finally {
    await closeMysql(conn);
  }
}

/**
 * Recompute the fingerprint of `database` and compare it with `expected`, as
 * a restore's verification does (for a database restored earlier, or by other means).
 */
export async function verifyMysqlDatabase(
  into: MysqlConnectionSpec,
  database: string,
  expected: DatabaseFingerprint,
  opts: { checksums: boolean; binDir?: string; tempDir?: string; timeoutMs?: number },
): Promise<Difference[]> {
  const target = resolveMysqlConnection(into);
  const tools = await findMysqlTools(opts.binDir);
  const actual = await withOptionFile(
    target,
    tools.flavor,
    (file) => fingerprintOf(target, database, opts.checksums, expected, tools, file, opts.timeoutMs),
    opts.tempDir,
  );
  return compareDatabaseFingerprints(database, expected, actual);
}

const source = (repo: Repo, node: TreeNode, label: string): Readable =>
  contentStream(repo, node.content ?? [], { size: node.size, sha256: node.sha256, label });

/** Restore (or, with dryRun, plan) a `mysql` snapshot into a server, then verify it against the fingerprint. */
export async function restoreMysql(
  repo: Repo,
  snapshot: DatabaseSnapshotRef,
  opts: MysqlRestoreOptions,
): Promise<DatabaseRestoreResult> {
  const logger = opts.logger ?? silentLogger;
  const { manifest, files } = await loadDatabaseTree(repo, snapshot.tree, 'mysql');
  const target = resolveMysqlConnection(opts.into);
  const selected = selectDumps(manifest.dumps, opts, target);
  const tools: MysqlTools = await findMysqlTools(opts.binDir);
  const result: DatabaseRestoreResult = {
    dryRun: opts.dryRun,
    databases: [],
    differences: [],
    verified: false,
    commands: [],
    plan: [],
    warnings: [],
  };
  if ((opts.jobs ?? 1) > 1)
    result.warnings.push(`jobs=${opts.jobs} ignored: the ${tools.client} client loads a dump as one stream`);

  const planned: PlannedDatabase[] = [];
  const admin = await connectMysql(target, undefined, 'checking the restore target');
  try {
    const identity = await mysqlServerIdentity(admin);
    const existing = new Set(
      (await rows<{ s: string }>(admin, 'SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA')).map(
        (r) => r.s,
      ),
    );
    for (const { dump, target: name } of selected) {
      const where = describeMysqlTarget(target, name);
      const exists = existing.has(name);
      // Recreating a source that is gone is the disaster case and needs no force; overwriting it does.
      if (
        exists &&
        identity === manifest.fingerprint.serverIdentity &&
        name === dump.database &&
        !opts.force
      ) {
        throw new UsageError(
          `refusing to restore over ${where}: it is the database this snapshot was taken from`,
          {
            hint: 'Restore into another database (--into …/other_name, --create) or pass --force to overwrite the source.',
          },
        );
      }
      if (!exists && !opts.create) {
        throw new OperationError('E_DB_NOT_FOUND', `target database ${where} does not exist`, {
          hint: 'Pass --create to create it, or name an existing empty database.',
        });
      }
      if (exists && !opts.clean && (await isNonEmpty(admin, name))) {
        throw new UsageError(`refusing to restore into ${where}: the database is not empty`, {
          hint: 'Restore into an empty or new database (--create), or pass --clean to replace the objects of the dump.',
        });
      }
      planned.push({ dump, node: files.get(dump.path) as TreeNode, target: name, exists });
    }
  } catch (err) {
    throw mysqlError(err, target, undefined, 'checking the restore target');
  } finally {
    await closeMysql(admin);
  }

  const grantsNode = manifest.globals ? files.get(manifest.globals.path) : undefined;
  if (opts.globals && !grantsNode) {
    result.warnings.push(
      'the snapshot has no grants.sql (the job ran with usersAndGrants: false); accounts were not restored',
    );
  }
  const shownFile = '--defaults-file=<private option file, mode 0600>';
  const clientArgv = (file: string, database?: string, force = false) => [
    tools.client,
    `--defaults-file=${file}`,
    '--binary-mode',
    ...(force ? ['--force'] : []),
    ...(database !== undefined ? [`--database=${database}`] : []),
  ];
  const shown = (argv: string[]) =>
    formatCommand(argv.map((a) => (a.startsWith('--defaults-file=') ? shownFile : a)));

  if (opts.globals && grantsNode) {
    result.plan.push(
      `replay users, roles and grants from grants.sql (${grantsNode.size ?? 0} bytes) on ${describeMysqlTarget(target, '')}`,
    );
    result.commands.push(`${shown(clientArgv('x', undefined, true))} < grants.sql`);
  }
  for (const p of planned) {
    const where = describeMysqlTarget(target, p.target);
    if (!p.exists) {
      result.plan.push(`create database ${where}`);
      result.commands.push(`SQL: ${createDatabaseSql(p.target, p.dump.properties)}`);
    }
    result.plan.push(
      `restore ${p.dump.database} (${p.dump.size} bytes of SQL) into ${where}` +
        (opts.clean ? ', replacing the objects it contains' : ''),
    );
    result.commands.push(`${shown(clientArgv('x', p.target))} < ${p.dump.path}`);
    if (opts.verify !== false) result.plan.push(`verify ${where} against the snapshot fingerprint`);
  }
  if (opts.dryRun) return result;

  await withOptionFile(
    target,
    tools.flavor,
    async (file) => {
      if (opts.globals && grantsNode) {
        // --force: an account that cannot be recreated (e.g. a plugin missing here) must not stop the rest.
        const proc = spawnStreaming(clientArgv(file, undefined, true), {
          env: mysqlToolEnv(),
          timeoutMs: opts.timeoutMs,
        });
        const r = await feedProcess(source(repo, grantsNode, 'grants.sql'), proc, (err) =>
          mysqlToolFailure('client', 'replaying grants.sql', err, target),
        );
        for (const line of r.stderr.split('\n').filter((l) => /ERROR/.test(l)))
          result.warnings.push(`grants.sql: ${line.trim()}`);
      }
      for (const p of planned) {
        const started = monotonicMs();
        if (!p.exists) {
          const conn = await connectMysql(target, undefined, `creating database ${p.target}`);
          try {
            await conn.query(createDatabaseSql(p.target, p.dump.properties));
          } catch (err) {
            throw mysqlError(err, target, p.target, `creating database ${p.target}`);
          } finally {
            await closeMysql(conn);
          }
        }
        logger.info(`restoring ${p.dump.database} into ${describeMysqlTarget(target, p.target)}`);
        const what = `restoring database ${p.dump.database} into ${p.target}`;
        const proc = spawnStreaming(clientArgv(file, p.target), {
          env: mysqlToolEnv(),
          timeoutMs: opts.timeoutMs,
        });
        await feedProcess(source(repo, p.node, `dump of database ${p.dump.database}`), proc, (err) =>
          mysqlToolFailure('client', what, err, target),
        );
        const restoreMs = monotonicMs() - started;
        let differences: Difference[] = [];
        let verifyMs = 0;
        if (opts.verify !== false) {
          const expected = manifest.fingerprint.databases[p.dump.database];
          const t0 = monotonicMs();
          const actual = await fingerprintOf(
            target,
            p.target,
            manifest.fingerprint.checksums,
            expected,
            tools,
            file,
            opts.timeoutMs,
          );
          verifyMs = monotonicMs() - t0;
          differences = expected
            ? compareDatabaseFingerprints(p.target, expected, actual)
            : [{ kind: 'database-missing', database: p.dump.database }];
        }
        result.differences.push(...differences);
        result.databases.push({
          source: p.dump.database,
          target: p.target,
          created: !p.exists,
          bytes: p.dump.size,
          restoreMs,
          verifyMs,
          differences,
        });
      }
    },
    opts.tempDir,
  );
  result.verified = opts.verify !== false && result.differences.length === 0;
  result.warnings = result.warnings.map(redact);
  return result;
}
