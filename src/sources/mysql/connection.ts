/**
 * How lifeboat reaches a MySQL or MariaDB server: the job's `connection` (a
 * DSN or parts, password already resolved) becomes one MysqlTarget, from
 * which the `mysql2` config and a private option file for the command-line
 * tools are built. The password reaches the tools only through that file
 * (mode 0600 in a private temp dir, removed afterwards), never argv or env.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { registerCleanup } from '../../platform/cleanup.js';
import { redact, registerSecret } from '../../platform/redact.js';

export type MysqlSslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** The job's `connection` section at this layer (secret references already resolved). */
export type MysqlConnectionSpec =
  | { dsn: string }
  | {
      host?: string;
      port?: number;
      user?: string;
      password?: string;
      /** Path of the server's Unix socket; wins over host/port. */
      socket?: string;
      database?: string;
      sslmode?: MysqlSslMode;
    };

/** The server socket of Debian/Ubuntu packages of MariaDB and MySQL. */
export const DEFAULT_MYSQL_SOCKET = '/run/mysqld/mysqld.sock';

/** A fully resolved MySQL/MariaDB endpoint. */
export interface MysqlTarget {
  host: string;
  port: number;
  socket?: string;
  user: string;
  password?: string;
  database?: string;
  sslmode?: MysqlSslMode;
  sslCa?: string;
  connectTimeoutSec: number;
}

const SSL_MODES: Record<string, MysqlSslMode> = {
  disable: 'disable',
  disabled: 'disable',
  prefer: 'prefer',
  preferred: 'prefer',
  require: 'require',
  required: 'require',
  'verify-ca': 'verify-ca',
  verify_ca: 'verify-ca',
  'verify-full': 'verify-full',
  verify_identity: 'verify-full',
};

const DSN_PARAMS = ['socket', 'sslmode', 'ssl-mode', 'ssl-ca', 'sslrootcert', 'connect_timeout'] as const;

