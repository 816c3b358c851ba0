// The loopback S3 server of the test suite (OpenStack Swift with s3api and
// tempauth, one replica, one directory device) for whole-process benchmarks.
// The test helper test/helpers/s3server.ts is TypeScript and cannot be
// imported from a plain .mjs script, so this starts the same cluster the same
// way: the same config templates and supervisor (test/helpers/swift/), filled
// in here. Keep the two in step when the templates change.
//
// With `tls` the proxy serves HTTPS with a fresh self-signed certificate
// (Swift's own cert_file/key_file): restic's S3 library (minio-go) signs
// uploads over plain HTTP with aws-chunked streaming, which Swift's s3api
// refuses ("Transfering payloads in multiple chunks using aws-chunked is not
// supported"); over HTTPS it sends UNSIGNED-PAYLOAD, which Swift accepts.
//
// Debian packages: swift swift-proxy swift-account swift-container
// swift-object memcached, and openssl for `tls`. The supervisor stops every
// server when this process goes away.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const TEMPLATES = new URL('../../helpers/swift/', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';
const SERVERS = ['account', 'container', 'object', 'proxy'];
export const SWIFT_PACKAGES = [
  'swift',
  'swift-proxy',
  'swift-account',
  'swift-container',
  'swift-object',
  'memcached',
];
const PROBE = '/usr/lib/python3/dist-packages/swift/common/middleware/s3api/s3api.py';

/** True when the Swift packages are installed. */
export const swiftInstalled = () =>
  existsSync(PROBE) &&
  existsSync('/usr/bin/memcached') &&
  SERVERS.every((s) => existsSync(`/usr/bin/swift-${s}-server`));

/**
 * Start a fresh cluster under `parentDir` (default the temp dir). Resolves to
 * { endpoint, region, accessKeyId, secretAccessKey, caFile, dir, stop() } once
 * the S3 API answers; `caFile` (with `tls`) is the certificate clients must
 * trust. The first request (the caller's first bucket) creates the tempauth
 * account.
 */
export async function startSwiftS3({ parentDir = tmpdir(), tls = false } = {}) {
  await mkdir(parentDir, { recursive: true });
  const dir = await mkdtemp(join(parentDir, 'lifeboat-swift-'));
  const [account, container, object, proxy, memcached] = await freePorts(5);
  const values = {
    DIR: dir,
    USER: userInfo().username,
    MEMCACHED_PORT: String(memcached),
    REGION: 'us-east-1',
    ACCOUNT: `lb${randomBytes(3).toString('hex')}`,
    S3_USER: 'tester',
    SECRET: randomBytes(16).toString('hex'),
  };
  const ports = { account, container, object, proxy };
  await mkdir(join(dir, 'etc'));
  await mkdir(join(dir, 'srv', 'd1'), { recursive: true });
  await mkdir(join(dir, 'cache'));
  await writeFile(join(dir, 'etc', 'swift.conf'), await readFile(join(TEMPLATES, 'swift.conf')));
  for (const name of SERVERS) {
    const template = name === 'proxy' ? 'proxy-server.conf.in' : 'backend-server.conf.in';
    const text = (await readFile(join(TEMPLATES, template), 'utf8')).replace(
      /\{\{([A-Z_0-9]+)\}\}/g,
      (whole, key) => {
        const value = { ...values, NAME: name, PORT: String(ports[name]) }[key];
        if (value === undefined) throw new Error(`template placeholder ${whole} has no value`);
        return value;
      },
    );
    await writeFile(join(dir, 'etc', `${name}-server.conf`), text);
  }
  let caFile;
  if (tls) {
    caFile = join(dir, 'etc', 'proxy.crt');
    const keyFile = join(dir, 'etc', 'proxy.key');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        caFile,
        '-days',
        '7',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore', input: '' },
    );
    const conf = join(dir, 'etc', 'proxy-server.conf');
    const text = await readFile(conf, 'utf8');
    await writeFile(
      conf,
      text.replace('[DEFAULT]\n', `[DEFAULT]\ncert_file = ${caFile}\nkey_file = ${keyFile}\n`),
    );
  }
  const log = openSync(join(dir, 'cluster.log'), 'a');
  const cluster = spawn(
    PYTHON,
    [join(TEMPLATES, 'cluster.py'), dir, ...[account, container, object, proxy, memcached].map(String)],
    {
      stdio: ['ignore', log, log],
      cwd: dir,
    },
  );
  closeSync(log);
  cluster.once('error', () => {});
  const stop = async () => {
    if (cluster.exitCode === null && cluster.signalCode === null) {
      const exited = new Promise((resolve) => cluster.once('exit', resolve));
      cluster.kill('SIGTERM');
      const timer = setTimeout(() => cluster.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${proxy}`;
  const ca = caFile === undefined ? undefined : await readFile(caFile);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (cluster.exitCode !== null || cluster.signalCode !== null) {
      const tail = await readFile(join(dir, 'cluster.log'), 'utf8').catch(() => '');
      await stop();
      throw new Error(`the Swift cluster exited while starting:\n${tail.slice(-2000)}`);
    }
    const up = await Promise.all([memcached, account, container, object].map(isListening));
    if (up.every(Boolean) && (await healthy(endpoint, ca))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error('the Swift cluster did not start within 60 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    endpoint,
    region: values.REGION,
    accessKeyId: `${values.ACCOUNT}:${values.S3_USER}`,
    secretAccessKey: values.SECRET,
    caFile,
    dir,
    /** user+system CPU seconds used so far by the supervisor and its servers (memcached included). */
    cpuSeconds: () => treeCpuSeconds(cluster.pid),
    /** The object server's device directory: what the server stores, for `du`. */
    deviceDir: join(dir, 'srv'),
    stop,
  };
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds of `pid` and its direct children (the supervisor forks the servers itself). */
function treeCpuSeconds(pid) {
  const read = (p) => {
    try {
      // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    } catch {
      return 0; // gone
    }
  };
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    // the supervisor is gone
  }
  return read(pid) + children.reduce((sum, child) => sum + read(child), 0);
}

async function freePorts(count) {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function isListening(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function healthy(endpoint, ca) {
  if (ca === undefined) {
    try {
      return (await fetch(`${endpoint}/healthcheck`, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      return false;
    }
  }
  return new Promise((resolve) => {
    const req = httpsGet(`${endpoint}/healthcheck`, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}
