#!/usr/bin/env node
// Whole-process benchmark of S3 repositories: the built `lifeboat` CLI against
// `restic`, each on a local repository and on an S3 repository in the same
// loopback S3 server. Run by a person, as root, not by the test suite (see
// docs/performance.md, section "S3"):
//
//   npm run build && node test/bench/s3-vs-restic.mjs [--size 1024] [--repeat 1]
//        [--sweep 2,4,8,16] [--keep] [--work test/bench/work] [--dist dist]
//   node test/bench/s3-vs-restic.mjs --report test/bench/work/s3-results.json   (re-print a saved run)
//
// Data: one file, the first --size MiB (default 1024, at most 1024) of
// `tar -cf - /usr/lib` (dataset b of files-vs-restic.mjs). Server: OpenStack
// Swift with s3api on 127.0.0.1 (test/bench/lib/swift-s3.mjs, the test
// suite's server), serving HTTPS with a self-signed certificate, because
// restic's S3 library only signs plain-HTTP uploads in a way Swift refuses.
// Both tools therefore talk TLS to the same server.
//
// For each backend (local directory, S3) both tools, in one run: first backup,
// full restore into an empty directory. Every step is a whole process under
// /usr/bin/time (wall, user+sys CPU, peak RSS); on S3 also the CPU the server
// spent during the step. Which tool goes first alternates per step and round.
// The restore is compared with the data (cmp) outside the timing.
//
// Then the sweep: lifeboat alone on S3 with `?maxConnections=N` in the
// repository URL for every N of --sweep (fresh repository each), first backup
// and full restore; plus restic with its default (s3.connections=5) in the
// same sweep for reference. restic, GNU time, openssl and the Swift packages
// are installed with apt-get when missing. Tables go to stdout; progress to
// stderr; s3-results.json, s3-results.md and logs (work dir/logs/s3-*.log)
// land in the work dir.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { snapshotBuild } from './lib/build-snapshot.mjs';
import { DATASETS } from './lib/file-datasets.mjs';
import { duBytes, ensureTool, GNU_TIME, measure } from './lib/measure.mjs';
import { startSwiftS3, SWIFT_PACKAGES, swiftInstalled } from './lib/swift-s3.mjs';

const repoRoot = new URL('../..', import.meta.url).pathname;
// The SDK (used here for the bucket and repository sizes) warns about Node 20 on first use.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    repeat: { type: 'string', default: '1' },
    sweep: { type: 'string', default: '2,4,8,16' },
    keep: { type: 'boolean', default: false },
    work: { type: 'string', default: join(repoRoot, 'test/bench/work') },
    dist: { type: 'string', default: join(repoRoot, 'dist') },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(
    readFileSync(new URL(import.meta.url), 'utf8')
      .split('\nimport')[0]
      .replace(/^(#!.*\n)?/, ''),
  );
  process.exit(0);
}

const MiB = 1024 * 1024;
const sizeMiB = Number(values.size);
const rounds = Number(values.repeat);
const sweep = values.sweep
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map(Number);
if (
  !(sizeMiB > 0 && sizeMiB <= 1024) ||
  !(Number.isInteger(rounds) && rounds >= 1) ||
  !sweep.every((n) => Number.isInteger(n) && n >= 1 && n <= 1024)
) {
  console.error(
    '--size must be in (0, 1024] MiB, --repeat a whole number >= 1, --sweep whole numbers from 1 to 1024',
  );
  process.exit(2);
}

const PASSWORD = 's3-vs-restic benchmark password';
const BUCKET = 'bench';
const work = resolve(values.work);
const logs = join(work, 'logs');
const TOOLS = ['lifeboat', 'restic'];
const BACKENDS = ['local', 's3'];
const STEPS = [
  { key: 'backup', label: 'first backup' },
  { key: 'restore', label: 'full restore' },
];
/** restic's default number of S3 connections (restic 0.14: -o s3.connections=5). */
const RESTIC_S3_CONNECTIONS = 5;

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---- the S3 side ------------------------------------------------------------

/** An SDK client for the script's own requests (bucket, sizes), trusting the server's certificate. */
async function s3Client(server) {
  const { S3Client } = await import('@aws-sdk/client-s3');
  return new S3Client({
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpsAgent: new HttpsAgent({ ca: readFileSync(server.caFile), keepAlive: true }) },
  });
}

/** Total size of the objects under `prefix/` (the repository as the server stores it). */
async function s3Bytes(client, prefix) {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  let total = 0;
  let token;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) total += o.Size ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return total;
}

