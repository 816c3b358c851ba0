#!/usr/bin/env node
// What a snapshot job costs over a plain files job of the same tree: the
// same btrfs subvolume backed up by `kind: files` (paths: [subvolume]) and by
// `kind: snapshot` (provider btrfs: snapshot, back up the snapshot, delete
// it), whole `lifeboat backup` processes under GNU time. Run by a person as
// root (loop device, btrfs), not by the test suite:
//
//   npm run build && sudo node test/bench/snapshot-overhead.mjs [--data-mib 300] [--rounds 3] [--cold]
//        [--keep] [--work test/bench/work] [--dist dist]
//
// Data: --data-mib MiB in a btrfs subvolume on a loop device, a third in
// 1–64 KiB files (200 directories), the rest in 16 MiB files, all
// incompressible. Each job writes to its own local repository. Per round,
// both repositories and the state directory are made anew, then each job runs
// a first backup and an unchanged re-run (the fixed cost of taking and
// removing the snapshot weighs most there); the order of the two jobs
// alternates between rounds so that neither always finds the page cache
// warmed by the other. Prints the median wall and CPU time of each step, and
// the snapshot job's overhead in percent of the files job (target: < 10 %).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { GNU_TIME, ensureTool, measure } from './lib/measure.mjs';

const repoRoot = new URL('../..', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    'data-mib': { type: 'string', default: '300' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    cold: { type: 'boolean', default: false },
    work: { type: 'string', default: join(repoRoot, 'test/bench/work') },
    dist: { type: 'string', default: join(repoRoot, 'dist') },
  },
});
if (process.getuid?.() !== 0) {
  console.error('This benchmark needs root (loop device, btrfs).');
  process.exit(2);
}
const MiB = 1024 * 1024;
const dataBytes = Number(values['data-mib']) * MiB;
const rounds = Number(values.rounds);
const dist = resolve(values.dist);
if (!existsSync(join(dist, 'cli/main.js'))) {
  console.error(`${dist}/cli/main.js not found: run \`npm run build\` first (or pass --dist).`);
  process.exit(2);
}
ensureTool([GNU_TIME, '--version'], 'time');
const work = join(resolve(values.work), 'snapshot-overhead');
const mnt = join(work, 'mnt');
const subvol = join(mnt, 'data');
const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString();

/** Incompressible, deterministic bytes (SHA-256 in counter mode). */
function pseudoRandom(seed, length) {
  const out = Buffer.allocUnsafe(length);
  for (let off = 0, i = 0; off < length; off += 32, i++) {
    createHash('sha256')
      .update(`${seed}:${i}`)
      .digest()
      .copy(out, off, 0, Math.min(32, length - off));
  }
  return out;
}

