import { describe, expect, it } from 'vitest';
import { LineHasher, RowHashSum } from '../../../../src/sources/database/rowHash.js';
import { copyRowsCode, planReadPieces } from '../../../../src/sources/postgres/readBack.js';

const { CopyRowsReader } = copyRowsCode({ LineHasher, RowHashSum });

/** A frame as the main thread writes it: kind, session, length (u32 LE), payload. */
function frame(kind: number, session: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const header = Buffer.alloc(6);
  header[0] = kind;
  header[1] = session;
  header.writeUInt32LE(payload.length, 2);
  return Buffer.concat([header, payload]);
}

/** A protocol message: type byte, length (itself included), body. */
function message(type: string, body: Buffer | string): Buffer {
  const b = Buffer.from(body);
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([head, b]);
}

/** What a server sends for a COPY TO of `rows`: CopyOutResponse, a CopyData per row, CopyDone. */
function copyOut(rows: string[]): Buffer {
  return Buffer.concat([
    message('H', Buffer.from([0, 0, 0])),
    ...rows.map((r) => message('d', `${r}\n`)),
    message('c', ''),
  ]);
}

function checksumOf(rows: string[]) {
  const sum = new RowHashSum();
  for (const r of rows) sum.add(Buffer.from(r), 0, Buffer.byteLength(r));
  return { rows: rows.length, checksum: sum.checksum() };
}

/** Feed `bytes` to a reader in pieces of `size` bytes (frames and messages split anywhere). */
function readAll(bytes: Buffer, size: number) {
  const reader = new CopyRowsReader();
  for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
  return reader.result();
}

describe("the read-back worker's reader", () => {
  const rowsA = ['1\talpha', '2\tbeta', '3\t\\N', `4\t${'x'.repeat(300)}`];
  const rowsB = ['10\tgamma', '11\tdelta'];

  it('hashes the rows of pieces read by two sessions into one sum per table, however the bytes are cut', () => {
    const a = copyOut(rowsA);
    const b1 = copyOut(rowsB.slice(0, 1));
    const b2 = copyOut(rowsB.slice(1));
    // Session 0 reads table a and the second piece of b; session 1 the first piece of b; their bytes interleave.
    const stream = Buffer.concat([
      frame(1, 0, Buffer.from('public.a')),
      frame(1, 1, Buffer.from('public.b')),
      frame(2, 0, a.subarray(0, 17)),
      frame(2, 1, b1),
      frame(3, 1),
      frame(2, 0, a.subarray(17)),
      frame(3, 0),
      frame(1, 0, Buffer.from('public.b')),
      frame(2, 0, b2),
      frame(3, 0),
      frame(1, 1, Buffer.from('public.empty')),
      frame(2, 1, copyOut([])),
      frame(3, 1),
    ]);
    const expected = new Map([
      ['public.a', checksumOf(rowsA)],
      ['public.b', checksumOf(rowsB)],
      ['public.empty', checksumOf([])],
    ]);
    for (const size of [1, 3, 7, 64, stream.length]) expect(readAll(stream, size)).toEqual(expected);
  });

  it('hashes long runs of rows the same whole as cut byte by byte', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `${i}\t${'v'.repeat(i % 97)}\t${i % 5 ? '\\N' : ''}`);
    const stream = Buffer.concat([
      frame(1, 0, Buffer.from('public.t')),
      frame(2, 0, copyOut(rows)),
      frame(3, 0),
    ]);
    const expected = new Map([['public.t', checksumOf(rows)]]);
    for (const size of [1, 4093, 65536, stream.length]) expect(readAll(stream, size)).toEqual(expected);
  });

  it('skips notices between rows and fails on a COPY that ends inside a row or a message', () => {
    const withNotice = Buffer.concat([
      message('H', Buffer.from([0, 0, 0])),
      message('d', '1\n'),
      message('N', 'Smessage\0\0'),
      message('d', '2\n'),
      message('c', ''),
    ]);
    const ok = Buffer.concat([frame(1, 0, Buffer.from('t')), frame(2, 0, withNotice), frame(3, 0)]);
    expect(readAll(ok, 5).get('t')).toEqual(checksumOf(['1', '2']));

    const noLineEnd = Buffer.concat([
      frame(1, 0, Buffer.from('t')),
      frame(2, 0, message('d', '1')),
      frame(3, 0),
    ]);
    expect(() => readAll(noLineEnd, 100)).toThrow(/a row without its line end/);
    const cut = copyOut(['1']).subarray(0, 12);
    const midMessage = Buffer.concat([frame(1, 0, Buffer.from('t')), frame(2, 0, cut), frame(3, 0)]);
    expect(() => readAll(midMessage, 100)).toThrow(/inside a message/);
    expect(() => readAll(frame(2, 0, message('d', '1\n')), 100)).toThrow(/rows before their table/);
    expect(() => readAll(frame(1, 0, Buffer.from('table')).subarray(0, 8), 100)).toThrow(/inside a frame/);
  });
});

describe('the COPYs that read a restored database back', () => {
  const table = (name: string, blocks: number) => ({
    schema: 'public',
    name,
    copyColumns: ['id', '"Mixed Case"'],
    blocks,
  });

  it('cuts a large table into ranges of 4096 blocks, the last one open, largest pieces first', () => {
    const pieces = planReadPieces([table('small', 10), table('big', 10000)], 150000);
    expect(pieces.map((p) => p.sql)).toEqual([
      `COPY (SELECT id, "Mixed Case" FROM ONLY "public"."big" WHERE ctid >= '(0,0)' AND ctid < '(4096,0)') TO STDOUT`,
      `COPY (SELECT id, "Mixed Case" FROM ONLY "public"."big" WHERE ctid >= '(4096,0)' AND ctid < '(8192,0)') TO STDOUT`,
      `COPY (SELECT id, "Mixed Case" FROM ONLY "public"."big" WHERE ctid >= '(8192,0)') TO STDOUT`,
      `COPY (SELECT id, "Mixed Case" FROM ONLY "public"."small") TO STDOUT`,
    ]);
    expect(new Set(pieces.map((p) => p.key))).toEqual(new Set(['public.big', 'public.small']));
  });

  it('reads a table whole on a server without TID range scans (before PostgreSQL 14)', () => {
    const pieces = planReadPieces([table('big', 10000)], 130011);
    expect(pieces.map((p) => p.sql)).toEqual([
      `COPY (SELECT id, "Mixed Case" FROM ONLY "public"."big") TO STDOUT`,
    ]);
  });
});
