/**
 * A real S3-compatible server for tests: OpenStack Swift from Debian's
 * packages (swift-proxy with the s3api and tempauth middlewares, account,
 * container and object servers, memcached), one replica on one directory
 * device, everything on free 127.0.0.1 ports and in one temp directory.
 * test/helpers/swift/cluster.py builds the rings and supervises the servers.
 *
 * Debian packages: swift swift-proxy swift-account swift-container
 * swift-object memcached (installed with --no-install-recommends).
 *
 * When they are missing, {@link s3ServerRunnable} is false and suites skip
 * with a message, unless LIFEBOAT_TEST_REQUIRE=all, where they run and fail
 * in beforeAll. A server that is installed but does not start always fails.
 * stop() ends every process and removes the directory; if the test process
 * dies without stop(), the supervisor notices and does the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

// The SDK warns about Node 20 on first use; lifeboat supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3TestServer {
  /** `http://127.0.0.1:<port>` of the S3 API. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Create a bucket (a fresh unique name when none is given) and return its name. */
  createBucket(name?: string): Promise<string>;
  /** An SDK client with the server's credentials, for looking behind the backend's back. */
  client: S3Client;
  /** Stop every process and remove the cluster's directory. Idempotent. */
  stop(): Promise<void>;
}

/** The Debian packages the server needs, for messages and CI. */
export const SWIFT_PACKAGES = [
  'swift',
  'swift-proxy',
  'swift-account',
  'swift-container',
  'swift-object',
  'memcached',
];

const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), 'swift');
/** Debian's Swift runs on the system Python, not whatever python3 is first on PATH. */
const PYTHON = '/usr/bin/python3';
const SERVERS = ['account', 'container', 'object', 'proxy'] as const;
const REQUIRED_FILES = [
  PYTHON,
  '/usr/bin/memcached',
  ...SERVERS.map((s) => `/usr/bin/swift-${s}-server`),
  '/usr/lib/python3/dist-packages/swift/common/middleware/s3api/s3api.py',
];
const START_TIMEOUT_MS = 60_000;

export const requireAll = process.env.LIFEBOAT_TEST_REQUIRE === 'all';

const missing = REQUIRED_FILES.filter((path) => !existsSync(path));
/** Why the server cannot run here, or undefined when its programs are installed. */
export const s3ServerProblem =
  missing.length > 0
    ? `Swift is not installed (missing ${missing.join(', ')}; apt-get install --no-install-recommends ${SWIFT_PACKAGES.join(' ')})`
    : undefined;
/** True when S3 suites must run: Swift installed, or LIFEBOAT_TEST_REQUIRE=all. */
export const s3ServerRunnable = s3ServerProblem === undefined || requireAll;
if (s3ServerProblem !== undefined) {
  if (requireAll) console.error(`${s3ServerProblem}: failing because LIFEBOAT_TEST_REQUIRE=all`);
  else console.warn(`${s3ServerProblem}: skipping S3 tests (set LIFEBOAT_TEST_REQUIRE=all to fail instead)`);
}

/** Start a fresh cluster; resolves once the S3 API works. Throws with the servers' logs if it does not start. */
export async function startS3Server(): Promise<S3TestServer> {
  if (s3ServerProblem !== undefined) throw new Error(s3ServerProblem);
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-swift-'));
  let cluster: ChildProcess | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (cluster) await terminate(cluster);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const [account, container, object, proxy, memcached] = (await freePorts(5)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const region = 'us-east-1';
    const accountName = `lb${randomBytes(3).toString('hex')}`;
    const user = 'tester';
    const secretAccessKey = randomBytes(16).toString('hex');
    const ports: Record<(typeof SERVERS)[number], number> = { account, container, object, proxy };
    await writeConfig(dir, ports, {
      DIR: dir,
      USER: userInfo().username,
      MEMCACHED_PORT: String(memcached),
      REGION: region,
      ACCOUNT: accountName,
      S3_USER: user,
      SECRET: secretAccessKey,
    });
    const log = openSync(join(dir, 'cluster.log'), 'a');
    try {
      const args = [
        join(TEMPLATES, 'cluster.py'),
        dir,
        ...[account, container, object, proxy, memcached].map(String),
      ];
      cluster = spawn(PYTHON, args, { stdio: ['ignore', log, log], cwd: dir });
    } finally {
      closeSync(log);
    }
    cluster.once('error', () => {}); // shows up as an exit in waitUntilReady

    const endpoint = `http://127.0.0.1:${proxy}`;
    await waitUntilReady(cluster, [memcached, account, container, object], endpoint);
    const accessKeyId = `${accountName}:${user}`;
    const client = new S3Client({
      region,
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 5,
    });
    const createBucket = async (name = `lb-${randomBytes(6).toString('hex')}`): Promise<string> => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    };
    // The first request creates the tempauth account: proof that the whole chain works.
    await createBucket();
    const stopAll = async (): Promise<void> => {
      client.destroy();
      await stop();
    };
    return { endpoint, accessKeyId, secretAccessKey, region, createBucket, client, stop: stopAll };
  } catch (err) {
    const logs = await logTails(dir);
    await stop();
    throw new Error(`Swift test server did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
}

async function writeConfig(
  dir: string,
  ports: Record<(typeof SERVERS)[number], number>,
  values: Record<string, string>,
): Promise<void> {
  await mkdir(join(dir, 'etc'));
  await mkdir(join(dir, 'srv', 'd1'), { recursive: true });
  await mkdir(join(dir, 'cache'));
  await writeFile(join(dir, 'etc', 'swift.conf'), await readFile(join(TEMPLATES, 'swift.conf')));
  for (const name of SERVERS) {
    const template = name === 'proxy' ? 'proxy-server.conf.in' : 'backend-server.conf.in';
    const text = fill(await readFile(join(TEMPLATES, template), 'utf8'), {
      ...values,
      NAME: name,
      PORT: String(ports[name]),
    });
    await writeFile(join(dir, 'etc', `${name}-server.conf`), text);
  }
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_0-9]+)\}\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder ${whole} has no value`);
    return value;
  });
}

/** Ports free right now on 127.0.0.1 (all distinct). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  // The supervisor gives its servers 5 s; past that, something is wrong.
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitUntilReady(cluster: ChildProcess, ports: number[], endpoint: string): Promise<void> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (cluster.exitCode !== null || cluster.signalCode !== null) {
      throw new Error(`the cluster supervisor exited with ${cluster.exitCode ?? cluster.signalCode}`);
    }
    const listening = await Promise.all(ports.map(isListening));
    if (listening.every(Boolean) && (await healthy(endpoint))) return;
    if (performance.now() > deadline) throw new Error(`not ready after ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/healthcheck`, { signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function logTails(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ['cluster', 'memcached', ...SERVERS]) {
    const text = await readFile(join(dir, `${name}.log`), 'utf8').catch(() => '');
    if (text.trim()) parts.push(`--- ${name}.log\n${text.split('\n').slice(-20).join('\n')}`);
  }
  return parts.join('\n');
}