// ---- tools ------------------------------------------------------------------

/**
 * lifeboat against `url` (file:// or s3://); `dir` holds its config and state.
 * `s3` carries the endpoint; credentials go by reference (env), as in production.
 */
function lifeboatTool(bin, dir, dataFile, url, s3) {
  const config = join(dir, 'lifeboat.yaml');
  const run = (...args) => [process.execPath, bin, '--config', config, ...args];
  return {
    async init() {
      const s3Line = s3
        ? `, s3: { endpoint: ${JSON.stringify(s3.endpoint)}, region: ${s3.region}, accessKeyId: env:LB_S3_KEY_ID, secretAccessKey: env:LB_S3_SECRET }`
        : '';
      await writeFile(
        config,
        [
          `defaults: { stateDir: ${JSON.stringify(join(dir, 'state'))} }`,
          'repositories:',
          `  bench: { url: ${JSON.stringify(url)}, password: env:LB_BENCH_PW${s3Line} }`,
          'policies:',
          '  p: { rpo: 1d, rto: 1h }',
          'jobs:',
          `  data: { kind: files, paths: [${JSON.stringify(dataFile)}], policy: p, schedule: "0 3 * * *" }`,
          '',
        ].join('\n'),
      );
      return run('repo', 'init');
    },
    backup: () => run('backup', 'data'),
    restore: (target) => run('restore', 'data', '--target', target),
  };
}

/** restic against `repo` (a path or `s3:https://…`); `dir` holds its cache. */
function resticTool(dir, dataFile, repo, caFile, extra = []) {
  const tls = caFile ? ['--cacert', caFile] : [];
  const run = (...args) => [
    'restic',
    '-r',
    repo,
    '--cache-dir',
    join(dir, 'cache'),
    ...tls,
    ...extra,
    ...args,
  ];
  return {
    init: async () => run('init'),
    backup: () => run('backup', dataFile),
    restore: (target) => run('restore', 'latest', '--target', target),
  };
}

// ---- running ----------------------------------------------------------------

/**
 * Run `step` of `tool` as a whole process and return its measures: wall, CPU,
 * peak RSS, the server's CPU during the step (S3), MiB/s of the data, and
 * after a backup the repository's size. A restore is compared with the data.
 */
async function runStep({ name, tool, step, runDir, env, server, sizeOf, dataFile, logName }) {
  const target = join(runDir, `restore-${name}`);
  const argv = step.key === 'restore' ? tool.restore(target) : tool.backup();
  execFileSync('sync');
  const serverBefore = server?.cpuSeconds() ?? 0;
  const result = await measure(argv, { env, logFile: join(logs, logName) });
  result.serverCpu = server ? server.cpuSeconds() - serverBefore : 0;
  result.mibPerSec = sizeMiB / result.wall;
  if (step.key === 'backup') result.repoBytes = await sizeOf();
  if (step.key === 'restore') {
    try {
      execFileSync('cmp', [dataFile, join(target, dataFile)], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`${name} restore differs from the data: ${String(e.stdout)}${String(e.stderr)}`);
    }
    await rm(target, { recursive: true, force: true });
  }
  return result;
}

const describe = (r) =>
  `${r.wall.toFixed(2)} s wall, ${r.mibPerSec.toFixed(0)} MiB/s, ${r.cpu.toFixed(2)} s CPU` +
  (r.serverCpu ? ` (+${r.serverCpu.toFixed(2)} s server)` : '') +
  `, ${(r.rssKiB / 1024).toFixed(0)} MiB RSS` +
  (r.repoBytes !== undefined ? `, repo ${(r.repoBytes / MiB).toFixed(1)} MiB` : '') +
  ` (load ${r.load.toFixed(2)})`;

