import { describe, expect, it } from 'vitest';
import { RowHashSum } from '../../../../src/sources/database/rowHash.js';
import { DumpRowReader } from '../../../../src/sources/mysql/dumpRows.js';

// The shape mariadb-dump writes (one INSERT per line), with values that look like tuple syntax.
const DUMP = [
  '-- MariaDB dump 10.19',
  '/*!40101 SET NAMES utf8mb4 */;',
  'CREATE TABLE `t` (\n  `a` int(11) DEFAULT NULL,\n  `b` text\n) ENGINE=InnoDB;',
  '-- Dumping data for table `t`',
  'LOCK TABLES `t` WRITE;',
  "INSERT INTO `t` VALUES (1,'x),(y'),(2,'it\\'s \\\\'),(3,NULL),(4,0xDEADBEEF);",
  "INSERT INTO `t` VALUES\n(5,'a\\nb'),\n(6,'\\'');",
  "INSERT INTO `we``ird` (`a`, `gen) VALUES (`) VALUES (-1.5e-10,'(');",
  'INSERT INTO `empty` VALUES ();',
  'UNLOCK TABLES;',
  '-- Dumping routines for database',
  'CREATE PROCEDURE p() BEGIN',
  'INSERT INTO `t` VALUES (99,NULL);',
  'END ;;',
  '/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;',
  '',
].join('\n');

const rowsOf = (tuples: string[]) => {
  const s = new RowHashSum();
  for (const t of tuples) {
    const b = Buffer.from(t);
    s.add(b, 0, b.length);
  }
  return { rows: s.rows, checksum: s.checksum() };
};

const read = (text: string, piece: number) => {
  const reader = new DumpRowReader();
  const b = Buffer.from(text);
  for (let i = 0; i < b.length; i += piece) reader.push(b.subarray(i, i + piece));
  return reader.result();
};

describe('DumpRowReader', () => {
  it('hashes every tuple of every INSERT of the data sections, by table, however the stream is cut', () => {
    const expected = new Map([
      ['t', rowsOf(["1,'x),(y'", "2,'it\\'s \\\\'", '3,NULL', '4,0xDEADBEEF', "5,'a\\nb'", "6,'\\''"])],
      ['we`ird', rowsOf(["-1.5e-10,'('"])],
      ['empty', rowsOf([''])],
    ]);
    for (const piece of [1, 2, 3, 5, 17, DUMP.length]) expect(read(DUMP, piece)).toEqual(expected);
  });

  it('finds the end of tuples whose strings hold escapes, quotes and parentheses, cut anywhere', () => {
    // Deterministic pseudo-random values: escaped quotes and backslashes in runs, next to quotes and cuts.
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >>> 0) % n;
    const pieces = ['a', "\\'", '\\\\', '\\n', ')', '(', ',', "''", 'xyz'];
    const value = () => Array.from({ length: random(6) }, () => pieces[random(pieces.length)]).join('');
    const tuples = Array.from({ length: 300 }, (_, i) => `${i},'${value()}',0x0A${random(99)},'${value()}'`);
    const text = `-- Dumping data for table \`t\`\nINSERT INTO \`t\` VALUES (${tuples.join('),(')});\nUNLOCK TABLES;\n`;
    const expected = new Map([['t', rowsOf(tuples)]]);
    for (const piece of [1, 2, 3, 4, 7, 64, text.length]) expect(read(text, piece)).toEqual(expected);
  });

  it('finds the same tuples in long statements of long values as in the stream cut byte by byte', () => {
    // Long runs without quote or backslash (scanned 8 bytes at a time), escapes at every offset after them.
    let seed = 11;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >>> 0) % n;
    const run = () => '0123456789-abcdefghijklmnopqrstuvwxyz'.slice(0, random(38));
    const value = () =>
      Array.from({ length: random(5) }, () => run() + ["\\'", '\\\\', ')', ''][random(4)]).join('');
    const statements: string[] = [];
    const tuples: string[] = [];
    for (let s = 0; s < 40; s++) {
      const these = Array.from({ length: 50 }, (_, i) => `${s * 50 + i},'${value()}',NULL,'${value()}'`);
      tuples.push(...these);
      statements.push(
        `INSERT INTO \`t\` VALUES${s % 2 ? '\n' : ' '}(${these.join(s % 2 ? '),\n(' : '),(')});`,
      );
    }
    const text = `-- Dumping data for table \`t\`\n${statements.join('\n')}\nUNLOCK TABLES;\n`;
    const expected = new Map([['t', rowsOf(tuples)]]);
    for (const piece of [1, 13, 4096, 70000, text.length]) expect(read(text, piece)).toEqual(expected);
  });

  it('fails on a dump that ends inside an INSERT or is not well formed', () => {
    const data = '-- Dumping data for table `t`\n';
    expect(() => read(`${data}INSERT INTO \`t\` VALUES (1,'a'),(2,`, 4)).toThrow(/ends inside/);
    expect(() => read(`${data}INSERT INTO \`t\` VALUES (1)x\n`, 4)).toThrow(/malformed/);
  });
});
