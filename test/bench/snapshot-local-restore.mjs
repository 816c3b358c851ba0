#!/usr/bin/env node
// RTO of a snapshot job's restore: from the kept local snapshot (keepLocal)
// against from the repository, same restore point, same target file system,
// whole `lifeboat restore` processes under /usr/bin/time. Run by a person
// (root: loop device and btrfs), not by the test suite:
//
//   npm run build && sudo node test/bench/snapshot-local-restore.mjs [--scale 1] [--repeat 3]
//        [--cold] [--keep] [--work test/bench/work] [--dist dist]
//
// Data at scale 1: 20 000 small files (1–64 KiB) in 200 directories plus
// 1 GiB in 16 files of 64 MiB, all incompressible, in a btrfs subvolume on a
// loop device; the repository is a local directory (file://) in the work
// dir, so the difference is lifeboat's own reading (packs: read, decrypt,
// decompress) against reading the snapshot — a remote repository only
// widens it. One backup with keepLocal: 1, then per round both restores in
// alternating order into fresh directories next to the repository: local
// (default) and --from-repository. Also timed: `snapshots --verify-local`
// (the intactness check alone). The JSON of each local restore gives the
// check's share. Restores are compared with the source (diff -r) outside the
// timing. --cold drops the page cache before each step. Results land in
// <work>/snapshot-local-restore/results.json.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { dropCaches, GNU_TIME, ensureTool, measure } from './lib/measure.mjs';

const repoRoot = new URL('../..', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '3' },
    cold: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    work: { type: 'string', default: join(repoRoot, 'test/bench/work') },
    dist: { type: 'string', default: join(repoRoot, 'dist') },
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
const scale = Number(values.scale);
const rounds = Number(values.repeat);
if (!(scale > 0 && scale <= 4) || !(Number.isInteger(rounds) && rounds >= 1)) {
  console.error('--scale must be in (0, 4] and --repeat a whole number >= 1');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('needs root (loop device, btrfs mount)');
  process.exit(2);
}
const dist = resolve(values.dist);
if (!existsSync(join(dist, 'cli/main.js'))) {
  console.error(`${dist}/cli/main.js not found: run \`npm run build\` first (or pass --dist).`);
  process.exit(2);
}
ensureTool([GNU_TIME, '--version'], 'time');
ensureTool(['mkfs.btrfs', '--version'], 'btrfs-progs');

const MiB = 1024 * 1024;
const SMALL_FILES = Math.max(100, Math.round(20_000 * scale));
const BIG_FILES = Math.max(1, Math.round(16 * scale));
const BIG_BYTES = 64 * MiB;
const work = join(resolve(values.work), 'snapshot-local-restore');
const mnt = join(work, 'mnt');
const subvol = join(mnt, 'data');
const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString();

/** Incompressible bytes from a seeded hash chain (fast, reproducible). */
function pseudoRandom(seed, length) {
  const out = Buffer.allocUnsafe(length);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < length; off += 32) {
    block.copy(out, off, 0, Math.min(32, length - off));
    if ((off & 0xffff) === 0) block = createHash('sha256').update(block).digest();
    else block[off % 32] ^= off & 0xff;
  }
  return out;
}

async function makeData() {
  for (let d = 0; d < 200; d++) await mkdir(join(subvol, 'small', `d${d}`), { recursive: true });
  for (let i = 0; i < SMALL_FILES; i++) {
    const size = 1024 + ((i * 2654435761) % (63 * 1024));
    await writeFile(join(subvol, 'small', `d${i % 200}`, `f${i}.bin`), pseudoRandom(`s${i}`, size));
  }
  await mkdir(join(subvol, 'big'));
  for (let i = 0; i < BIG_FILES; i++) {
    const fh = await open(join(subvol, 'big', `b${i}.bin`), 'w');
    for (let off = 0; off < BIG_BYTES; off += 8 * MiB)
      await fh.write(pseudoRandom(`b${i}-${off}`, 8 * MiB), 0, 8 * MiB, off);
    await fh.close();
  }
}

async function main() {
  await rm(work, { recursive: true, force: true });
  await mkdir(mnt, { recursive: true });
  const dataBytes = SMALL_FILES * 33 * 1024 + BIG_FILES * BIG_BYTES;
  const image = join(work, 'btrfs.img');
  await writeFile(image, '');
  sh('truncate', ['-s', String(Math.ceil((dataBytes * 2.5 + 512 * MiB) / MiB)) + 'M', image]);
  sh('mkfs.btrfs', ['-q', '-f', image]);
  const dev = sh('losetup', ['-f', '--show', image]).trim();
  try {
    sh('mount', [dev, mnt]);
    try {
      await run(dataBytes);
    } finally {
      sh('umount', [mnt]);
    }
  } finally {
    sh('losetup', ['-d', dev]);
    if (!values.keep) await rm(work, { recursive: true, force: true });
  }
}

