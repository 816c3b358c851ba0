import { describe, expect, it } from 'vitest';
import { RowReaderThread } from '../../../../src/sources/database/rowReaderWorker.js';
import { DumpRowReader, startDumpRowThread } from '../../../../src/sources/mysql/dumpRows.js';

const dumpOf = (tables: number, rowsPerTable: number): Buffer => {
  const lines: string[] = [];
  for (let t = 0; t < tables; t++) {
    lines.push(`-- Dumping data for table \`t${t}\``);
    const tuples = Array.from({ length: rowsPerTable }, (_, i) => `(${i},'row ${i} of \\'t${t}\\'')`);
    lines.push(`INSERT INTO \`t${t}\` VALUES ${tuples.join(',')};`, 'UNLOCK TABLES;');
  }
  return Buffer.from(lines.join('\n') + '\n');
};

const inThread = (dump: Buffer) => {
  const reader = new DumpRowReader();
  reader.push(dump);
  return reader.result();
};

/** Push `dump` in pieces of `piece` bytes, awaiting backpressure, and return the thread's result. */
async function onThread(thread: RowReaderThread, dump: Buffer, piece: number) {
  try {
    for (let at = 0; at < dump.length; at += piece) await thread.push(dump.subarray(at, at + piece));
    return await thread.result();
  } finally {
    await thread.close();
  }
}

describe('RowReaderThread', () => {
  it('gives the result of the same reader run on this thread, however the stream is cut', async () => {
    // ~9 MiB: more than all slots together, so pushes wait for the worker.
    const dump = dumpOf(3, 100_000);
    const expected = inThread(dump);
    expect(expected.get('t2')?.rows).toBe(100_000);
    for (const piece of [1000, 64 * 1024, 300_000]) {
      expect(await onThread(startDumpRowThread(), dump, piece)).toEqual(expected);
    }
  });

  it("rejects with the reader's own error", async () => {
    const bad = Buffer.from("-- Dumping data for table `t`\nINSERT INTO `t` VALUES (1,'a'),(2,");
    await expect(onThread(startDumpRowThread(), bad, 7)).rejects.toThrow(/ends inside an INSERT/);
  });

  it('rejects, and stops making pushes wait, when its worker dies', async () => {
    const thread = new RowReaderThread('(() => { throw new Error("no reader here"); })()');
    await expect(onThread(thread, dumpOf(1, 200_000), 64 * 1024)).rejects.toThrow(/no reader here/);
  });
});
