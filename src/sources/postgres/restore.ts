/**
 * Restore of a `postgres` snapshot: the stored pg_dump archive streams from
 * the repository into pg_restore's stdin (with --jobs > 1 pg_restore needs a
 * seekable file, so the archive is spooled to a private temp file first).
 * Before anything is written the target is checked: it must be empty unless
 * `clean`, must exist unless `create`, and must not be the very database the
 * snapshot came from unless `force`. Afterwards the fingerprint is recomputed
 * on the restored database and every difference is returned: schema digest
 * by SQL, and — for backups whose checksums were taken from the archive's
 * rows — row counts and checksums by hashing the rows read back from the
 * restored database (readBack.ts), both at once.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LifeboatError, OperationError, UsageError } from '../../errors.js';
import { registerCleanup } from '../../platform/cleanup.js';
import { monotonicMs } from '../../platform/clock.js';
import { formatCommand, lastLines, spawnStreaming } from '../../platform/exec.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { redact } from '../../platform/redact.js';
import type { Repo } from '../../repository/api.js';
import type { TreeNode } from '../../repository/tree.js';
import { contentStream } from '../database/dumpStream.js';
import {
  compareDatabaseFingerprints,
  type DatabaseFingerprint,
  type Difference,
} from '../database/fingerprint.js';
import { loadDatabaseTree, type DumpEntry } from '../database/snapshotTree.js';
import type { DatabaseRestoreResult, DatabaseSnapshotRef } from '../database/results.js';
import { closePg, connectPg, pgError, type PgClient } from './client.js';
import {
  conninfoForDatabase,
  describePgTarget,
  describePgToolEnv,
  pgToolEnv,
  quoteIdent,
  resolvePgConnection,
  type PgConnectionSpec,
  type PgTarget,
} from './connection.js';
import { readBackRows } from './readBack.js';
import {
  fingerprintDatabase,
  fingerprintFromArchive,
  listTables,
  prepareFingerprintSession,
  ROWHASH_METHOD,
  schemaDigest,
} from './fingerprint.js';
import { findPgTools, type PgTools } from './tools.js';
import { pgToolFailure } from './toolFailure.js';
import { feedProcess } from '../database/feedProcess.js';
import {
  preparePostData,
  readPostDataHead,
  restoreListed,
  runPostData,
  type PostDataContext,
  type PostDataHead,
} from './postData.js';
import { loadTableData, planTableData } from './tableData.js';

export interface PostgresRestoreOptions {
  /** Server to restore into (its `database`, if any, is the target when one database is restored). */
  into: PgConnectionSpec;
  /** Restore only this database of the snapshot (default: every database in it). */
  database?: string;
  /** Name of the target database (one database only). Default: into.database, else the source name. */
  target?: string;
  /** Create the target database when it does not exist. */
  create: boolean;
  /** Allow a non-empty target: objects in the dump are dropped first (pg_restore --clean --if-exists). */
  clean: boolean;
  /** Also restore roles and tablespaces from globals.sql (before the databases). */
  globals: boolean;
  /**
   * Sessions loading the table data side by side (default 2; a large table is
   * split across them). With `clean`, pg_restore --jobs instead: above 1 the
   * archive is then spooled to a temp file first.
   */
  jobs?: number;
  /** Allow restoring over the very database the snapshot was taken from. */
  force: boolean;
  /** Check and plan only: return the commands, write nothing. */
  dryRun: boolean;
  /** Do not restore ownership (pg_restore --no-owner), for servers without the original roles. */
  noOwner?: boolean;
  /** Recompute and compare the fingerprint after restoring (default true). */
  verify?: boolean;
  binDir?: string;
  /** Where to spool the archive when jobs > 1 (default: the OS temp dir). */
  tempDir?: string;
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Two sessions load a table about 1.5–1.8x as fast as one (one backend's COPY
 * uses one core); more than the server's cores gain nothing.
 */
export const DEFAULT_RESTORE_SESSIONS = 2;

interface PlannedDatabase {
  dump: DumpEntry;
  node: TreeNode;
  target: string;
  exists: boolean;
}