async function run(dataBytes) {
  sh('btrfs', ['subvolume', 'create', subvol]);
  console.error(`making ${SMALL_FILES} small files and ${BIG_FILES} × 64 MiB …`);
  await makeData();
  const config = join(work, 'lifeboat.yaml');
  await writeFile(
    config,
    [
      'defaults:',
      `  stateDir: ${join(work, 'state')}`,
      'repositories:',
      '  main:',
      `    url: file://${join(work, 'repo')}`,
      '    password: env:LIFEBOAT_BENCH_PW',
      'policies:',
      '  standard: { rpo: 1d, rto: 1h }',
      'jobs:',
      '  vol:',
      '    kind: snapshot',
      '    provider: btrfs',
      `    source: ${subvol}`,
      '    keepLocal: 1',
      '    policy: standard',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env = { ...process.env, LIFEBOAT_BENCH_PW: 'bench password', NO_COLOR: '1' };
  const logFile = join(work, 'steps.log');
  // What bin/lifeboat does, for the CLI in `dist` (argv[1] stands for the script).
  const start = `import(${JSON.stringify(pathToFileURL(join(dist, 'cli/main.js')).href)}).then((m) => m.main(process.argv))`;
  const lb = (...args) => [process.execPath, '-e', start, 'lifeboat', '--config', config, ...args];
  await measure(lb('repo', 'init'), { env, logFile });
  const backup = await measure(lb('backup', 'vol'), { env, logFile });
  console.error(`backup: ${backup.wall} s`);

  const results = {
    scale,
    rounds,
    cold: values.cold,
    smallFiles: SMALL_FILES,
    bigFiles: BIG_FILES,
    dataBytes,
    cpus: cpus().length,
    steps: [],
  };
  const step = async (name, argv, target) => {
    if (target) await rm(target, { recursive: true, force: true });
    if (values.cold) dropCaches();
    const m = await measure(argv, { env, logFile });
    results.steps.push({ name, ...m });
    console.error(
      `${name}: ${m.wall} s wall, ${m.cpu.toFixed(1)} s cpu, ${(m.rssKiB / 1024).toFixed(0)} MiB, load ${m.load.toFixed(2)}`,
    );
    return m;
  };
  const tLocal = join(work, 'restore-local');
  const tRepo = join(work, 'restore-repo');
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['local', 'repository'] : ['repository', 'local'];
    for (const which of order) {
      if (which === 'local')
        await step('restore local', lb('--json', 'restore', 'vol', '--target', tLocal), tLocal);
      else
        await step('restore repository', lb('restore', 'vol', '--from-repository', '--target', tRepo), tRepo);
    }
    await step('snapshots --verify-local', lb('snapshots', '--job', 'vol', '--verify-local'));
  }
  // Outside the timing: what the intactness check alone costs (a dry run does the check, writes nothing) …
  const checkMs = [];
  for (let r = 0; r < rounds; r++) {
    const out = execFileSync(
      lb('--json', 'restore', 'vol', '--dry-run', '--target', join(work, 'dry'))[0],
      lb('--json', 'restore', 'vol', '--dry-run', '--target', join(work, 'dry')).slice(1),
      { env, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 30 },
    );
    const doc = JSON.parse(out.toString());
    if (doc.source !== 'local') throw new Error(`the local snapshot is not used: ${doc.localNotUsed}`);
    checkMs.push(doc.localSnapshot.check.durationMs);
  }
  // … and both restores equal the source.
  for (const t of [tLocal, tRepo]) sh('diff', ['-r', '--no-dereference', subvol, join(t, subvol)]);

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const of = (name) => results.steps.filter((s) => s.name === name);
  const local = median(of('restore local').map((s) => s.wall));
  const repository = median(of('restore repository').map((s) => s.wall));
  const verify = median(of('snapshots --verify-local').map((s) => s.wall));
  results.summary = {
    restoreLocalWall: local,
    restoreRepositoryWall: repository,
    ratio: repository / local,
    intactCheckMs: median(checkMs),
    verifyLocalWall: verify,
    loadAfter: loadavg()[0],
  };
  await writeFile(join(work, 'results.json'), JSON.stringify(results, null, 2));
  console.log(
    [
      `data: ${SMALL_FILES} small files + ${BIG_FILES} × 64 MiB (${(dataBytes / MiB).toFixed(0)} MiB), ${rounds} rounds, ${values.cold ? 'cold' : 'warm'} cache, ${cpus().length} CPUs`,
      `restore from the local snapshot:  ${local} s (median wall; the intactness check inside it: ${(median(checkMs) / 1000).toFixed(2)} s)`,
      `restore from the repository:      ${repository} s`,
      `ratio repository / local:         ${(repository / local).toFixed(2)}×`,
      `snapshots --verify-local (check): ${verify} s`,
    ].join('\n'),
  );
}

await main();
