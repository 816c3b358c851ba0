/**
 * Row checksums read from mariadb-dump/mysqldump output while it streams.
 * The dump writes each table's rows as extended INSERT statements:
 * "INSERT INTO `t` [(`c1`,`c2`)] VALUES (…),(…);" on one line, or (MariaDB
 * 10.x) with "VALUES" and every tuple on lines of their own. Every tuple's text
 * between its parentheses — values as the dump wrote them (numbers, NULL,
 * quoted strings with backslash escapes, 0x… for binary with --hex-blob) —
 * is one row for rowHash.ts, so the backup's checksums need no second scan
 * by the server, and a restore is verified by hashing a data-only dump of the
 * restored database the same way.
 *
 * Outside quotes a tuple holds no parentheses, so a tuple ends at the first
 * `)` that is not inside a quoted value; inside quotes a backslash escapes
 * the next byte. Only INSERT statements inside a table's data section count
 * (from its "-- Dumping data for table" comment to its UNLOCK TABLES): the
 * body of a routine or trigger can hold an INSERT line too.
 */
import { RowHashSum, rowHashSource, type rowHashCode } from '../database/rowHash.js';
import { RowReaderThread } from '../database/rowReaderWorker.js';

type Mode = 'lineStart' | 'skipLine' | 'head' | 'beforeTuple' | 'tuple' | 'afterTuple';

export interface DumpTableRows {
  rows: number;
  checksum: string;
}

/**
 * The reader's code as one self-contained function of its import, so that a
 * worker thread runs this very code from its source text (rowReaderWorker.ts):
 * it may use only its parameters and globals.
 */
