/**
 * WorkerPool.writeFiles on a real file system: a worker creates, checks,
 * writes and finishes restored small files, and leaves nothing behind when
 * one fails.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerPool, type WriteFileSpec } from '../../../src/repository/workerPool.js';
import { textLike } from './helpers.js';

const FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let dir: string;
let pool: WorkerPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-writefiles-'));
  pool = new WorkerPool({ level: 3, workers: 1 });
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

interface File {
  dest: string;
  final?: string;
  data: Buffer;
  sha256?: string;
  mode?: number;
}

/** One writeFiles job for `files`, laid out as SmallFileWrites does. */
async function write(files: File[]) {
  const contents = Buffer.concat(files.map((f) => f.data));
  const names = Buffer.concat(
    files.flatMap((f) => [Buffer.from(f.dest), ...(f.final ? [Buffer.from(f.final)] : [])]),
  );
  const specs: WriteFileSpec[] = files.map((f) => ({
    length: f.data.length,
    destLength: Buffer.byteLength(f.dest),
    finalLength: f.final ? Buffer.byteLength(f.final) : 0,
    flags: FLAGS,
    uid: process.getuid?.() === 0 ? 4321 : -1,
    gid: process.getuid?.() === 0 ? 8765 : -1,
    mode: f.mode ?? 0o640,
    mtime: 1_600_000_000.5,
    ...(f.sha256 === undefined ? {} : { sha256: f.sha256 }),
  }));
  return (await pool.writeFiles(specs, Buffer.from(contents), names)).written;
}

describe('WorkerPool.writeFiles', () => {
  it('writes each file with its content, owner, mode and mtime, and moves it into place', async () => {
    const a = textLike(5000, 'a');
    const b = Buffer.concat([textLike(100, 'head'), Buffer.alloc(128 * 1024), textLike(100, 'tail')]);
    const written = await write([
      { dest: join(dir, 'a'), data: a, sha256: sha(a), mode: 0o600 },
      { dest: join(dir, '.b.tmp'), final: join(dir, 'b'), data: b, sha256: sha(b) },
      { dest: join(dir, 'empty'), data: Buffer.alloc(0) },
    ]);
    expect(written).toEqual([{}, {}, {}]);
    expect((await readFile(join(dir, 'a'))).equals(a)).toBe(true);
    expect((await readFile(join(dir, 'b'))).equals(b)).toBe(true);
    await expect(stat(join(dir, '.b.tmp'))).rejects.toThrow(/ENOENT/);
    const st = await stat(join(dir, 'b'));
    expect(st.mode & 0o7777).toBe(0o640);
    expect(st.mtimeMs).toBe(1_600_000_000_500);
    // The aligned 64 KiB blocks of zeros are holes.
    expect(st.blocks * 512).toBeLessThan(b.length - 32 * 1024);
    if (process.getuid?.() === 0) expect([st.uid, st.gid]).toEqual([4321, 8765]);
    expect((await stat(join(dir, 'empty'))).size).toBe(0);
  });

  it('creates nothing when the content does not match its SHA-256, and never overwrites', async () => {
    await writeFile(join(dir, 'existing'), 'mine');
    const data = textLike(3000, 'c');
    const written = await write([
      { dest: join(dir, 'wrong'), data, sha256: sha(Buffer.from('something else')) },
      { dest: join(dir, 'existing'), data, sha256: sha(data) },
      { dest: join(dir, 'no-such-dir', 'x'), data },
      { dest: join(dir, 'fine'), data },
    ]);
    expect(written[0]?.error?.stage).toBe('verify');
    expect(written[1]?.error).toMatchObject({ stage: 'create', code: 'EEXIST' });
    expect(written[2]?.error).toMatchObject({ stage: 'create', code: 'ENOENT' });
    expect(written[3]).toEqual({});
    await expect(stat(join(dir, 'wrong'))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(dir, 'existing'), 'utf8')).toBe('mine');
  });
});
