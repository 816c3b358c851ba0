/**
 * How lifeboat reaches a PostgreSQL server: the job's `connection` (a DSN or
 * parts, password already resolved) becomes one PgTarget, from which both the
 * `pg` client config and the environment of pg_dump/pg_restore/psql are built.
 * The password travels only in PGPASSWORD (never argv) and is registered for
 * redaction the moment it is seen.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../../errors.js';
import { redact, registerSecret } from '../../platform/redact.js';

export type PgSslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** The job's `connection` section at this layer (secret references already resolved). */
export type PgConnectionSpec =
  | { dsn: string }
  | {
      host?: string;
      port?: number;
      user?: string;
      password?: string;
      sslmode?: PgSslMode;
      /** Directory of the server's Unix socket (e.g. /var/run/postgresql); wins over host. */
      socketDir?: string;
      database?: string;
    };

/** A fully resolved PostgreSQL endpoint. */
/** libpq's default socket directory on Debian/Ubuntu and most packages. */
export const DEFAULT_PG_SOCKET_DIR = '/var/run/postgresql';

/** Like libpq: the local socket when there is one, else TCP to localhost. */
function defaultHost(): string {
  return existsSync(DEFAULT_PG_SOCKET_DIR) ? DEFAULT_PG_SOCKET_DIR : 'localhost';
}

export interface PgTarget {
  /** Host name, IP address, or a Unix socket directory (starts with `/`). */
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
  sslmode?: PgSslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  connectTimeoutSec: number;
  applicationName: string;
}

const SSL_MODES: readonly PgSslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** Connection parameters understood in DSNs (URL query or keyword/value). */
const DSN_PARAMS = [
  'host',
  'port',
  'user',
  'password',
  'dbname',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'connect_timeout',
  'application_name',
] as const;
type DsnParam = (typeof DSN_PARAMS)[number];

function dsnError(dsn: string, problem: string): ConfigError {
  return new ConfigError(`invalid PostgreSQL DSN ${redact(dsn)}: ${problem}`, undefined, [], {
    hint:
      'Use postgres://user:password@host:5432/dbname?sslmode=require (percent-encode special characters ' +
      'in the password) or keyword form: host=… port=… user=… dbname=….',
  });
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function parseUrlDsn(dsn: string): Map<DsnParam, string> {
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    throw dsnError(dsn, 'not a valid URL');
  }
  const params = new Map<DsnParam, string>();
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host.includes(',')) throw dsnError(dsn, 'several hosts are not supported');
  if (host) params.set('host', decode(host));
  if (url.port) params.set('port', url.port);
  if (url.username) params.set('user', decode(url.username));
  if (url.password) params.set('password', decode(url.password));
  const db = decode(url.pathname.replace(/^\//, ''));
  if (db) params.set('dbname', db);
  for (const [key, value] of url.searchParams) {
    if (!(DSN_PARAMS as readonly string[]).includes(key)) {
      throw dsnError(dsn, `unsupported parameter "${key}" (supported: ${DSN_PARAMS.join(', ')})`);
    }
    params.set(key as DsnParam, value);
  }
  return params;
}

/** Parse libpq keyword/value form: `host=x port=5432 password='a b\'c'`. */
function parseKeywordDsn(dsn: string): Map<DsnParam, string> {
  const params = new Map<DsnParam, string>();
  let i = 0;
  const n = dsn.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(dsn[i] as string)) i++;
  };
  while (true) {
    skipSpace();
    if (i >= n) break;
    const keyStart = i;
    while (i < n && /[A-Za-z_]/.test(dsn[i] as string)) i++;
    const key = dsn.slice(keyStart, i);
    skipSpace();
    if (!key || dsn[i] !== '=') throw dsnError(dsn, `expected keyword=value at position ${keyStart}`);
    i++;
    skipSpace();
    let value = '';
    if (dsn[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = dsn[i] as string;
        if (c === '\\' && i + 1 < n) {
          value += dsn[i + 1];
          i += 2;
        } else if (c === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw dsnError(dsn, 'unterminated quoted value');
    } else {
      while (i < n && !/\s/.test(dsn[i] as string)) {
        if (dsn[i] === '\\' && i + 1 < n) {
          value += dsn[i + 1];
          i += 2;
        } else value += dsn[i++];
      }
    }
    if (!(DSN_PARAMS as readonly string[]).includes(key)) {
      throw dsnError(dsn, `unsupported parameter "${key}" (supported: ${DSN_PARAMS.join(', ')})`);
    }
    params.set(key as DsnParam, value);
  }
  return params;
}

/** Parse a DSN (URL or keyword/value form) into its parameters. */
export function parsePgDsn(dsn: string): Map<DsnParam, string> {
  const trimmed = dsn.trim();
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return parseUrlDsn(trimmed);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed))
    throw dsnError(dsn, 'the scheme must be postgres:// or postgresql://');
  return parseKeywordDsn(trimmed);
}

function parsePort(value: string | number | undefined, source: string): number {
  if (value === undefined || value === '') return 5432;
  const port = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw dsnError(source, `invalid port ${String(value)}`);
  return port;
}

