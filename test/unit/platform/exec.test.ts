import { describe, expect, it } from 'vitest';
import { formatCommand, run, runChecked, spawnStreaming, TailBuffer } from '../../../src/platform/exec.js';
import { LifeboatError } from '../../../src/errors.js';

describe('exec', () => {
  it('runs an argv array without a shell', async () => {
    const r = await run(['printf', '%s', 'a; echo injected']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('a; echo injected');
  });

  it('captures stderr and exit codes', async () => {
    const r = await run(['sh', '-c', 'echo oops >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('oops');
  });

  it('runChecked fails with the command and its stderr, redacted', async () => {
    const err = await runChecked(['sh', '-c', 'echo "password=topsecret failed" >&2; exit 1']).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(LifeboatError);
    expect(String(err.message)).toContain('failed (exit 1)');
    expect(String(err.message)).not.toContain('topsecret');
  });

  it('kills a command that exceeds its timeout', async () => {
    const r = await run(['sleep', '10'], { timeoutMs: 200 });
    expect(r.signal).toBe('SIGTERM');
    expect(r.stderr).toContain('timed out');
  });

  it('reports a missing program clearly', async () => {
    const err = await run(['no-such-program-xyz']).catch((e) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err.code).toBe('E_EXEC_NOT_FOUND');
  });

  it('streams stdout and rejects done on failure', async () => {
    const p = spawnStreaming(['sh', '-c', 'printf hello; exit 2']);
    let text = '';
    for await (const c of p.stdout) text += c.toString();
    expect(text).toBe('hello');
    await expect(p.done).rejects.toThrow(/exit 2/);
  });

  describe('stdoutBuffer (coreutils stdbuf)', () => {
    const collect = async (p: ReturnType<typeof spawnStreaming>) => {
      let text = '';
      for await (const c of p.stdout) text += c.toString();
      return text;
    };

    it("sets the program's stdio buffer and passes its output through unchanged", async () => {
      // stdbuf works by preloading a library that reads _STDBUF_O at the program's start.
      const env = await collect(spawnStreaming(['sh', '-c', 'echo "$_STDBUF_O"'], { stdoutBuffer: 65536 }));
      expect(env.trim()).toBe('65536');
      const p = spawnStreaming(['seq', '1', '100000'], { stdoutBuffer: 1024 * 1024 });
      const numbers = (await collect(p)).trimEnd().split('\n');
      await p.done;
      expect(numbers.length).toBe(100000);
      expect(numbers[99999]).toBe('100000');
    });

    it('runs the program as is where stdbuf is not installed', async () => {
      const path = process.env.PATH;
      process.env.PATH = '/nonexistent-lifeboat-test-dir';
      try {
        const p = spawnStreaming(['/bin/sh', '-c', 'echo "${_STDBUF_O:-unbuffered}"'], {
          stdoutBuffer: 4096,
        });
        expect((await collect(p)).trim()).toBe('unbuffered');
        await p.done;
      } finally {
        process.env.PATH = path;
      }
    });

    it('reports a missing program as missing and failures with the command as given', async () => {
      const missing = spawnStreaming(['no-such-program-xyz', '--x'], { stdoutBuffer: 4096 });
      await collect(missing);
      const err = await missing.done.catch((e) => e);
      expect(err).toBeInstanceOf(LifeboatError);
      expect(err.code).toBe('E_EXEC_NOT_FOUND');
      expect(String(err.message)).toContain('cannot run no-such-program-xyz');

      const failing = spawnStreaming(['sh', '-c', 'exit 5'], { stdoutBuffer: 4096 });
      await collect(failing);
      const failure = await failing.done.catch((e) => e);
      expect(String(failure.message)).toMatch(/^sh -c 'exit 5' failed \(exit 5\)/);
    });
  });

  it('quotes arguments for display', () => {
    expect(formatCommand(['pg_dump', '--dbname', 'my db', "it's"])).toBe(
      `pg_dump --dbname 'my db' 'it'\\''s'`,
    );
  });

  it('bounds captured output', () => {
    const t = new TailBuffer(10);
    for (let i = 0; i < 100; i++) t.push('0123456789');
    expect(t.toString().length).toBe(10);
  });
});