function selectDumps(
  dumps: DumpEntry[],
  opts: { database?: string; target?: string },
  into: PgTarget,
): Array<{ dump: DumpEntry; target: string }> {
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

/** True when the connected database holds any user object (relations, functions, types, extra schemas). */
async function isNonEmpty(client: PgClient): Promise<boolean> {
  const r = await client.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)')
          + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
          + (SELECT count(*) FROM pg_namespace n
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)')
          AS n`,
  );
  return Number(r.rows[0]?.n ?? 0) > 0;
}

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

function createDatabaseSql(name: string, props: Record<string, string>): string {
  let sql = `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`;
  if (props.encoding) sql += ` ENCODING ${literal(props.encoding)}`;
  if (props.collate) sql += ` LC_COLLATE ${literal(props.collate)}`;
  if (props.ctype) sql += ` LC_CTYPE ${literal(props.ctype)}`;
  return sql;
}

async function serverIdentity(client: PgClient, target: PgTarget): Promise<string> {
  try {
    const r = await client.query<{ id: string }>(
      `SELECT system_identifier::text AS id FROM pg_control_system()`,
    );
    if (r.rows[0]?.id) return `pg-system:${r.rows[0].id}`;
  } catch {
    // See backup: host:port identifies the server instead.
  }
  return `pg-host:${target.host}:${target.port}`;
}

/** Fingerprint of a (restored) database with the same method as the backup. */
async function fingerprintOf(
  target: PgTarget,
  database: string,
  checksums: boolean,
  expected: DatabaseFingerprint | undefined,
  opts: { timeoutMs?: number; schemaReady?: Promise<void>; logger?: Logger } = {},
): Promise<DatabaseFingerprint> {
  const what = `verifying database ${database}`;
  const client = await connectPg(target, database, what);
  try {
    if (checksums && expected?.checksumMethod === ROWHASH_METHOD) {
      // The rows are read back while this session reads the catalog: the two overlap.
      const rows = readBackRows({
        target,
        database,
        copySettings: expected.copySettings,
        timeoutMs: opts.timeoutMs,
        what,
        logger: opts.logger,
      });
      rows.catch(() => {});
      // The schema digest waits for a post-data restore that runs beside the read-back.
      await opts.schemaReady?.catch(async (err: unknown) => {
        await rows.catch(() => {});
        throw err;
      });
      await prepareFingerprintSession(client);
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const tables = await listTables(client);
      const digest = await schemaDigest(client);
      await client.query('COMMIT');
      return fingerprintFromArchive(tables, digest, await rows, expected.copySettings);
    }
    await prepareFingerprintSession(client);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const tables = await listTables(client);
    const fp = await fingerprintDatabase(client, tables, checksums);
    await client.query('COMMIT');
    return fp;
  } catch (err) {
    throw pgError(err, target, database, what);
  } finally {
    await closePg(client);
  }
}

/**
 * Recompute the fingerprint of `database` and compare it with `expected`, as
 * a restore's verification does (for a database restored earlier, or by other means).
 */
export async function verifyPostgresDatabase(
  into: PgConnectionSpec,
  database: string,
  expected: DatabaseFingerprint,
  opts: { checksums: boolean; timeoutMs?: number; logger?: Logger },
): Promise<Difference[]> {
  const target = resolvePgConnection(into);
  const actual = await fingerprintOf(target, database, opts.checksums, expected, opts);
  return compareDatabaseFingerprints(database, expected, actual);
}

async function runPsqlScript(
  repo: Repo,
  tools: PgTools,
  target: PgTarget,
  database: string,
  node: TreeNode,
  label: string,
  timeoutMs: number | undefined,
): Promise<string[]> {
  // Not ON_ERROR_STOP: roles that already exist (at least the restoring user) fail harmlessly.
  const argv = [
    tools.psql,
    '-X',
    '-q',
    '--no-password',
    '-v',
    'ON_ERROR_STOP=0',
    `--dbname=${conninfoForDatabase(database)}`,
    '-f',
    '-',
  ];
  const proc = spawnStreaming(argv, { env: pgToolEnv(target, database), timeoutMs });
  const source = contentStream(repo, node.content ?? [], { size: node.size, sha256: node.sha256, label });
  const result = await feedProcess(source, proc, (err) =>
    pgToolFailure('psql', `restoring ${label}`, err, target),
  );
  return result.stderr
    .split('\n')
    .filter((l) => /ERROR:/.test(l) && !/already exists/.test(l))
    .map((l) => redact(l.trim()));
}

/** The stored archive of a planned database, as a stream. */
function archiveSource(repo: Repo, planned: PlannedDatabase) {
  return contentStream(repo, planned.node.content ?? [], {
    size: planned.node.size,
    sha256: planned.node.sha256,
    label: `dump of database ${planned.dump.database}`,
  });
}

async function restoreArchive(
  repo: Repo,
  tools: PgTools,
  target: PgTarget,
  planned: PlannedDatabase,
  argv: string[],
  opts: PostgresRestoreOptions,
): Promise<void> {
  const source = () => archiveSource(repo, planned);
  const what = `restoring database ${planned.dump.database} into ${planned.target}`;
  if ((opts.jobs ?? 1) > 1) {
    const dir = await mkdtemp(join(opts.tempDir ?? tmpdir(), 'lifeboat-pgrestore-'));
    const unregister = registerCleanup(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
    try {
      const file = join(dir, 'archive.dump');
      await pipeline(source(), createWriteStream(file, { mode: 0o600 }));
      const proc = spawnStreaming([...argv, file], {
        env: pgToolEnv(target, planned.target),
        timeoutMs: opts.timeoutMs,
      });
      proc.stdout.resume();
      await proc.done.catch((err: unknown) => {
        throw pgToolFailure('pg_restore', what, err, target);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
      unregister();
    }
    return;
  }
  const proc = spawnStreaming(argv, { env: pgToolEnv(target, planned.target), timeoutMs: opts.timeoutMs });
  await feedProcess(source(), proc, (err) => pgToolFailure('pg_restore', what, err, target));
}

/**
 * The data section of a sectioned restore: loaded by lifeboat over several
 * sessions when the archive is one it reads (tableData.ts), else by
 * pg_restore --section=data.
 */
async function restoreTableData(
  ctx: PostDataContext,
  head: PostDataHead,
  run: {
    repo: Repo;
    tools: PgTools;
    planned: PlannedDatabase;
    argv: string[];
    dbnameArg: string;
    sessions: number;
    what: string;
    opts: PostgresRestoreOptions;
  },
): Promise<void> {
  if (head.entries.size === 0) {
    const argv = run.argv.map((a) => (a === '--section=pre-data' ? '--section=data' : a));
    await restoreArchive(run.repo, run.tools, ctx.target, run.planned, argv, { ...run.opts, jobs: 1 });
    return;
  }
  const plan = planTableData(head.entries);
  await loadTableData(
    {
      source: ctx.source,
      entries: head.entries,
      target: ctx.target,
      database: ctx.database,
      sessions: run.sessions,
      what: run.what,
      ...(ctx.timeoutMs !== undefined ? { timeoutMs: ctx.timeoutMs } : {}),
      logger: ctx.logger,
    },
    plan,
  );
  if (plan.others.length > 0) await restoreListed({ ...ctx, what: run.what }, run.dbnameArg, plan.others);
}

/** Restore (or, with dryRun, plan) a `postgres` snapshot into a server, then verify it against the fingerprint. */
export async function restorePostgres(
  repo: Repo,
  snapshot: DatabaseSnapshotRef,
  opts: PostgresRestoreOptions,
): Promise<DatabaseRestoreResult> {
  const logger = opts.logger ?? silentLogger;
  // With --clean, jobs are pg_restore's: one unless asked, as spooling the archive costs a copy on disk.
  const jobs = Math.max(1, Math.trunc(opts.jobs || (opts.clean ? 1 : DEFAULT_RESTORE_SESSIONS)));
  const { manifest, files } = await loadDatabaseTree(repo, snapshot.tree, 'postgres');
  const target = resolvePgConnection(opts.into);
  const selected = selectDumps(manifest.dumps, opts, target);
  let maintenanceDb = 'postgres';
  const result: DatabaseRestoreResult = {
    dryRun: opts.dryRun,
    databases: [],
    differences: [],
    verified: false,
    commands: [],
    plan: [],
    warnings: [],
  };

  // Checks first, for every database, so that nothing is written when any of them must be refused.
  const admin = await connectPg(target, maintenanceDb, 'checking the restore target').catch(
    async (err: unknown) => {
      // A server without the `postgres` database: template1 always exists.
      if (!(err instanceof LifeboatError) || err.code !== 'E_DB_NOT_FOUND') throw err;
      maintenanceDb = 'template1';
      return connectPg(target, maintenanceDb, 'checking the restore target');
    },
  );
  let tools: PgTools;
  const planned: PlannedDatabase[] = [];
  try {
    const v = await admin.query<{ num: number; version: string }>(
      `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version`,
    );
    tools = await findPgTools(v.rows[0]?.num ?? 0, v.rows[0]?.version ?? '?', opts.binDir);
    const identity = await serverIdentity(admin, target);
    const existing = new Set(
      (await admin.query<{ datname: string }>(`SELECT datname FROM pg_database`)).rows.map((r) => r.datname),
    );
    for (const { dump, target: name } of selected) {
      const where = describePgTarget(target, name);
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
      if (exists && !opts.clean) {
        const client = await connectPg(target, name, `checking database ${name}`);
        try {
          if (await isNonEmpty(client)) {
            throw new UsageError(`refusing to restore into ${where}: the database is not empty`, {
              hint: 'Restore into an empty or new database (--create), or pass --clean to drop the objects of the dump first.',
            });
          }
        } catch (err) {
          throw pgError(err, target, name, `checking database ${name}`);
        } finally {
          await closePg(client);
        }
      }
      const node = files.get(dump.path) as TreeNode;
      planned.push({ dump, node, target: name, exists });
    }
  } catch (err) {
    throw pgError(err, target, maintenanceDb, 'checking the restore target');
  } finally {
    await closePg(admin);
  }

  const globalsNode = manifest.globals ? files.get(manifest.globals.path) : undefined;
  if (opts.globals && !globalsNode) {
    result.warnings.push(
      'the snapshot has no globals.sql (the job ran with globals: false); roles were not restored',
    );
  }
  const envText = (db: string) => describePgToolEnv(pgToolEnv(target, db));

  if (opts.globals && globalsNode) {
    const argv = [
      tools.psql,
      '-X',
      '-q',
      '--no-password',
      '-v',
      'ON_ERROR_STOP=0',
      `--dbname=${conninfoForDatabase(maintenanceDb)}`,
      '-f',
      '-',
    ];
    result.commands.push(`${envText(maintenanceDb)} ${formatCommand(argv)} < globals.sql`);
    result.plan.push(
      `restore roles and tablespaces from globals.sql (${globalsNode.size ?? 0} bytes) on ${describePgTarget(target, '')}`,
    );
    if (!opts.dryRun) {
      const errors = await runPsqlScript(
        repo,
        tools,
        target,
        maintenanceDb,
        globalsNode,
        'globals.sql',
        opts.timeoutMs,
      );
      for (const e of errors) result.warnings.push(`globals.sql: ${e}`);
    }
  }

  for (const p of planned) {
    const where = describePgTarget(target, p.target);
    const expected = manifest.fingerprint.databases[p.dump.database];
    // Into an empty database, lifeboat loads the table data itself over `jobs` sessions (tableData.ts);
    // --clean needs pg_restore's whole run (its DROPs come first, in dependency order).
    const sectioned = !opts.clean;
    // Verified by reading the rows back: post-data runs beside the verification.
    const overlap =
      sectioned &&
      opts.verify !== false &&
      manifest.fingerprint.checksums &&
      expected?.checksumMethod === ROWHASH_METHOD;
    const spooled = !sectioned && jobs > 1;
    const dbnameArg = `--dbname=${conninfoForDatabase(p.target)}`;
    const restoreOptions = ['--no-password', ...(opts.noOwner ? ['--no-owner'] : [])];
    const argv = [tools.pgRestore, dbnameArg, '--exit-on-error', ...restoreOptions];
    if (opts.clean) argv.push('--clean', '--if-exists');
    if (spooled) argv.push(`--jobs=${jobs}`);
    if (sectioned) argv.push('--section=pre-data');
    const createSql = createDatabaseSql(p.target, p.dump.properties);
    if (!p.exists) {
      result.plan.push(`create database ${where}`);
      result.commands.push(`SQL on ${describePgTarget(target, maintenanceDb)}: ${createSql}`);
    }
    result.plan.push(
      `restore ${p.dump.database} (${p.dump.size} bytes, pg_dump custom archive) into ${where}` +
        (opts.clean ? ', dropping the objects it contains first' : '') +
        (spooled ? `, spooled to a temp file for ${jobs} parallel jobs` : ', streamed') +
        (sectioned ? ': the schema (pre-data) first' : ''),
    );
    result.commands.push(
      `${envText(p.target)} ${formatCommand(spooled ? [...argv, '<temp file>'] : argv)}${spooled ? '' : ' < archive'}`,
    );
    if (sectioned) {
      result.plan.push(
        `then load the table data over ${jobs} session${jobs === 1 ? '' : 's'} (COPY … FROM stdin; ` +
          'a large table is cut into pieces of whole rows that the sessions load side by side); ' +
          'sequence values by SQL, any other data entries through pg_restore --use-list',
      );
      result.commands.push(`COPY <each table> FROM stdin on ${where}, ${jobs} sessions`);
      result.plan.push(
        `then restore indexes and constraints (post-data)` +
          (overlap ? ' while verification reads the rows back' : '') +
          ': simple PRIMARY KEY and UNIQUE constraints as CREATE UNIQUE INDEX + ADD CONSTRAINT … USING INDEX, ' +
          'everything else through pg_restore --use-list in the archive order',
      );
      result.commands.push(
        `${envText(p.target)} ${formatCommand([tools.pgRestore, dbnameArg, '--exit-on-error', '--use-list=<post-data entries>', ...restoreOptions])} < archive`,
      );
    }
    if (opts.verify !== false) result.plan.push(`verify ${where} against the snapshot fingerprint`);
    if (opts.dryRun) continue;

    const started = monotonicMs();
    if (!p.exists) {
      const admin2 = await connectPg(target, maintenanceDb, `creating database ${p.target}`);
      try {
        await admin2.query(createSql);
      } catch (err) {
        throw pgError(err, target, p.target, `creating database ${p.target}`);
      } finally {
        await closePg(admin2);
      }
    }
    logger.info(`restoring ${p.dump.database} into ${where}`);
    const what = `restoring database ${p.dump.database} into ${p.target}`;
    const ctx: PostDataContext = {
      source: () => archiveSource(repo, p),
      pgRestore: tools.pgRestore,
      restoreOptions,
      target,
      database: p.target,
      what: `restoring indexes and constraints of database ${p.dump.database} into ${p.target}`,
      timeoutMs: opts.timeoutMs,
      logger,
    };
    // The archive's head is read while pg_restore restores the schema.
    const head = sectioned ? readPostDataHead(ctx) : undefined;
    head?.catch(() => {});
    await restoreArchive(repo, tools, target, p, argv, { ...opts, jobs: spooled ? jobs : 1 }).catch(
      async (err: unknown) => {
        await head?.catch(() => {});
        throw err;
      },
    );
    let restoreMs = monotonicMs() - started;
    let postData: Promise<void> | undefined;
    if (head) {
      const h = await head;
      await restoreTableData(ctx, h, {
        repo,
        tools,
        planned: p,
        argv,
        dbnameArg,
        sessions: jobs,
        what,
        opts,
      });
      postData = preparePostData(ctx, h)
        .then((plan) => runPostData(ctx, dbnameArg, plan))
        .then(() => {
          restoreMs = monotonicMs() - started;
        });
      postData.catch(() => {});
      if (!overlap) {
        await postData;
        postData = undefined;
      }
    }
    let differences: Difference[] = [];
    let verifyMs = 0;
    if (opts.verify !== false) {
      const actual = await fingerprintOf(target, p.target, manifest.fingerprint.checksums, expected, {
        timeoutMs: opts.timeoutMs,
        schemaReady: postData,
        logger,
      }).catch(async (err: unknown) => {
        await postData?.catch(() => {});
        throw err;
      });
      // What verification added after the database was restored (it may have started beside post-data).
      verifyMs = monotonicMs() - started - restoreMs;
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
  result.verified = !opts.dryRun && opts.verify !== false && result.differences.length === 0;
  result.warnings = result.warnings.map(redact);
  if (result.warnings.length > 0) logger.warn(lastLines(result.warnings.join('\n'), 3));
  return result;
}

export type { DatabaseRestoreResult, DatabaseSnapshotRef };
