import { stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/errors.js';
import { clearRegisteredSecrets, redact } from '../../../../src/platform/redact.js';
import {
  describeMysqlTarget,
  mysql2Config,
  mysqlToolEnv,
  optionFileContent,
  optionFileValue,
  quoteMysqlIdent,
  resolveMysqlConnection,
  withOptionFile,
} from '../../../../src/sources/mysql/connection.js';

const PW = `p@ss w/ord%#?&='"\\:;ü\n[client]`;

afterEach(() => clearRegisteredSecrets());

describe('resolveMysqlConnection', () => {
  it('decodes a DSN with a percent-encoded password, socket and TLS mode', () => {
    const t = resolveMysqlConnection({
      dsn: `mariadb://bk%40x:${encodeURIComponent(PW)}@db:3307/shop?socket=%2Frun%2Fmysqld%2Fmysqld.sock&ssl-mode=REQUIRED`,
    });
    expect(t).toMatchObject({
      host: 'db',
      port: 3307,
      user: 'bk@x',
      password: PW,
      database: 'shop',
      socket: '/run/mysqld/mysqld.sock',
      sslmode: 'require',
    });
    expect(describeMysqlTarget(t)).toBe('mysql://bk@x@[socket /run/mysqld/mysqld.sock]/shop');
    expect(redact(`oops ${PW} oops`)).not.toContain(PW);
  });

  it('rejects unknown parameters and schemes without echoing the password', () => {
    for (const dsn of [
      'mysql://u:Secret99@h/d?frob=1',
      'postgres://u:Secret99@h/d',
      'mysql://u:Secret99@h/d?sslmode=maybe',
    ]) {
      let err: unknown;
      try {
        resolveMysqlConnection({ dsn });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).not.toContain('Secret99');
    }
  });

  it('defaults to the local socket like the mysql client, else TCP', () => {
    const sock = existsSync('/run/mysqld/mysqld.sock') ? '/run/mysqld/mysqld.sock' : undefined;
    expect(resolveMysqlConnection({}).socket).toBe(sock);
    expect(resolveMysqlConnection({ host: '127.0.0.1' }).socket).toBeUndefined();
    expect(resolveMysqlConnection({ port: 3307 }).socket).toBeUndefined();
  });

  it('uses parts and defaults', () => {
    expect(resolveMysqlConnection({ host: 'h', user: 'u' })).toMatchObject({
      host: 'h',
      port: 3306,
      user: 'u',
    });
  });
});

describe('option file', () => {
  it('quotes and escapes values the way the client libraries read them', () => {
    expect(optionFileValue('a"b\\c\nd#e')).toBe('"a\\"b\\\\c\\nd#e"');
  });

  it('writes the connection, TCP unless a socket is given, and TLS per client family', () => {
    const tcp = optionFileContent(
      resolveMysqlConnection({ host: 'localhost', user: 'u', password: 'p"w', sslmode: 'verify-full' }),
      'mariadb',
    );
    expect(tcp.split('\n')).toEqual([
      '[client]',
      'user="u"',
      'password="p\\"w"',
      'host="localhost"',
      'port=3306',
      'protocol=TCP',
      'ssl',
      'ssl-verify-server-cert',
      '',
    ]);
    const sock = optionFileContent(
      resolveMysqlConnection({ socket: '/s.sock', user: 'u', sslmode: 'require' }),
      'mysql',
    );
    expect(sock).toContain('socket="/s.sock"\nprotocol=SOCKET');
    expect(sock).toContain('ssl-mode=REQUIRED');
    expect(sock).not.toContain('password');
  });

  it('lives in a private directory only while in use', async () => {
    const target = resolveMysqlConnection({ host: 'h', user: 'u', password: PW });
    let seen = '';
    await withOptionFile(target, 'mariadb', async (path) => {
      seen = path;
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(dirname(path))).mode & 0o777).toBe(0o700);
      expect(readFileSync(path, 'utf8')).toContain('password="p@ss w/ord%#?&=\'\\"\\\\:;ü\\n[client]"');
    });
    expect(existsSync(seen)).toBe(false);
    await expect(
      withOptionFile(target, 'mariadb', async (path) => {
        seen = path;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(dirname(seen))).toBe(false);
  });

  it('drops inherited MYSQL_* variables from the tools’ environment', () => {
    expect(mysqlToolEnv({ PATH: '/bin', MYSQL_PWD: 'x', MYSQL_HOST: 'evil', HOME: '/h' })).toEqual({
      PATH: '/bin',
      HOME: '/h',
    });
  });
});

describe('mysql2Config', () => {
  it('sets a default database only when asked', async () => {
    const t = resolveMysqlConnection({ host: 'h', user: 'u', database: 'target_db' });
    expect((await mysql2Config(t)).database).toBeUndefined();
    expect((await mysql2Config(t, 'x')).database).toBe('x');
  });

  it('maps TLS modes', async () => {
    expect((await mysql2Config(resolveMysqlConnection({ host: 'h', sslmode: 'require' }))).ssl).toEqual({
      rejectUnauthorized: false,
    });
    expect((await mysql2Config(resolveMysqlConnection({ host: 'h', sslmode: 'verify-full' }))).ssl).toEqual({
      rejectUnauthorized: true,
    });
    expect((await mysql2Config(resolveMysqlConnection({ host: 'h' }))).ssl).toBeUndefined();
  });
});

describe('quoteMysqlIdent', () => {
  it('doubles backticks', () => {
    expect(quoteMysqlIdent('a`b')).toBe('`a``b`');
  });
});
