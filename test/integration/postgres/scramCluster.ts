/**
 * A private PostgreSQL cluster for tests that need a server which really
 * checks passwords (the machine's server trusts 127.0.0.1): initdb into a
 * temp dir with scram-sha-256 for TCP and trust on its own Unix socket,
 * started on a free port, stopped and removed by `stop()`. Runs the server
 * as the `postgres` OS user when the tests run as root.
 */
import { chown, mkdtemp, rm, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/platform/exec.js';

export interface ScramCluster {
  port: number;
  socketDir: string;
  /** Run SQL as the superuser over the trusted socket. */
  psql(sqlText: string, database?: string): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function binDir(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql'))
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  return join('/usr/lib/postgresql', versions[0], 'bin');
}

async function postgresIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const r = await run(['id', '-u', 'postgres']);
  const g = await run(['id', '-g', 'postgres']);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Start a cluster; throws with initdb/pg_ctl output when it cannot. */
export async function startScramCluster(): Promise<ScramCluster> {
  const bin = await binDir();
  const ids = await postgresIds();
  const dir = await mkdtemp(join(tmpdir(), 'lb-pgscram-'));
  if (ids) await chown(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const as = ids ? { uid: ids.uid, gid: ids.gid, env: { ...process.env, HOME: dir } } : {};
  const check = async (argv: string[]) => {
    const r = await run(argv, { ...as, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };
  await check([
    join(bin, 'initdb'),
    '-D',
    data,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ]);
  await check([
    join(bin, 'pg_ctl'),
    '-D',
    data,
    '-l',
    join(dir, 'log'),
    '-w',
    '-t',
    '60',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB`,
    'start',
  ]);
  const psqlBin = join(bin, 'psql');
  return {
    port,
    socketDir: dir,
    psql: (sqlText, database = 'postgres') =>
      check([
        psqlBin,
        '-X',
        '-q',
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        database,
        '-c',
        sqlText,
      ]),
    async stop() {
      await run([join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'], {
        ...as,
        timeoutMs: 60_000,
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
