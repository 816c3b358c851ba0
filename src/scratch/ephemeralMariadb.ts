/**
 * A throwaway MariaDB server for a drill: a data directory copied from a
 * `mariadb-install-db` template, a socket in a private directory plus TCP on 127.0.0.1
 * only, durability off (the data is thrown away), and a random root password set at
 * start (--init-file), so nobody else on the machine can read the restored copy. As root
 * the server runs as the `mysql` account (else `nobody`).
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OperationError } from '../errors.js';
import { monotonicMs } from '../platform/clock.js';
import { lastLines, runChecked, spawnStreaming } from '../platform/exec.js';
import { registerSecret } from '../platform/redact.js';
import { freePort } from './freePort.js';
import { mysqlQueryValue, type MysqlConnectConfig } from './mysqlQuery.js';
import { checkFreeSpace, makeScratchDir, scratchParent } from './scratchDirs.js';
import { ScratchTracker } from './scratchState.js';
import { asAccount, chownForServer, serverAccount, type ServerAccount } from './serverAccount.js';
import { copyTemplateTo, dropTemplate } from './templateCache.js';
import { TrackedScratch } from './trackedScratch.js';
import type { ScratchDatabaseServer, ScratchBaseOptions } from './types.js';

const MAX_SOCKET_PATH = 100;

/** Server settings shared by the template build and the server: small, fast, not durable. */
const INNODB = [
  '--innodb-log-file-size=16M',
  '--innodb-buffer-pool-size=64M',
  '--innodb-flush-log-at-trx-commit=0',
  '--innodb-doublewrite=0',
  '--innodb-flush-method=nosync',
];