async function makeData() {
  let small = 0;
  for (let i = 0; small < dataBytes / 3; i++) {
    const size = 1024 + ((i * 2654435761) % (63 * 1024));
    const dir = join(subvol, 'small', `d${i % 200}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.bin`), pseudoRandom(`s${i}`, size));
    small += size;
  }
  await mkdir(join(subvol, 'big'));
  for (let i = 0, big = small; big < dataBytes; i++, big += 16 * MiB) {
    await writeFile(join(subvol, 'big', `b${i}.bin`), pseudoRandom(`b${i}`, 16 * MiB));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run() {
  sh('btrfs', ['subvolume', 'create', subvol]);
  console.error(`making ${values['data-mib']} MiB of files …`);
  await makeData();
  sh('sync', []);
  const config = join(work, 'lifeboat.yaml');
  await writeFile(
    config,
    [
      'defaults:',
      `  stateDir: ${join(work, 'state')}`,
      'repositories:',
      `  forfiles: { url: 'file://${join(work, 'repo-files')}', password: 'env:LIFEBOAT_BENCH_PW' }`,
      `  forsnapshot: { url: 'file://${join(work, 'repo-snapshot')}', password: 'env:LIFEBOAT_BENCH_PW' }`,
      'policies:',
      '  standard: { rpo: 1d, rto: 1h }',
      'jobs:',
      `  tree: { kind: files, paths: ['${subvol}'], policy: standard, repositories: [forfiles] }`,
      `  vol: { kind: snapshot, provider: btrfs, source: '${subvol}', policy: standard, repositories: [forsnapshot] }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env = { ...process.env, LIFEBOAT_BENCH_PW: 'bench password', NO_COLOR: '1' };
  const logFile = join(work, 'steps.log');
  // dist/cli/main.js only exports main(); bin/lifeboat calls it, and so does this launcher for --dist.
  const launcher = join(work, 'lifeboat.mjs');
  await writeFile(
    launcher,
    `import(${JSON.stringify(pathToFileURL(join(dist, 'cli/main.js')).href)}).then((m) => m.main(process.argv));\n`,
  );
  const lb = (...args) => [process.execPath, launcher, '--config', config, ...args];
  const results = { tree: { first: [], again: [] }, vol: { first: [], again: [] } };
  for (let r = 0; r < rounds; r++) {
    for (const p of ['repo-files', 'repo-snapshot', 'state'])
      await rm(join(work, p), { recursive: true, force: true });
    await measure(lb('repo', 'init', 'forfiles'), { env, logFile });
    await measure(lb('repo', 'init', 'forsnapshot'), { env, logFile });
    const order = r % 2 === 0 ? ['tree', 'vol'] : ['vol', 'tree'];
    for (const step of ['first', 'again']) {
      for (const job of order) {
        // Both jobs start with nothing dirty: otherwise the previous job's repository writes are flushed inside
        // the next one's step (the files bench does the same).
        sh('sync', []);
        // A btrfs snapshot's files are new inodes, so their pages are never in the page cache the files job has
        // just warmed: with a warm cache the snapshot job alone reads from disk. --cold drops the cache for both.
        if (values.cold) await writeFile('/proc/sys/vm/drop_caches', '3\n');
        const m = await measure(lb('backup', job), { env, logFile });
        results[job][step].push(m);
        console.error(
          `round ${r + 1} ${job} ${step}: ${m.wall.toFixed(2)} s wall, ${m.cpu.toFixed(2)} s cpu, load ${m.load.toFixed(1)}`,
        );
      }
    }
  }
  console.log(
    `\n${values['data-mib']} MiB in a btrfs subvolume, ${rounds} rounds, medians, ${values.cold ? 'cold' : 'warm'} page cache`,
  );
  console.log(
    `${'step'.padEnd(28)} ${'files job'.padStart(10)} ${'snapshot job'.padStart(13)} ${'overhead'.padStart(9)}`,
  );
  for (const step of ['first', 'again']) {
    for (const what of ['wall', 'cpu']) {
      const a = median(results.tree[step].map((m) => m[what]));
      const b = median(results.vol[step].map((m) => m[what]));
      const name = `${step === 'first' ? 'first backup' : 'unchanged re-run'}, ${what}`;
      console.log(
        `${name.padEnd(28)} ${`${a.toFixed(2)} s`.padStart(10)} ${`${b.toFixed(2)} s`.padStart(13)} ${`${(((b - a) / a) * 100).toFixed(1)} %`.padStart(9)}`,
      );
    }
  }
}

await rm(work, { recursive: true, force: true });
await mkdir(mnt, { recursive: true });
const image = join(work, 'btrfs.img');
await writeFile(image, '');
sh('truncate', ['-s', `${Math.ceil((dataBytes * 2 + 512 * MiB) / MiB)}M`, image]);
sh('mkfs.btrfs', ['-q', '-f', image]);
const dev = sh('losetup', ['-f', '--show', image]).trim();
try {
  sh('mount', [dev, mnt]);
  try {
    await run();
  } finally {
    sh('umount', [mnt]);
  }
} finally {
  sh('losetup', ['-d', dev]);
  if (values.keep) console.error(`kept ${work}`);
  else await rm(work, { recursive: true, force: true });
}
