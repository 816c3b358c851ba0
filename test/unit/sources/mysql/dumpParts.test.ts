import { describe, expect, it } from 'vitest';
import { versionParts } from '../../../../src/sources/mysql/backup.js';
import { lockNames, signalWhere } from '../../../../src/sources/mysql/consistentDump.js';
import { columnTextExpr } from '../../../../src/sources/mysql/fingerprint.js';
import { idempotentCreateUser, stripAuthentication } from '../../../../src/sources/mysql/grants.js';
import {
  dumpCharacterSetOf,
  dumpOptions,
  toolFlavor,
  type MysqlTools,
} from '../../../../src/sources/mysql/tools.js';

describe('grants script', () => {
  it.each([
    [
      "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'",
      'GRANT USAGE ON *.* TO `app`@`%`',
    ],
    [
      "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket WITH GRANT OPTION",
      'GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION',
    ],
    ['GRANT SELECT ON `shop`.* TO `bk`@`%`', 'GRANT SELECT ON `shop`.* TO `bk`@`%`'],
  ])('strips authentication from %s', (input, output) => {
    expect(stripAuthentication(input)).toBe(output);
  });

  it('makes CREATE USER idempotent once', () => {
    expect(idempotentCreateUser("CREATE USER `a`@`%` IDENTIFIED BY PASSWORD '*X'")).toBe(
      "CREATE USER IF NOT EXISTS `a`@`%` IDENTIFIED BY PASSWORD '*X'",
    );
    expect(idempotentCreateUser('CREATE USER IF NOT EXISTS `a`@`%`')).toBe(
      'CREATE USER IF NOT EXISTS `a`@`%`',
    );
  });
});

describe('snapshot alignment locks', () => {
  it('derives stable, short, per-database names', () => {
    const a = lockNames('shop');
    expect(lockNames('shop')).toEqual(a);
    expect(lockNames('crm').signal).not.toBe(a.signal);
    expect(a.mutex).not.toBe(a.signal);
    expect(a.mutex.length).toBeLessThanOrEqual(64);
    expect(signalWhere(a.signal, 'mysql')).toBe(`(SELECT COALESCE(GET_LOCK('${a.signal}', 0), 1)) >= 0`);
    expect(signalWhere(a.signal, 'mariadb')).toBe(
      `COALESCE(@lifeboat_signal, @lifeboat_signal := GET_LOCK('${a.signal}', 0), 1) >= 0`,
    );
  });
});

describe('row text of the checksum', () => {
  it('hexes strings and binaries, casts numbers and temporals, marks NULL', () => {
    expect(columnTextExpr({ name: 'b`x', dataType: 'longblob' })).toBe("IFNULL(HEX(`b``x`), 'N')");
    expect(columnTextExpr({ name: 'n', dataType: 'decimal' })).toBe("IFNULL(CAST(`n` AS CHAR), 'N')");
    expect(columnTextExpr({ name: 'j', dataType: 'JSON' })).toBe("IFNULL(HEX(`j`), 'N')");
  });
});

describe('tools', () => {
  const tools = (flavor: 'mariadb' | 'mysql'): MysqlTools => ({
    dump: 'd',
    client: 'c',
    flavor,
    versionText: '',
  });

  it('tells the client families apart', () => {
    expect(
      toolFlavor('mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)'),
    ).toBe('mariadb');
    expect(toolFlavor('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)')).toBe(
      'mysql',
    );
  });

  it('always dumps in one transaction with routines, triggers, events and no date, as bytes', () => {
    for (const flavor of ['mariadb', 'mysql'] as const) {
      const args = dumpOptions(tools(flavor), true);
      expect(args).toEqual(
        expect.arrayContaining([
          '--single-transaction',
          '--routines',
          '--triggers',
          '--events',
          '--skip-dump-date',
          '--default-character-set=binary',
        ]),
      );
      // Under the binary character set --hex-blob would write every string column in hex.
      expect(args).not.toContain('--hex-blob');
    }
    expect(dumpOptions(tools('mysql'), true)).toContain('--column-statistics=0');
    expect(dumpOptions(tools('mysql'), false)).not.toContain('--column-statistics=0');
    expect(dumpOptions(tools('mariadb'), true)).toContain('--add-drop-trigger');
  });

  it('dumps as the backup did: utf8mb4 with hex blobs when no character set is recorded', () => {
    expect(dumpCharacterSetOf({})).toBe('utf8mb4');
    expect(dumpCharacterSetOf({ copySettings: { characterSet: 'binary' } })).toBe('binary');
    const legacy = dumpOptions(tools('mariadb'), true, dumpCharacterSetOf({}));
    expect(legacy).toEqual(expect.arrayContaining(['--hex-blob', '--default-character-set=utf8mb4']));
    expect(() => dumpCharacterSetOf({ copySettings: { characterSet: 'ebcdic' } })).toThrow(
      /character set "ebcdic", which this version of lifeboat does not know/,
    );
  });

  it('parses server versions', () => {
    expect(versionParts('10.11.19-MariaDB-0+deb12u1')).toEqual([10, 11, 19]);
    expect(versionParts('8.0.36')).toEqual([8, 0, 36]);
  });
});
