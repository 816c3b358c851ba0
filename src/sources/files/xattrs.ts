/**
 * Extended attributes through getfattr/setfattr (package `attr`): Node has no
 * xattr API. Used only when a job enables xattrs. Reads are batched per
 * directory and writes go through one `setfattr --restore` per directory, so
 * the cost is one process per directory, not per file. Both tools run with
 * `-h`: attributes of a symlink itself, never of what it points to.
 */
import { OperationError, isErrnoException } from '../../errors.js';
import { run } from '../../platform/exec.js';
import { isUtf8 } from './names.js';

const BATCH = 100;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, LC_ALL: 'C' });

/** Fail early, before anything is written, when xattrs are enabled but the tools are missing. */
export async function checkXattrTools(): Promise<void> {
  for (const tool of ['getfattr', 'setfattr']) {
    try {
      await run([tool, '--version'], { timeoutMs: 10_000, env: env() });
    } catch (err) {
      if (err instanceof OperationError || (isErrnoException(err) && err.code === 'ENOENT')) {
        throw new OperationError('E_XATTR_TOOLS', `xattrs are enabled but ${tool} cannot be run`, {
          hint: 'Install the attr package (e.g. apt-get install attr) or set xattrs: false for this job.',
          cause: err,
        });
      }
      throw err;
    }
  }
}

/** Undo getfattr's `\ooo` escapes, returning the raw bytes. */
export function unquote(text: string): Buffer {
  const out: Buffer[] = [];
  let last = 0;
  const re = /\\([0-7]{3})/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push(Buffer.from(text.slice(last, m.index), 'utf8'), Buffer.from([parseInt(m[1]!, 8) & 0xff]));
    last = m.index + m[0].length;
  }
  out.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(out);
}

/** Escape bytes the way setfattr --restore reads them back (`\ooo`). */
export function quote(raw: Buffer): Buffer {
  const parts: number[] = [];
  for (const b of raw) {
    if (b < 0x21 || b === 0x7f || b === 0x5c || b === 0x3d) {
      parts.push(0x5c, 0x30 + ((b >> 6) & 7), 0x30 + ((b >> 3) & 7), 0x30 + (b & 7));
    } else parts.push(b);
  }
  return Buffer.from(parts);
}

/** Parse `getfattr -d -e base64` output into path → { name: base64 value }. */
export function parseGetfattr(stdout: string): Map<string, Record<string, string>> {
  const result = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = {};
      result.set(unquote(line.slice('# file: '.length)).toString('utf8'), current);
      continue;
    }
    if (line === '' || !current) continue;
    const eq = line.indexOf('=');
    const name = unquote(eq < 0 ? line : line.slice(0, eq)).toString('utf8');
    const value = eq < 0 ? '' : line.slice(eq + 1);
    // With -e base64 values are `0s<base64>`; anything else would be a format we do not expect.
    current[name] = value.startsWith('0s') ? value.slice(2) : Buffer.from(value, 'utf8').toString('base64');
  }
  return result;
}

/** Read the xattrs of many paths (valid UTF-8 only). Paths without attributes are absent from the map. */
export async function readXattrs(
  paths: readonly string[],
): Promise<{ attrs: Map<string, Record<string, string>>; errors: string[] }> {
  const attrs = new Map<string, Record<string, string>>();
  const errors: string[] = [];
  for (let i = 0; i < paths.length; i += BATCH) {
    const batch = paths.slice(i, i + BATCH);
    const res = await run(
      ['getfattr', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', '--', ...batch],
      { env: env(), timeoutMs: 120_000 },
    );
    for (const [path, values] of parseGetfattr(res.stdout)) {
      if (Object.keys(values).length > 0) attrs.set(path, values);
    }
    // getfattr exits 1 when some path failed; ENOTSUP on filesystems without xattrs is not an error.
    for (const line of res.stderr.split('\n')) {
      if (line.trim() !== '' && !/Operation not supported/.test(line)) errors.push(line.trim());
    }
  }
  return { attrs, errors };
}

/** Set xattrs on many paths (already created by the caller). Returns error messages, never throws for a path. */
export async function writeXattrs(
  entries: readonly { path: Buffer; attrs: Record<string, string> }[],
): Promise<string[]> {
  const errors: string[] = [];
  const dump: Buffer[] = [];
  for (const { path, attrs } of entries) {
    const lines: Buffer[] = [];
    for (const [name, value] of Object.entries(attrs)) {
      if (value === '') {
        // setfattr --restore drops empty values; set those one by one (argv needs a UTF-8 path).
        if (!isUtf8(path)) {
          errors.push(`${path.toString('utf8')}: cannot set empty attribute ${name} on a non-UTF-8 name`);
          continue;
        }
        const res = await run(['setfattr', '-h', '-n', name, '--', path.toString('utf8')], { env: env() });
        if (res.code !== 0) errors.push(res.stderr.trim());
        continue;
      }
      lines.push(quote(Buffer.from(name, 'utf8')), Buffer.from(`=0s${value}\n`));
    }
    if (lines.length > 0)
      dump.push(Buffer.from('# file: '), quote(path), Buffer.from('\n'), ...lines, Buffer.from('\n'));
  }
  if (dump.length === 0) return errors;
  const res = await run(['setfattr', '-h', '--restore=-'], {
    env: env(),
    input: Buffer.concat(dump),
    timeoutMs: 120_000,
  });
  if (res.code !== 0) {
    for (const line of res.stderr.split('\n')) if (line.trim() !== '') errors.push(line.trim());
  }
  return errors;
}