/** The side-by-side part: both tools, local and S3, first backup and restore, `rounds` times. */
async function sideBySide(bin, env, server, client, dataFile) {
  /** samples[backend][step][tool] = results over rounds */
  const samples = Object.fromEntries(
    BACKENDS.map((b) => [b, Object.fromEntries(STEPS.map((s) => [s.key, { lifeboat: [], restic: [] }]))]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const [bi, backend] of BACKENDS.entries()) {
      const runDir = join(work, 'run', 's3', backend);
      await rm(runDir, { recursive: true, force: true });
      const prefix = (name) => `${name}-r${round}`;
      const tools = {
        lifeboat:
          backend === 'local'
            ? lifeboatTool(
                bin,
                join(runDir, 'lifeboat'),
                dataFile,
                `file://${join(runDir, 'lifeboat', 'repo')}`,
              )
            : lifeboatTool(
                bin,
                join(runDir, 'lifeboat'),
                dataFile,
                `s3://${BUCKET}/${prefix('lifeboat')}`,
                server,
              ),
        restic:
          backend === 'local'
            ? resticTool(join(runDir, 'restic'), dataFile, join(runDir, 'restic', 'repo'))
            : resticTool(
                join(runDir, 'restic'),
                dataFile,
                `s3:${server.endpoint}/${BUCKET}/${prefix('restic')}`,
                server.caFile,
              ),
      };
      const sizeOf = (name) => () =>
        backend === 'local'
          ? Promise.resolve(duBytes(join(runDir, name, 'repo')))
          : s3Bytes(client, prefix(name));
      for (const name of TOOLS) {
        await mkdir(join(runDir, name), { recursive: true });
        await measure(await tools[name].init(), { env, logFile: join(logs, `s3-${backend}-${name}.log`) });
      }
      for (const [si, step] of STEPS.entries()) {
        const order = (si + round + bi) % 2 === 0 ? TOOLS : [...TOOLS].reverse();
        for (const name of order) {
          const result = await runStep({
            name,
            tool: tools[name],
            step,
            runDir,
            env,
            server: backend === 's3' ? server : undefined,
            sizeOf: sizeOf(name),
            dataFile,
            logName: `s3-${backend}-${name}.log`,
          });
          samples[backend][step.key][name].push(result);
          console.error(
            `round ${round + 1} ${backend.padEnd(5)} ${step.label.padEnd(12)} ${name.padEnd(8)} ${describe(result)}`,
          );
        }
      }
      if (!values.keep) await rm(runDir, { recursive: true, force: true });
    }
  }
  return samples;
}

/** lifeboat on S3 with maxConnections=N for every N of the sweep (restic at its default alongside). */
async function sweepConnections(bin, env, server, client, dataFile) {
  /** samples[setting][step] = results over rounds; setting is N or 'restic' */
  const settings = [...sweep, 'restic'];
  const samples = Object.fromEntries(
    settings.map((n) => [n, Object.fromEntries(STEPS.map((s) => [s.key, []]))]),
  );
  for (let round = 0; round < rounds; round++) {
    // Alternate the direction per round, so a trend in the machine's load does not look like a trend in N.
    const order = round % 2 === 0 ? settings : [...settings].reverse();
    for (const n of order) {
      const runDir = join(work, 'run', 's3', `sweep-${n}`);
      await rm(runDir, { recursive: true, force: true });
      await mkdir(runDir, { recursive: true });
      const prefix = `sweep-${n}-r${round}`;
      const tool =
        n === 'restic'
          ? resticTool(runDir, dataFile, `s3:${server.endpoint}/${BUCKET}/${prefix}`, server.caFile)
          : lifeboatTool(bin, runDir, dataFile, `s3://${BUCKET}/${prefix}?maxConnections=${n}`, server);
      const logName = `s3-sweep-${n}.log`;
      await measure(await tool.init(), { env, logFile: join(logs, logName) });
      for (const step of STEPS) {
        const name = n === 'restic' ? 'restic' : 'lifeboat';
        const result = await runStep({
          name,
          tool,
          step,
          runDir,
          env,
          server,
          sizeOf: () => s3Bytes(client, prefix),
          dataFile,
          logName,
        });
        samples[n][step.key].push(result);
        const label =
          n === 'restic' ? `restic (s3.connections=${RESTIC_S3_CONNECTIONS})` : `maxConnections=${n}`;
        console.error(
          `round ${round + 1} sweep ${label.padEnd(28)} ${step.label.padEnd(12)} ${describe(result)}`,
        );
      }
      if (!values.keep) await rm(runDir, { recursive: true, force: true });
    }
  }
  return samples;
}

// ---- report -----------------------------------------------------------------

function summarizePair(runs) {
  const fields = ['wall', 'cpu', 'serverCpu', 'rssKiB', 'mibPerSec', 'repoBytes'];
  const row = { ratio: {} };
  for (const field of fields) {
    if (runs.lifeboat.some((r) => r[field] === undefined)) continue;
    for (const name of TOOLS) {
      row[name] ??= {};
      row[name][field] = median(runs[name].map((r) => r[field]));
    }
    // The pair ran back to back, sharing the load of the moment: its ratio is steadier than the ratio of medians.
    row.ratio[field] = median(runs.lifeboat.map((r, i) => r[field] / runs.restic[i][field]));
  }
  return row;
}