export interface EphemeralMariadbOptions extends ScratchBaseOptions {
  root?: string;
  neededBytes: number;
  startTimeoutMs?: number;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The server and install programs of the MariaDB installation. */
export async function findMariadbPrograms(): Promise<{ server: string; installDb: string } | undefined> {
  const dirs = [
    ...(process.env.PATH ?? '').split(':'),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/libexec',
    '/usr/bin',
  ];
  const find = async (names: string[]) => {
    for (const dir of dirs.filter(Boolean)) {
      for (const name of names) if (await exists(join(dir, name))) return join(dir, name);
    }
    return undefined;
  };
  const server = await find(['mariadbd']);
  const installDb = await find(['mariadb-install-db', 'mysql_install_db']);
  return server && installDb ? { server, installDb } : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An ephemeral MariaDB server (see the file comment). */
export class EphemeralMariadb extends TrackedScratch implements ScratchDatabaseServer {
  readonly kind = 'ephemeral-mysql' as const;
  readonly engine = 'mysql' as const;
  readonly user = 'root';
  dir = '';
  dataDir = '';
  socket = '';
  port = 0;
  version = '';
  templateBuilt = false;
  private password = '';

  constructor(tracker: ScratchTracker, onInterrupt?: () => void) {
    super(tracker, onInterrupt);
  }

  /** Where restoreMysql connects (a MysqlConnectionSpec). */
  connection(): { socket: string; user: string; password: string } {
    return { socket: this.socket, user: this.user, password: this.password };
  }

  private connectConfig(): MysqlConnectConfig {
    return { socketPath: this.socket, user: this.user, password: this.password };
  }

  async databaseFor(source: string): Promise<string> {
    return source;
  }

  queryValue(database: string, sql: string, timeoutMs: number): Promise<unknown> {
    return mysqlQueryValue(this.connectConfig(), database, sql, timeoutMs);
  }

  clientEnv(database: string): Record<string, string> {
    return {
      MYSQL_HOST: '127.0.0.1',
      MYSQL_TCP_PORT: String(this.port),
      MYSQL_UNIX_PORT: this.socket,
      MYSQL_PWD: this.password,
      LIFEBOAT_DRILL_USER: this.user,
      LIFEBOAT_DRILL_DATABASE: database,
    };
  }

  static async create(opts: EphemeralMariadbOptions): Promise<EphemeralMariadb> {
    const programs = await findMariadbPrograms();
    if (!programs) {
      throw new OperationError('E_SCRATCH_NO_SERVER', 'no MariaDB server installation found for the drill', {
        hint: 'Install the server package (e.g. apt install mariadb-server), or use drill.scratch: existing with drill.server.',
      });
    }
    const account = await serverAccount(['mysql']);
    const tracker = await ScratchTracker.create(opts.stateDir, {
      kind: 'ephemeral-mysql',
      job: opts.job,
      createdAt: opts.now,
      ...(opts.runId ? { runId: opts.runId } : {}),
    });
    const env = new EphemeralMariadb(tracker, opts.onInterrupt);
    await env.provision(() => env.start(opts, programs, account));
    return env;
  }

  private async start(
    opts: EphemeralMariadbOptions,
    programs: { server: string; installDb: string },
    account: ServerAccount,
  ): Promise<void> {
    this.version = (await runChecked([programs.server, '--version'], { timeoutMs: 15_000 })).stdout.trim();
    const parent = await scratchParent(opts.root, account);
    await checkFreeSpace(parent, opts.neededBytes, `an ephemeral MariaDB server for ${opts.job}`);
    this.dir = await makeScratchDir(this.tracker, parent, 'mariadb');
    this.dataDir = join(this.dir, 'data');
    let runDir = join(this.dir, 'run');
    if (join(runDir, 'mysqld.sock').length > MAX_SOCKET_PATH)
      runDir = await makeScratchDir(this.tracker, '/tmp', 'mysock');
    else await mkdir(runDir, { mode: 0o700 });
    await mkdir(join(this.dir, 'tmp'), { mode: 0o700 });
    this.socket = join(runDir, 'mysqld.sock');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' };
    const key = `mariadb-${/\bVer\s+(\S+)/.exec(this.version)?.[1] ?? 'unknown'}-${account.uid ?? 'self'}`;
    const copied = await copyTemplateTo(
      {
        parent,
        key,
        account,
        build: async (dataDir) => {
          await runChecked(
            [
              programs.installDb,
              '--no-defaults',
              '--auth-root-authentication-method=normal',
              `--datadir=${dataDir}`,
              '--skip-test-db',
              '--skip-name-resolve',
              ...INNODB,
            ],
            { env, cwd: join(dataDir, '..'), timeoutMs: 180_000, ...asAccount(account) },
          );
        },
      },
      this.dataDir,
    );
    this.templateBuilt = copied.built;
    this.password = randomBytes(18).toString('base64url');
    registerSecret(this.password);
    // Every root account gets the random password; the template's accounts have none.
    const users = ["'root'@'localhost'", "'root'@'127.0.0.1'", "'root'@'::1'"];
    const initFile = join(runDir, 'init.sql');
    await writeFile(
      initFile,
      users.map((u) => `ALTER USER IF EXISTS ${u} IDENTIFIED BY '${this.password}';`).join('\n') + '\n',
      { mode: 0o600 },
    );
    await chownForServer(this.dir, account);
    if (runDir !== join(this.dir, 'run')) await chownForServer(runDir, account);
    this.port = await freePort();
    await this.track({ type: 'process', mention: this.dataDir, signal: 'SIGKILL' });
    const argv = [
      programs.server,
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      `--socket=${this.socket}`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(runDir, 'mysqld.pid')}`,
      `--log-error=${join(this.dir, 'error.log')}`,
      `--tmpdir=${join(this.dir, 'tmp')}`,
      `--init-file=${initFile}`,
      '--skip-name-resolve',
      '--skip-log-bin',
      '--max-allowed-packet=1G',
      '--skip-slave-start',
      ...INNODB,
    ];
    try {
      await this.launch(argv, env, account, opts.startTimeoutMs ?? 60_000);
    } catch (err) {
      if (!copied.built) await dropTemplate(parent, key);
      throw err;
    }
    this.description =
      `ephemeral ${this.version.replace(/^.*Ver\s+/, 'MariaDB ').replace(/\s+for\s.*$/, '')} server, ` +
      `socket ${this.socket}, 127.0.0.1:${this.port} (user root, runs as ${account.name})`;
  }

  private async launch(argv: string[], env: NodeJS.ProcessEnv, account: ServerAccount, timeoutMs: number) {
    const server = spawnStreaming(argv, { env, cwd: this.dir, ...asAccount(account) });
    server.stdout.resume();
    let exited: string | undefined;
    server.done.then(
      () => (exited = 'the server exited'),
      (err: Error) => (exited = err.message),
    );
    const t0 = monotonicMs();
    let lastError = '';
    for (;;) {
      if (exited !== undefined) {
        const log = await import('node:fs/promises')
          .then((fs) => fs.readFile(join(this.dir, 'error.log'), 'utf8'))
          .catch(() => '');
        throw new OperationError(
          'E_SCRATCH_START',
          `the ephemeral MariaDB server did not start: ${lastLines(log || exited, 3)}`,
          { hint: `Its directory is ${this.dir}; check free space and the error log there.` },
        );
      }
      if ((await readdir(join(this.socket, '..')).catch(() => [] as string[])).includes('mysqld.sock')) {
        try {
          await mysqlQueryValue(this.connectConfig(), undefined, 'SELECT 1', 5000);
          return;
        } catch (err) {
          lastError = (err as Error).message;
        }
      }
      if (monotonicMs() - t0 > timeoutMs) {
        server.kill('SIGKILL');
        throw new OperationError(
          'E_SCRATCH_START',
          `the ephemeral MariaDB server was not ready after ${timeoutMs} ms${lastError ? `: ${lastError}` : ''}`,
          { hint: 'The machine may be overloaded; try again, or use drill.scratch: existing.' },
        );
      }
      await sleep(20);
    }
  }
}
