import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDrain, spawnDrained } from '../../../src/platform/drainThread.js';

/** SHA-256 and length of everything a stream yields. */
async function digestOf(stream: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const piece of stream) {
    hash.update(piece);
    size += piece.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** A program that writes `mib` MiB of a deterministic, non-repeating pattern (a counter per 8 bytes). */
const writer = (mib: number) => [
  process.execPath,
  '-e',
  `const b = Buffer.alloc(65536);
   let n = 0;
   const step = () => {
     for (let i = 0; i < b.length; i += 8) b.writeBigUInt64LE(BigInt(n++), i);
     return b;
   };
   let left = ${mib} * 16;
   const more = () => { while (left-- > 0) if (!process.stdout.write(step())) return process.stdout.once('drain', more); };
   more();`,
];

function expectedDigest(mib: number): { sha256: string; size: number } {
  const hash = createHash('sha256');
  const b = Buffer.alloc(65536);
  let n = 0;
  for (let k = 0; k < mib * 16; k++) {
    for (let i = 0; i < b.length; i += 8) b.writeBigUInt64LE(BigInt(n++), i);
    hash.update(b);
  }
  return { sha256: hash.digest('hex'), size: mib * 1024 * 1024 };
}

// FIFO directories go to os.tmpdir(): a private one for this file (other test files run drains at the same time).
let privateTmp = '';
const savedTmp = process.env.TMPDIR;
beforeAll(async () => {
  privateTmp = await mkdtemp(join(tmpdir(), 'lb-drain-tmp-'));
  process.env.TMPDIR = privateTmp;
});
afterAll(async () => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  await rm(privateTmp, { recursive: true, force: true });
});
const fifoDirs = async () => (await readdir(privateTmp)).filter((n) => n.startsWith('lifeboat-fifo-'));

describe('spawnDrained', () => {
  it('delivers every byte in order, through more data than its slots hold', async () => {
    const before = await fifoDirs();
    const proc = await spawnDrained(writer(40));
    const [got] = await Promise.all([digestOf(proc.stdout), proc.done]);
    expect(got).toEqual(expectedDigest(40));
    // The FIFO's directory is gone once both ends are open.
    expect(await fifoDirs()).toEqual(before);
  });

  it('ends an empty output and keeps the exit status and stderr', async () => {
    const proc = await spawnDrained(['sh', '-c', 'echo broken >&2; exit 3']);
    expect(await digestOf(proc.stdout)).toMatchObject({ size: 0 });
    const err = await proc.done.catch((e: Error) => e);
    expect(String(err)).toContain('exit 3');
    expect(String(err)).toContain('broken');
  });

  it('lets a consumer stop early: the tool is killed and nothing hangs', async () => {
    const proc = await spawnDrained(['sh', '-c', 'exec cat /dev/zero']);
    let seen = 0;
    for await (const piece of proc.stdout) {
      seen += (piece as Uint8Array).length;
      if (seen > 20 * 1024 * 1024) break;
    }
    proc.kill('SIGKILL');
    const err = await proc.done.catch((e: Error) => e);
    expect(String(err)).toContain('SIGKILL');
  });

  it('releases a prepared drain that no tool got, leaving nothing behind', async () => {
    const before = await fifoDirs();
    const drain = await prepareDrain();
    expect(drain).toBeDefined();
    expect((await fifoDirs()).length).toBe(before.length + 1);
    await drain?.release();
    await drain?.release(); // twice is fine
    expect(await fifoDirs()).toEqual(before);
    // The worker read to end of file at once: its stream is empty.
    expect(await digestOf(drain!.output)).toMatchObject({ size: 0 });
  });

  it('starts a tool on a prepared drain', async () => {
    const prepared = prepareDrain();
    const proc = await spawnDrained(writer(3), {}, prepared);
    const [got] = await Promise.all([digestOf(proc.stdout), proc.done]);
    expect(got).toEqual(expectedDigest(3));
    await (await prepared)?.release();
  });

  it('reports a missing program as before', async () => {
    const proc = await spawnDrained(['no-such-program-xyz']);
    const err = await proc.done.catch((e: { code?: string }) => e);
    expect(err.code).toBe('E_EXEC_NOT_FOUND');
    expect(await digestOf(proc.stdout)).toMatchObject({ size: 0 });
  });

  it('does not keep the process alive for a stream nobody reads', async () => {
    // A separate Node process (of the built module: npm test builds first) starts a drained tool that
    // writes more than the slots hold, never reads it, kills it, and must then exit by itself.
    const built = new URL('../../../dist/platform/drainThread.js', import.meta.url);
    const script = `
      const { spawnDrained } = await import(${JSON.stringify(built.href)});
      const proc = await spawnDrained(['sh', '-c', 'exec head -c 40000000 /dev/zero']);
      await new Promise((r) => setTimeout(r, 300));
      proc.kill('SIGKILL');
      await proc.done.catch(() => {});
      console.log('exited');`;
    // A file, not `-e`: with --input-type=module, eval'd workers would be taken for modules too.
    const dir = await mkdtemp(join(tmpdir(), 'lb-drain-test-'));
    try {
      await writeFile(join(dir, 'unread.mjs'), script);
      const out = execFileSync(process.execPath, [join(dir, 'unread.mjs')], { timeout: 20_000 });
      expect(out.toString()).toContain('exited');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