function dsnError(dsn: string, problem: string): ConfigError {
  return new ConfigError(`invalid MySQL DSN ${redact(dsn)}: ${problem}`, undefined, [], {
    hint: 'Use mysql://user:password@host:3306/dbname?sslmode=require (percent-encode special characters in the password), or ?socket=/run/mysqld/mysqld.sock.',
  });
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function parseSslMode(value: string | undefined, source: string): MysqlSslMode | undefined {
  if (value === undefined || value === '') return undefined;
  const mode = SSL_MODES[value.toLowerCase()];
  if (!mode)
    throw dsnError(
      source,
      `unknown sslmode ${JSON.stringify(value)} (use disable, prefer, require, verify-ca or verify-full)`,
    );
  return mode;
}

function parsePort(value: string | number | undefined, source: string): number {
  if (value === undefined || value === '') return 3306;
  const port = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw dsnError(source, `invalid port ${String(value)}`);
  return port;
}

/** Resolve a connection spec; the password (if any) is registered for redaction. */
export function resolveMysqlConnection(spec: MysqlConnectionSpec): MysqlTarget {
  let target: MysqlTarget;
  if ('dsn' in spec) {
    let url: URL;
    try {
      url = new URL(spec.dsn.trim());
    } catch {
      throw dsnError(spec.dsn, 'not a valid URL');
    }
    if (url.protocol !== 'mysql:' && url.protocol !== 'mariadb:')
      throw dsnError(spec.dsn, 'the scheme must be mysql:// or mariadb://');
    const q = url.searchParams;
    for (const key of q.keys()) {
      if (!(DSN_PARAMS as readonly string[]).includes(key)) {
        throw dsnError(spec.dsn, `unsupported parameter "${key}" (supported: ${DSN_PARAMS.join(', ')})`);
      }
    }
    const timeout = Number(q.get('connect_timeout') ?? 10);
    target = {
      host: decode(url.hostname.replace(/^\[(.*)\]$/, '$1')) || 'localhost',
      port: parsePort(url.port, spec.dsn),
      socket: q.get('socket') ?? undefined,
      user: decode(url.username) || userInfo().username,
      password: url.password ? decode(url.password) : undefined,
      database: decode(url.pathname.replace(/^\//, '')) || undefined,
      sslmode: parseSslMode(q.get('sslmode') ?? q.get('ssl-mode') ?? undefined, spec.dsn),
      sslCa: q.get('ssl-ca') ?? q.get('sslrootcert') ?? undefined,
      connectTimeoutSec: Number.isFinite(timeout) && timeout > 0 ? timeout : 10,
    };
  } else {
    target = {
      host: spec.host || 'localhost',
      port: parsePort(spec.port, 'connection.port'),
      // Like the mysql client: without host or port, the local socket when there is one.
      socket:
        spec.socket ??
        (!spec.host && !spec.port && existsSync(DEFAULT_MYSQL_SOCKET) ? DEFAULT_MYSQL_SOCKET : undefined),
      user: spec.user || userInfo().username,
      password: spec.password,
      database: spec.database || undefined,
      sslmode: spec.sslmode,
      connectTimeoutSec: 10,
    };
  }
  registerSecret(target.password);
  return target;
}

/** `mysql://user@host:port/db` for messages: never a password. */
export function describeMysqlTarget(target: MysqlTarget, database = target.database): string {
  const where = target.socket
    ? `[socket ${target.socket}]`
    : `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  return `mysql://${target.user}@${where}${database ? `/${database}` : ''}`;
}

/** The subset of mysql2's ConnectionOptions lifeboat uses. */
export interface Mysql2Config {
  host?: string;
  port?: number;
  socketPath?: string;
  user: string;
  password?: string;
  database?: string;
  ssl?: { rejectUnauthorized: boolean; ca?: string };
  connectTimeout: number;
  charset: string;
  timezone: string;
  dateStrings: true;
  supportBigNumbers: true;
  bigNumberStrings: true;
  multipleStatements: false;
}

/** Config for a `mysql2` connection (with `database` as default database when given). */
export async function mysql2Config(target: MysqlTarget, database?: string): Promise<Mysql2Config> {
  const config: Mysql2Config = {
    user: target.user,
    connectTimeout: target.connectTimeoutSec * 1000,
    charset: 'utf8mb4_general_ci',
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: false,
  };
  if (target.socket) config.socketPath = target.socket;
  else {
    config.host = target.host;
    config.port = target.port;
  }
  if (target.password !== undefined) config.password = target.password;
  // Only when asked: target.database names a restore target, which may not exist yet.
  if (database) config.database = database;
  const mode = target.sslmode;
  if (mode === 'require' || mode === 'verify-ca' || mode === 'verify-full') {
    config.ssl = { rejectUnauthorized: mode !== 'require' };
    if (target.sslCa) config.ssl.ca = await readFile(target.sslCa, 'utf8');
  }
  return config;
}

/** Which client family the tools belong to (their TLS options differ). */
export type MysqlToolFlavor = 'mariadb' | 'mysql';

/** Which server the job talks to (from VERSION()): SQL and commit blocking differ. */
export type MysqlServerEngine = 'mariadb' | 'mysql';

/** An option-file value: double-quoted, with the escapes the client libraries understand. */
export function optionFileValue(value: string): string {
  const escaped = value
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
  return `"${escaped}"`;
}

/** The [client] option file content for the command-line tools. */
export function optionFileContent(target: MysqlTarget, flavor: MysqlToolFlavor): string {
  const lines = ['[client]', `user=${optionFileValue(target.user)}`];
  if (target.password !== undefined) lines.push(`password=${optionFileValue(target.password)}`);
  if (target.socket) {
    lines.push(`socket=${optionFileValue(target.socket)}`, 'protocol=SOCKET');
  } else {
    // `localhost` would silently mean the default socket to the tools; be explicit like mysql2 is.
    lines.push(`host=${optionFileValue(target.host)}`, `port=${target.port}`, 'protocol=TCP');
  }
  const mode = target.sslmode;
  if (flavor === 'mysql') {
    const m = {
      disable: 'DISABLED',
      prefer: 'PREFERRED',
      require: 'REQUIRED',
      'verify-ca': 'VERIFY_CA',
      'verify-full': 'VERIFY_IDENTITY',
    };
    if (mode) lines.push(`ssl-mode=${m[mode]}`);
  } else if (mode === 'disable') {
    lines.push('skip-ssl');
  } else if (mode === 'require') {
    lines.push('ssl');
  } else if (mode === 'verify-ca' || mode === 'verify-full') {
    lines.push('ssl', 'ssl-verify-server-cert');
  }
  if (target.sslCa) lines.push(`ssl-ca=${optionFileValue(target.sslCa)}`);
  return lines.join('\n') + '\n';
}

/**
 * Run `fn` with the path of a private option file holding the connection
 * (pass it as the first argument: `--defaults-file=PATH`). The file lives in a
 * fresh 0700 directory, is 0600, and is removed afterwards — also on SIGINT
 * through the cleanup registry.
 */
export async function withOptionFile<T>(
  target: MysqlTarget,
  flavor: MysqlToolFlavor,
  fn: (path: string) => Promise<T>,
  tempDir = tmpdir(),
): Promise<T> {
  const dir = await mkdtemp(join(tempDir, 'lifeboat-my-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  const unregister = registerCleanup(`remove ${dir}`, remove);
  try {
    await chmod(dir, 0o700);
    const path = join(dir, 'client.cnf');
    await writeFile(path, optionFileContent(target, flavor), { mode: 0o600 });
    return await fn(path);
  } finally {
    await remove();
    unregister();
  }
}

/** Environment for the tools: inherited MYSQL_* variables could redirect them or leak a password. */
export function mysqlToolEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!/^MYSQL_/.test(k) && k !== 'MARIADB_HOME') env[k] = v;
  return env;
}

/** An identifier in backticks. */
export function quoteMysqlIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}
