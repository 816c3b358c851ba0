import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/errors.js';
import { clearRegisteredSecrets, redact } from '../../../../src/platform/redact.js';
import {
  conninfoForDatabase,
  describePgTarget,
  describePgToolEnv,
  parsePgDsn,
  pgClientConfig,
  pgToolEnv,
  quoteIdent,
  resolvePgConnection,
} from '../../../../src/sources/postgres/connection.js';

const PW = `p@ss w/ord%#?&='"\\:;ü`;

afterEach(() => clearRegisteredSecrets());

describe('parsePgDsn', () => {
  it('decodes a percent-encoded password and every URL part', () => {
    const p = parsePgDsn(
      `postgresql://user%40x:${encodeURIComponent(PW)}@db.example:6432/shop%20db?sslmode=verify-full&application_name=lb`,
    );
    expect(Object.fromEntries(p)).toEqual({
      host: 'db.example',
      port: '6432',
      user: 'user@x',
      password: PW,
      dbname: 'shop db',
      sslmode: 'verify-full',
      application_name: 'lb',
    });
  });

  it('takes the last @ as the end of the password and strips IPv6 brackets', () => {
    expect(parsePgDsn('postgres://u:p@ss@[::1]:5433/d').get('password')).toBe('p@ss');
    expect(parsePgDsn('postgres://u:p@ss@[::1]:5433/d').get('host')).toBe('::1');
  });

  it('reads a socket directory from the query string', () => {
    const p = parsePgDsn('postgres:///shop?host=%2Fvar%2Frun%2Fpostgresql');
    expect(p.get('host')).toBe('/var/run/postgresql');
    expect(p.get('dbname')).toBe('shop');
  });

  it('parses keyword/value form with quoting and escapes', () => {
    const p = parsePgDsn(`host=h port = 5433 dbname='my db' password='a\\'b\\\\c d' user=x\\ y`);
    expect(Object.fromEntries(p)).toEqual({
      host: 'h',
      port: '5433',
      dbname: 'my db',
      password: "a'b\\c d",
      user: 'x y',
    });
  });

  it('rejects unsupported parameters and schemes without echoing the password', () => {
    for (const dsn of [
      'postgres://u:Secret99@h/d?target_session_attrs=any',
      'mysql://u:Secret99@h/d',
      'host=h password=Secret99 frobnicate=1',
      "password='Secret99",
    ]) {
      const err = (() => {
        try {
          parsePgDsn(dsn);
        } catch (e) {
          return e as ConfigError;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(`${err?.message} ${err?.hint}`).not.toContain('Secret99');
    }
  });
});

describe('resolvePgConnection', () => {
  it('fills defaults and prefers the socket directory over host', () => {
    const t = resolvePgConnection({ host: 'h', socketDir: '/run/pg', user: 'u', database: 'd' });
    expect(t).toMatchObject({ host: '/run/pg', port: 5432, user: 'u', database: 'd', connectTimeoutSec: 10 });
    expect(describePgTarget(t)).toBe('postgres://u@[socket /run/pg]:5432/d');
  });

  it('defaults to the local socket like libpq, else TCP to localhost', () => {
    const expected = existsSync('/var/run/postgresql') ? '/var/run/postgresql' : 'localhost';
    expect(resolvePgConnection({}).host).toBe(expected);
    expect(resolvePgConnection({ dsn: 'postgres:///shop' }).host).toBe(expected);
  });

  it('registers the password for redaction', () => {
    resolvePgConnection({ dsn: `postgres://u:${encodeURIComponent('Zebra-Horse-91')}@h/d` });
    expect(redact('failed with Zebra-Horse-91 inside')).toBe('failed with *** inside');
  });

  it('rejects a bad port', () => {
    expect(() => resolvePgConnection({ host: 'h', port: 70000 })).toThrow(ConfigError);
  });
});

describe('pgToolEnv and pgClientConfig', () => {
  it('passes the password only in PGPASSWORD and drops inherited PG* variables', () => {
    const t = resolvePgConnection({ host: 'h', port: 5433, user: 'u', password: PW, sslmode: 'require' });
    const env = pgToolEnv(t, 'shop', {
      PATH: '/bin',
      PGHOST: 'evil',
      PGSERVICE: 'x',
      PGPASSFILE: '/p',
      PGOPTIONS: '-c x',
    });
    expect(env).toEqual({
      PATH: '/bin',
      PGPASSFILE: '/p',
      PGHOST: 'h',
      PGPORT: '5433',
      PGUSER: 'u',
      PGPASSWORD: PW,
      PGSSLMODE: 'require',
      PGCONNECT_TIMEOUT: '10',
      PGAPPNAME: 'lifeboat',
      PGDATABASE: 'shop',
    });
    expect(describePgToolEnv(env)).not.toContain(PW);
    expect(describePgToolEnv(env)).toContain('PGPASSWORD=***');
  });

  it('maps sslmode to TLS options of the driver', async () => {
    const cfg = async (sslmode?: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full') =>
      (await pgClientConfig(resolvePgConnection({ host: 'h', sslmode }))).ssl;
    expect(await cfg()).toBe(false);
    expect(await cfg('prefer')).toBe(false);
    expect(await cfg('require')).toEqual({ rejectUnauthorized: false });
    expect(await cfg('verify-full')).toEqual({ rejectUnauthorized: true });
    const ca = await cfg('verify-ca');
    expect(ca && ca.rejectUnauthorized).toBe(true);
    expect(ca && typeof ca.checkServerIdentity).toBe('function');
  });

  it('connects to the named database, else the target database, else postgres', async () => {
    expect((await pgClientConfig(resolvePgConnection({ host: 'h' }))).database).toBe('postgres');
    expect((await pgClientConfig(resolvePgConnection({ host: 'h', database: 'd' }))).database).toBe('d');
    expect((await pgClientConfig(resolvePgConnection({ host: 'h', database: 'd' }), 'e')).database).toBe('e');
  });
});

describe('quoting', () => {
  it('quotes conninfo database names so `=` and quotes cannot inject parameters', () => {
    expect(conninfoForDatabase('a b')).toBe("dbname='a b'");
    expect(conninfoForDatabase("x' host=evil")).toBe("dbname='x\\' host=evil'");
    expect(conninfoForDatabase('back\\slash')).toBe("dbname='back\\\\slash'");
  });

  it('doubles quotes in identifiers', () => {
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
  });
});