export function dumpRowsCode({ RowHashSum }: Pick<ReturnType<typeof rowHashCode>, 'RowHashSum'>) {
  const PREFIX = Buffer.from('INSERT INTO `');
  /** The dump's comment before a table's rows, and the statement after them (--comments, --add-locks). */
  const DATA_START = Buffer.from('-- Dumping data for table ');
  const DATA_END = Buffer.from('UNLOCK TABLES;');
  const QUOTE = 0x27; // '
  const BACKSLASH = 0x5c;
  const BACKTICK = 0x60;
  const OPEN = 0x28; // (
  const CLOSE = 0x29; // )
  const NEWLINE = 0x0a;
  /** Longest statement head kept while looking for VALUES (a table name and column list). */
  const MAX_HEAD = 256 * 1024;
  /** nextBackslash before the buffer was searched (below any position, unlike -1). */
  const NOT_SEARCHED = -2;

  /** Parse "INSERT INTO `t` [(…)] VALUES (" and return the table name, or undefined if incomplete/other. */
  function parseHead(head: string): { table: string; complete: true } | { complete: false } | undefined {
    let i = PREFIX.length;
    let name = '';
    for (;;) {
      if (i >= head.length) return { complete: false };
      const c = head[i++];
      if (c === '`') {
        if (i >= head.length) return { complete: false };
        if (head[i] === '`') {
          name += '`';
          i++;
          continue;
        }
        break;
      }
      name += c;
    }
    let rest = head.slice(i);
    if (rest.startsWith(' (')) {
      // An explicit column list (tables with generated or invisible columns): skip it, backtick-aware.
      let j = 2;
      let inName = false;
      for (;;) {
        if (j >= rest.length) return { complete: false };
        const c = rest[j++];
        if (c === '`') inName = !inName;
        else if (c === ')' && !inName) break;
      }
      rest = rest.slice(j);
    }
    // MariaDB ≥ 10.x writes "VALUES\n(…),\n(…);", older dumps "VALUES (…),(…);".
    if (/^ VALUES[ \n]\($/.test(rest)) return { table: name, complete: true };
    // Called at every `(` and backtick: a `(` that does not open the first tuple means another statement.
    return rest.endsWith('(') ? undefined : { complete: false };
  }

  /**
   * Feed it the dump's bytes in order (push), then call result(): rows and
   * checksum of every table that has INSERT statements. A table without rows
   * has none; the caller treats it as empty.
   */
  class DumpRowReader {
    private mode: Mode = 'lineStart';
    /** Between a "Dumping data for table" comment and its UNLOCK TABLES: INSERT lines there are rows. */
    private inData = false;
    /** Still reading the first bytes of a line to tell what it is. */
    private deciding = false;
    private head: number[] = [];
    private inQuote = false;
    private escaped = false;
    /** Where the next backslash of the buffer being read is at or after the scan (-1: none; see quoteEnd). */
    private nextBackslash = NOT_SEARCHED;
    private carry: Buffer = Buffer.alloc(0);
    private carried = 0;
    private current: RowHashSum | undefined;
    private readonly sums = new Map<string, RowHashSum>();
    private failure: Error | undefined;

    push(chunk: Uint8Array): void {
      if (this.failure) return;
      try {
        this.consume(chunk);
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
      }
    }

    result(): Map<string, DumpTableRows> {
      if (this.failure) throw this.failure;
      if (this.mode !== 'lineStart' && this.mode !== 'skipLine') {
        throw new Error('the dump ends inside an INSERT statement');
      }
      const out = new Map<string, DumpTableRows>();
      for (const [table, sum] of this.sums) out.set(table, { rows: sum.rows, checksum: sum.checksum() });
      return out;
    }

    private consume(b: Uint8Array): void {
      this.nextBackslash = NOT_SEARCHED;
      const n = b.length;
      let pos = 0;
      while (pos < n) {
        switch (this.mode) {
          case 'lineStart':
          case 'head': {
            // Collect the statement head byte by byte (short) until it is known to be an INSERT or not.
            const c = b[pos] as number;
            if (this.mode === 'lineStart') {
              this.head = [];
              this.deciding = true;
              this.mode = 'head';
            }
            if (this.deciding) {
              // Which line starts matter: a table's data section opens and closes, and its INSERTs.
              const at = this.head.length;
              const candidate = [PREFIX, DATA_START, DATA_END].find(
                (m) => at < m.length && c === m[at] && this.head.every((x, i) => x === m[i]),
              );
              if (candidate === undefined) {
                this.mode = c === NEWLINE ? 'lineStart' : 'skipLine';
                pos++;
                break;
              }
              this.head.push(c);
              pos++;
              if (this.head.length === candidate.length) {
                this.deciding = false;
                if (candidate !== PREFIX) {
                  this.inData = candidate === DATA_START;
                  this.mode = 'skipLine';
                } else if (!this.inData) {
                  // An INSERT outside a data section (a routine or trigger body) is not a row.
                  this.mode = 'skipLine';
                }
              }
              break;
            }
            this.head.push(c);
            pos++;
            if (c !== OPEN && c !== BACKTICK) break;
            const parsed = parseHead(Buffer.from(this.head).toString('utf8'));
            if (parsed === undefined) this.mode = 'skipLine';
            else if (parsed.complete) {
              let sum = this.sums.get(parsed.table);
              if (!sum) {
                sum = new RowHashSum();
                this.sums.set(parsed.table, sum);
              }
              this.current = sum;
              this.startTuple();
              this.mode = 'tuple';
            } else if (this.head.length > MAX_HEAD) throw new Error('an INSERT statement head is too long');
            break;
          }
          case 'skipLine': {
            const nl = b.indexOf(NEWLINE, pos);
            if (nl < 0) return;
            pos = nl + 1;
            this.mode = 'lineStart';
            break;
          }
          case 'beforeTuple': {
            if (b[pos] === NEWLINE || b[pos] === 0x20) {
              pos++;
              break;
            }
            if (b[pos] !== OPEN) throw new Error('malformed INSERT statement: expected (');
            pos++;
            this.startTuple();
            this.mode = 'tuple';
            break;
          }
          case 'afterTuple': {
            const c = b[pos++];
            if (c === 0x2c) this.mode = 'beforeTuple';
            else if (c === 0x3b) this.mode = 'skipLine';
            else throw new Error('malformed INSERT statement: expected , or ;');
            break;
          }
          case 'tuple': {
            if (this.carried === 0 && !this.inQuote && !this.escaped && this.current) {
              // At a tuple's start: runs of whole tuples in one call (rowScan.wat).
              const [next, scan] = this.current.framed('tuples', b, pos, n);
              if (scan.afterTuple.value === 1) {
                pos = next;
                this.mode = 'afterTuple';
                break;
              }
              if (next !== pos) {
                pos = next;
                break;
              }
            }
            const start = pos;
            const end = this.tupleEnd(b, pos);
            if (end < 0) {
              this.keep(b, start, n);
              return;
            }
            pos = end + 1;
            if (this.carried > 0) {
              this.keep(b, start, end);
              this.current?.add(this.carry, 0, this.carried);
              this.carried = 0;
            } else {
              this.current?.add(b, start, end);
            }
            // Fast path to the next tuple of the statement: ",(" or ",\n(" within this chunk.
            if (b[pos] === 0x2c) {
              const open =
                b[pos + 1] === OPEN ? pos + 1 : b[pos + 1] === NEWLINE && b[pos + 2] === OPEN ? pos + 2 : -1;
              if (open > 0) {
                pos = open + 1;
                this.startTuple();
                break;
              }
            }
            this.mode = 'afterTuple';
            break;
          }
        }
      }
    }

    /**
     * Index of the `)` that ends the tuple being read, scanning `b` from
     * `pos`; -1 when `b` ends first (the quote state carries over to the
     * next push). Outside quotes values are short (numbers, NULL, 0x…): a byte
     * loop. Quoted strings are most of a dump's bytes: native searches (quoteEnd).
     */
    private tupleEnd(b: Uint8Array, pos: number): number {
      const n = b.length;
      if (this.escaped) {
        // The last push ended with a backslash: this first byte is the one it escapes.
        this.escaped = false;
        pos++;
      }
      for (;;) {
        if (this.inQuote) {
          pos = this.quoteEnd(b, pos);
          if (pos < 0) return -1;
          this.inQuote = false;
        }
        let c = 0;
        while (pos < n && (c = b[pos] as number) !== QUOTE && c !== CLOSE) pos++;
        if (pos >= n) return -1;
        if (c === CLOSE) return pos;
        this.inQuote = true;
        pos++;
      }
    }

    /**
     * The position after the quote that ends the quoted value being read,
     * from `pos`; -1 when `b` ends first. A backslash escapes the next
     * byte. The next backslash is searched once and remembered until the scan
     * passes it: most values have none, so most quotes cost one search.
     */
    private quoteEnd(b: Uint8Array, pos: number): number {
      for (;;) {
        const quote = b.indexOf(QUOTE, pos);
        if (this.nextBackslash !== -1 && this.nextBackslash < pos)
          this.nextBackslash = b.indexOf(BACKSLASH, pos);
        const backslash = this.nextBackslash;
        if (backslash < 0 || (quote >= 0 && quote < backslash)) return quote < 0 ? -1 : quote + 1;
        if (backslash + 1 >= b.length) {
          this.escaped = true;
          return -1;
        }
        pos = backslash + 2;
      }
    }

    private startTuple(): void {
      this.inQuote = false;
      this.escaped = false;
      this.carried = 0;
    }

    private keep(b: Uint8Array, start: number, end: number): void {
      const need = this.carried + (end - start);
      if (need > this.carry.length) {
        const bigger = Buffer.allocUnsafe(Math.max(need, this.carry.length * 2, 256));
        this.carry.copy(bigger, 0, 0, this.carried);
        this.carry = bigger;
      }
      this.carry.set(b.subarray(start, end), this.carried);
      this.carried = need;
    }
  }

  return { DumpRowReader };
}

export const { DumpRowReader } = dumpRowsCode({ RowHashSum });
export type DumpRowReader = InstanceType<typeof DumpRowReader>;

/** A DumpRowReader on a worker thread, with the same result. */
export function startDumpRowThread(): RowReaderThread {
  return new RowReaderThread(`new ((${dumpRowsCode.toString()})(${rowHashSource})).DumpRowReader()`);
}