function summarizeOne(runs) {
  const row = {};
  for (const field of ['wall', 'cpu', 'serverCpu', 'rssKiB', 'mibPerSec', 'repoBytes']) {
    if (runs.some((r) => r[field] === undefined)) continue;
    row[field] = median(runs.map((r) => r[field]));
  }
  return row;
}

function formatTable(lines, markdown) {
  const header = lines[0];
  if (markdown) {
    const md = lines.map((cells) => `| ${cells.join(' | ')} |`);
    md.splice(1, 0, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
    return md.join('\n');
  }
  const widths = header.map((_, i) => Math.max(...lines.map((cells) => cells[i].length)));
  return lines
    .map((cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
    .join('\n');
}

/** One table: for each backend and step, lifeboat / restic / ratio of each measure. */
function sideTable(samples, markdown) {
  const groups = [
    ['wall s', 'wall', 2, 1],
    ['MiB/s', 'mibPerSec', 0, 1],
    ['CPU s', 'cpu', 2, 1],
    ['server CPU s', 'serverCpu', 2, 1],
    ['peak RSS MiB', 'rssKiB', 0, 1 / 1024],
    ['repo MiB', 'repoBytes', 1, 1 / MiB],
  ];
  const header = ['backend, step'];
  for (const [title] of groups) header.push(`${title} lifeboat`, 'restic', 'ratio');
  const lines = [header];
  for (const backend of BACKENDS) {
    for (const step of STEPS) {
      const row = summarizePair(samples[backend][step.key]);
      const cells = [`${backend}, ${step.label}`];
      for (const [, field, digits, factor] of groups) {
        if (row.ratio[field] === undefined || (field === 'serverCpu' && backend === 'local')) {
          cells.push('', '', '');
          continue;
        }
        cells.push(
          (row.lifeboat[field] * factor).toFixed(digits),
          (row.restic[field] * factor).toFixed(digits),
          row.ratio[field].toFixed(2),
        );
      }
      lines.push(cells);
    }
  }
  return formatTable(lines, markdown);
}

function sweepTable(samples, markdown) {
  const header = ['S3 connections'];
  for (const step of STEPS) {
    header.push(`${step.label} s`, 'MiB/s', 'CPU s', 'server CPU s', 'RSS MiB');
  }
  const lines = [header];
  for (const [n, bySteps] of Object.entries(samples)) {
    const cells = [n === 'restic' ? `restic (${RESTIC_S3_CONNECTIONS})` : `lifeboat ${n}`];
    for (const step of STEPS) {
      const r = summarizeOne(bySteps[step.key]);
      if (r.wall === undefined) {
        cells.push('', '', '', '', '');
        continue;
      }
      cells.push(
        r.wall.toFixed(2),
        r.mibPerSec.toFixed(0),
        r.cpu.toFixed(2),
        r.serverCpu.toFixed(2),
        (r.rssKiB / 1024).toFixed(0),
      );
    }
    lines.push(cells);
  }
  return formatTable(lines, markdown);
}

function render({ meta, loadBefore, loadAfter, side, sweep: swept, loads }) {
  const fmt = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const load = `1-min load at step starts: min ${loads.min.toFixed(1)}, median ${loads.median.toFixed(1)}, max ${loads.max.toFixed(1)}`;
  const head = [
    `s3-vs-restic, ${meta.date}: ${meta.lifeboat}; ${meta.restic}; node ${meta.node}; ${meta.host}`,
    `data: ${meta.data}; ${meta.options.repeat} round(s) (medians); server: ${meta.server}`,
    `load average (1/5/15 min): before ${fmt(loadBefore)}, after ${fmt(loadAfter)}; ${load}`,
  ];
  const legend =
    'ratio = lifeboat / restic (median over rounds of the back-to-back pair); MiB/s = data size / wall; ' +
    'CPU = the client process (user+sys); server CPU = the Swift processes during the step';
  const text = [...head, '', sideTable(side, false), '', legend];
  const md = [...head.map((l) => `${l}.`), '', sideTable(side, true), '', legend, ''];
  if (swept) {
    const title = 'S3 connections sweep (lifeboat: ?maxConnections=N; restic at its default s3.connections):';
    text.push('', title, sweepTable(swept, false));
    md.push(title, '', sweepTable(swept, true), '');
  }
  return { text: text.join('\n'), md: md.join('\n') };
}

// ---- main -------------------------------------------------------------------

if (values.report) {
  const saved = JSON.parse(readFileSync(values.report, 'utf8'));
  const { text, md } = render(saved);
  console.log(text);
  await writeFile(join(dirname(resolve(values.report)), 's3-results.md'), md);
  process.exit(0);
}

if (process.getuid?.() !== 0) console.error('note: not root; installing missing packages will fail.');
const resticVersion = ensureTool(['restic', 'version'], 'restic').trim();
ensureTool([GNU_TIME, '--version'], 'time');
ensureTool(['openssl', 'version'], 'openssl');
if (!swiftInstalled()) {
  console.error(
    `Swift not found: installing it (apt-get install --no-install-recommends ${SWIFT_PACKAGES.join(' ')})…`,
  );
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: aptEnv });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...SWIFT_PACKAGES], {
    stdio: 'inherit',
    env: aptEnv,
  });
}
await mkdir(logs, { recursive: true });
for (const old of await readdir(logs))
  if (/^s3-.*\.log$/.test(old)) await rm(join(logs, old), { force: true });