function parseSslMode(value: string | undefined, source: string): PgSslMode | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(SSL_MODES as readonly string[]).includes(value)) {
    throw dsnError(source, `sslmode must be one of ${SSL_MODES.join(', ')}`);
  }
  return value as PgSslMode;
}

/** Resolve a connection spec into a target; the password (if any) is registered for redaction. */
export function resolvePgConnection(spec: PgConnectionSpec): PgTarget {
  const defaultUser = userInfo().username;
  let target: PgTarget;
  if ('dsn' in spec) {
    const p = parsePgDsn(spec.dsn);
    const timeout = p.get('connect_timeout');
    target = {
      host: p.get('host') || defaultHost(),
      port: parsePort(p.get('port'), spec.dsn),
      user: p.get('user') || defaultUser,
      password: p.get('password'),
      database: p.get('dbname') || undefined,
      sslmode: parseSslMode(p.get('sslmode'), spec.dsn),
      sslrootcert: p.get('sslrootcert'),
      sslcert: p.get('sslcert'),
      sslkey: p.get('sslkey'),
      connectTimeoutSec: timeout ? Math.max(1, Number(timeout) || 10) : 10,
      applicationName: p.get('application_name') || 'lifeboat',
    };
  } else {
    target = {
      host: spec.socketDir || spec.host || defaultHost(),
      port: parsePort(spec.port, 'connection.port'),
      user: spec.user || defaultUser,
      password: spec.password,
      database: spec.database || undefined,
      sslmode: spec.sslmode,
      connectTimeoutSec: 10,
      applicationName: 'lifeboat',
    };
  }
  registerSecret(target.password);
  return target;
}

/** `postgres://user@host:port/db` for messages: never a password. */
export function describePgTarget(target: PgTarget, database = target.database): string {
  const host = target.host.startsWith('/')
    ? `[socket ${target.host}]`
    : target.host.includes(':')
      ? `[${target.host}]`
      : target.host;
  return `postgres://${target.user}@${host}:${target.port}${database ? `/${database}` : ''}`;
}

async function tlsOptions(target: PgTarget): Promise<false | ConnectionOptions> {
  const mode = target.sslmode;
  // node-postgres has no opportunistic TLS: allow/prefer connect in plain text, like sslmode=disable.
  if (!mode || mode === 'disable' || mode === 'allow' || mode === 'prefer') return false;
  const tls: ConnectionOptions = { rejectUnauthorized: mode !== 'require' };
  if (target.sslrootcert) tls.ca = await readFile(target.sslrootcert, 'utf8');
  if (target.sslcert) tls.cert = await readFile(target.sslcert, 'utf8');
  if (target.sslkey) tls.key = await readFile(target.sslkey, 'utf8');
  // verify-ca checks the chain but not the host name.
  if (mode === 'verify-ca') tls.checkServerIdentity = () => undefined;
  return tls;
}

/** The subset of pg.ClientConfig lifeboat uses. */
export interface PgClientConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  ssl: false | ConnectionOptions;
  connectionTimeoutMillis: number;
  application_name: string;
}

/** Config for a `pg` client connected to `database` (default: the target's database, else `postgres`). */
export async function pgClientConfig(target: PgTarget, database?: string): Promise<PgClientConfig> {
  const config: PgClientConfig = {
    host: target.host,
    port: target.port,
    user: target.user,
    database: database ?? target.database ?? 'postgres',
    ssl: await tlsOptions(target),
    connectionTimeoutMillis: target.connectTimeoutSec * 1000,
    application_name: target.applicationName,
  };
  if (target.password !== undefined) config.password = target.password;
  return config;
}

/**
 * Environment for libpq tools: connection parameters as PG* variables, so the
 * password never reaches argv. Inherited PG* variables are dropped (they could
 * silently redirect a tool to another server), except PGPASSFILE.
 */
export function pgToolEnv(
  target: PgTarget,
  database?: string,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith('PG') || k === 'PGPASSFILE') env[k] = v;
  env.PGHOST = target.host;
  env.PGPORT = String(target.port);
  env.PGUSER = target.user;
  env.PGCONNECT_TIMEOUT = String(target.connectTimeoutSec);
  env.PGAPPNAME = target.applicationName;
  if (target.password !== undefined) env.PGPASSWORD = target.password;
  if (target.sslmode) env.PGSSLMODE = target.sslmode;
  if (target.sslrootcert) env.PGSSLROOTCERT = target.sslrootcert;
  if (target.sslcert) env.PGSSLCERT = target.sslcert;
  if (target.sslkey) env.PGSSLKEY = target.sslkey;
  const db = database ?? target.database;
  if (db) env.PGDATABASE = db;
  return env;
}

/** The environment shown by dry runs: what pgToolEnv sets, with the password masked. */
export function describePgToolEnv(env: NodeJS.ProcessEnv): string {
  return Object.entries(env)
    .filter(([k]) => k.startsWith('PG') && k !== 'PGPASSFILE')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => (k === 'PGPASSWORD' ? `${k}=***` : `${k}=${redact(String(v))}`))
    .join(' ');
}

/**
 * A conninfo string naming only a database, for `--dbname`: libpq treats a
 * bare name containing `=` as a connection string, so every name is quoted.
 */
export function conninfoForDatabase(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A SQL identifier, double-quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
