/**
 * A throwaway PostgreSQL server for a drill: the newest installed server binaries, a data
 * directory copied from an initdb template, a private Unix socket and no TCP listener,
 * durability switched off (fsync, full_page_writes, synchronous_commit — the data is
 * thrown away anyway). Superuser `lifeboat_drill` with trust authentication, which is safe
 * because only the socket exists and its directory is 0700. As root the server runs as
 * the `postgres` account (else `nobody`): PostgreSQL refuses to run as root.
 */
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { OperationError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import { lastLines, run, runChecked, spawnStreaming } from '../platform/exec.js';
import { freePort } from './freePort.js';
import { pgQueryValue, type PgConnectConfig } from './pgQuery.js';
import { checkFreeSpace, makeScratchDir, scratchParent } from './scratchDirs.js';
import { ScratchTracker } from './scratchState.js';
import { asAccount, chownForServer, serverAccount, type ServerAccount } from './serverAccount.js';
import { copyTemplateTo, dropTemplate } from './templateCache.js';
import { TrackedScratch } from './trackedScratch.js';
import type { ScratchDatabaseServer, ScratchBaseOptions } from './types.js';

/** The superuser of ephemeral servers (a name production clusters do not use, so restored roles never collide). */
export const DRILL_SUPERUSER = 'lifeboat_drill';

/** Unix socket paths are limited to 107 bytes; leave room for `/.s.PGSQL.NNNNN`. */
const MAX_SOCKET_DIR = 90;

export interface EphemeralPostgresOptions extends ScratchBaseOptions {
  /** defaults.scratchRoot; the OS temp directory when absent or not reachable by the server account. */
  root?: string;
  /** Bytes the restored databases will take (checked against free space). */
  neededBytes: number;
  /** Directory with initdb and postgres; default: the newest installed version. */
  binDir?: string;
  startTimeoutMs?: number;
}

/** Directories with a server installation (initdb + postgres), newest version first. */
export async function postgresServerBinDirs(): Promise<string[]> {
  const found: Array<{ dir: string; version: number }> = [];
  const scan = async (parent: string, re: RegExp, bin: (n: string) => string) => {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const m = re.exec(name);
      if (!m) continue;
      const dir = bin(name);
      const files = await readdir(dir).catch(() => [] as string[]);
      if (files.includes('initdb') && files.includes('postgres')) found.push({ dir, version: Number(m[1]) });
    }
  };
  await scan('/usr/lib/postgresql', /^(\d+(?:\.\d+)?)$/, (n) => join('/usr/lib/postgresql', n, 'bin'));
  await scan('/usr', /^pgsql-(\d+)$/, (n) => join('/usr', n, 'bin'));
  found.sort((a, b) => b.version - a.version);
  const dirs = found.map((f) => f.dir);
  if (dirs.length === 0) {
    const r = await run(['pg_config', '--bindir'], { timeoutMs: 10_000 }).catch(() => undefined);
    const dir = r?.code === 0 ? r.stdout.trim() : '';
    if (dir && (await readdir(dir).catch(() => [] as string[])).includes('initdb')) dirs.push(dir);
  }
  return dirs;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An ephemeral PostgreSQL server (see the file comment). */
export class EphemeralPostgres extends TrackedScratch implements ScratchDatabaseServer {
  readonly kind = 'ephemeral-postgres' as const;
  readonly engine = 'postgres' as const;
  readonly user = DRILL_SUPERUSER;
  dir = '';
  dataDir = '';
  socketDir = '';
  port = 0;
  /** `postgres --version` of the server, e.g. `postgres (PostgreSQL) 15.20`. */
  version = '';
  /** Whether this provisioning had to build the initdb template first. */
  templateBuilt = false;

  constructor(tracker: ScratchTracker, onInterrupt?: () => void) {
    super(tracker, onInterrupt);
  }

  /** Where restorePostgres connects (a PgConnectionSpec). */
  connection(): { socketDir: string; port: number; user: string } {
    return { socketDir: this.socketDir, port: this.port, user: this.user };
  }

  private connectConfig(): PgConnectConfig {
    return { host: this.socketDir, port: this.port, user: this.user };
  }

  async databaseFor(source: string): Promise<string> {
    return source;
  }

  queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown> {
    return pgQueryValue(this.connectConfig(), database, sql, timeoutMs);
  }

  clientEnv(database: string): Record<string, string> {
    return { PGHOST: this.socketDir, PGPORT: String(this.port), PGUSER: this.user, PGDATABASE: database };
  }

  static async create(opts: EphemeralPostgresOptions): Promise<EphemeralPostgres> {
    const binDir = opts.binDir ?? (await postgresServerBinDirs())[0];
    if (!binDir) {
      throw new OperationError(
        'E_SCRATCH_NO_SERVER',
        'no PostgreSQL server installation found for the drill',
        {
          hint: 'Install the server package (e.g. apt install postgresql), or use drill.scratch: existing with drill.server.',
        },
      );
    }
    const account = await serverAccount(['postgres']);
    const tracker = await ScratchTracker.create(opts.stateDir, {
      kind: 'ephemeral-postgres',
      job: opts.job,
      createdAt: opts.now,
      ...(opts.runId ? { runId: opts.runId } : {}),
    });
    const env = new EphemeralPostgres(tracker, opts.onInterrupt);
    await env.provision(() => env.start(opts, binDir, account));
    return env;
  }

  private async start(opts: EphemeralPostgresOptions, binDir: string, account: ServerAccount): Promise<void> {
    const version = (
      await runChecked([join(binDir, 'postgres'), '--version'], { timeoutMs: 15_000 })
    ).stdout.trim();
    this.version = version;
    const parent = await scratchParent(opts.root, account);
    await checkFreeSpace(parent, opts.neededBytes, `an ephemeral PostgreSQL server for ${opts.job}`);
    this.dir = await makeScratchDir(this.tracker, parent, 'pg');
    this.dataDir = join(this.dir, 'data');
    this.socketDir = join(this.dir, 'run');
    if (this.socketDir.length > MAX_SOCKET_DIR) {
      this.socketDir = await makeScratchDir(this.tracker, '/tmp', 'pgsock');
    } else {
      await mkdir(this.socketDir, { mode: 0o700 });
    }
    await chownForServer(this.dir, account);
    await chownForServer(this.socketDir, account);
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' };
    const key = `postgres-${version.replace(/^\D+/, '')}-${account.uid ?? 'self'}-wal1`;
    const template = {
      parent,
      key,
      account,
      build: async (dataDir: string) => {
        await runChecked(
          [
            join(binDir, 'initdb'),
            '-D',
            dataDir,
            '-U',
            DRILL_SUPERUSER,
            '--auth=trust',
            '-E',
            'UTF8',
            '--locale=C',
            '--no-sync',
            // 1 MiB WAL segments instead of 16: a smaller template to copy for every drill.
            '--wal-segsize=1',
          ],
          { env, cwd: join(dataDir, '..'), timeoutMs: 120_000, ...asAccount(account) },
        );
      },
    };
    const copied = await copyTemplateTo(template, this.dataDir);
    this.templateBuilt = copied.built;
    this.port = await freePort();
    await this.track({ type: 'process', mention: this.dataDir, signal: 'SIGQUIT' });
    try {
      await this.launch(binDir, env, account, opts.startTimeoutMs ?? 30_000);
    } catch (err) {
      // A template that cannot start a server is rebuilt next time.
      if (!copied.built) await dropTemplate(parent, key);
      throw err;
    }
    this.description =
      `ephemeral PostgreSQL ${/\)\s*(\S+)/.exec(version)?.[1] ?? version} server, socket ${this.socketDir} port ${this.port}` +
      ` (user ${this.user}, runs as ${account.name})`;
  }

  private async launch(
    binDir: string,
    env: NodeJS.ProcessEnv,
    account: ServerAccount,
    timeoutMs: number,
  ): Promise<void> {
    const settings: Record<string, string> = {
      listen_addresses: '',
      unix_socket_directories: this.socketDir,
      unix_socket_permissions: '0700',
      fsync: 'off',
      full_page_writes: 'off',
      synchronous_commit: 'off',
      wal_level: 'minimal',
      max_wal_senders: '0',
      archive_mode: 'off',
      autovacuum: 'off',
      max_wal_size: '4GB',
      checkpoint_timeout: '1h',
      max_connections: '30',
      logging_collector: 'off',
      log_min_messages: 'warning',
      log_checkpoints: 'off',
    };
    const argv = [join(binDir, 'postgres'), '-D', this.dataDir, '-p', String(this.port)];
    for (const [k, v] of Object.entries(settings)) argv.push('-c', `${k}=${v}`);
    const server = spawnStreaming(argv, { env, cwd: this.dir, ...asAccount(account) });
    server.stdout.resume();
    let exited: string | undefined;
    server.done.then(
      () => (exited = 'the server exited'),
      (err: Error) => (exited = err.message),
    );
    const t0 = monotonicMs();
    for (;;) {
      if (exited !== undefined) {
        throw new OperationError(
          'E_SCRATCH_START',
          `the ephemeral PostgreSQL server did not start: ${lastLines(exited)}`,
          {
            hint: `Its data directory is ${this.dataDir}; run the drill again with --verbose, or check free space and shared memory limits.`,
          },
        );
      }
      const pidFile = await readFile(join(this.dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
      // Line 8 of postmaster.pid is the server status; `ready` once it accepts connections.
      if (pidFile.split('\n')[7]?.trim() === 'ready') return;
      if (monotonicMs() - t0 > timeoutMs) {
        server.kill('SIGQUIT');
        throw new OperationError(
          'E_SCRATCH_START',
          `the ephemeral PostgreSQL server was not ready after ${timeoutMs} ms`,
          {
            hint: 'The machine may be overloaded; try again, or use drill.scratch: existing.',
          },
        );
      }
      await sleep(15);
    }
  }
}