const bin = await snapshotBuild({ dist: values.dist, repoRoot, work });

const dataDir = join(work, 'data', 's3');
await rm(dataDir, { recursive: true, force: true });
console.error(`building ${sizeMiB} MiB of data in ${dataDir}…`);
const description = await DATASETS.b.build(dataDir, sizeMiB / 1024);
const dataFile = join(dataDir, 'usr-lib.tar');

console.error('starting the Swift S3 server (HTTPS, self-signed)…');
const server = await startSwiftS3({ parentDir: join(work, 'run'), tls: true });
let client;
try {
  client = await s3Client(server);
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const env = {
    ...process.env,
    LB_BENCH_PW: PASSWORD,
    RESTIC_PASSWORD: PASSWORD,
    LB_S3_KEY_ID: server.accessKeyId,
    LB_S3_SECRET: server.secretAccessKey,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    // lifeboat (Node) trusts the server's self-signed certificate through this; restic gets --cacert.
    NODE_EXTRA_CA_CERTS: server.caFile,
    NO_COLOR: '1',
  };
  for (const v of ['RESTIC_REPOSITORY', 'LIFEBOAT_CONFIG', 'AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete env[v];

  const gitRev = (() => {
    try {
      const git = (...args) =>
        execFileSync('git', ['-C', repoRoot, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
          .toString()
          .trim();
      const rev = git('rev-parse', '--short', 'HEAD');
      const dirty = git('status', '--porcelain', '--', 'src');
      return `git ${rev}${dirty ? ', uncommitted changes in src/' : ''}`;
    } catch {
      return 'git unknown';
    }
  })();
  const swiftVersion = (() => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'swift']).toString().trim();
    } catch {
      return '?';
    }
  })();
  const meta = {
    date: new Date().toISOString(),
    lifeboat: `lifeboat ${JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version} (${gitRev})`,
    restic: resticVersion.split(' compiled')[0],
    node: process.version,
    host: `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM`,
    server: `OpenStack Swift ${swiftVersion} s3api, one proxy and one object server process, HTTPS on 127.0.0.1`,
    data: `${description} (first ${sizeMiB} MiB of a tar of /usr/lib)`,
    options: { size: sizeMiB, repeat: rounds, sweep },
  };
  const loadBefore = loadavg();
  console.error(`${meta.lifeboat}; ${meta.restic}; node ${meta.node}; ${meta.host}`);
  console.error(`load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; work dir ${work}`);

  const side = await sideBySide(bin, env, server, client, dataFile);
  const swept = sweep.length > 0 ? await sweepConnections(bin, env, server, client, dataFile) : undefined;
  const allLoads = [
    ...Object.values(side).flatMap((bySteps) =>
      Object.values(bySteps).flatMap((byTool) => TOOLS.flatMap((n) => byTool[n].map((r) => r.load))),
    ),
    ...Object.values(swept ?? {}).flatMap((bySteps) =>
      Object.values(bySteps).flatMap((rs) => rs.map((r) => r.load)),
    ),
  ];
  const loads = { min: Math.min(...allLoads), median: median(allLoads), max: Math.max(...allLoads) };
  const run = { meta, loadBefore, loadAfter: loadavg(), side, sweep: swept, loads };
  const { text, md } = render(run);
  console.log(text);
  await writeFile(join(work, 's3-results.md'), md);
  await writeFile(join(work, 's3-results.json'), `${JSON.stringify(run, null, 2)}\n`);
  console.error(`\nwrote ${join(work, 's3-results.md')} and s3-results.json; logs in ${logs}`);
} finally {
  client?.destroy();
  await server.stop();
  if (!values.keep) await rm(dataDir, { recursive: true, force: true });
}
