#!/usr/bin/env node
// Disk-image backup: lifeboat's image job against `restic backup --stdin` on
// the same ext4 image. Run by a person as root, not by the test suite:
//
//   npm run build && node test/bench/image-vs-restic.mjs [--gib 1] [--data-mib 300] [--keep]
//        [--dist dist] [--workdir /var/tmp]
//
// It builds a sparse ext4 image of --gib GiB holding --data-mib MiB of files
// (half incompressible, half text-like), backs it up with both tools, changes
// about 1 % of the files, backs up again, then restores the second backup with
// both and checks the SHA-256 of each restore against the image. It prints
// wall and CPU times (user + system), repository sizes and lifeboat/restic
// ratios, and the 1-minute load average before each step. restic is
// installed from Debian (apt-get install restic) when missing. Both tools use
// their default password KDF, compression and chunking; lifeboat's image
// job uses its default 4 MiB blocks. --dist <dir> points at another build.
//
// lifeboat runs in this process (library calls, so no CLI start-up or key
// derivation is timed); its CPU is this process's. restic runs under GNU time,
// reading the image from a shell redirect (`restic backup --stdin < disk.img`)
// and dumping into the target file the same way. The image is read once
// before the first backup so both tools start from the same page cache (the
// first tool to read a freshly made image would otherwise pay for faulting in
// its holes, ~1.8 s of system time per GiB, and the second would not).
import { execFileSync } from 'node:child_process';
import { createHash, createCipheriv, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { GNU_TIME, ensureTool, measure } from './lib/measure.mjs';

const { values } = parseArgs({
  options: {
    gib: { type: 'string', default: '1' },
    'data-mib': { type: 'string', default: '300' },
    keep: { type: 'boolean', default: false },
    workdir: { type: 'string', default: '/var/tmp' },
    dist: { type: 'string', default: new URL('../../dist', import.meta.url).pathname },
  },
});
const dist = (p) => pathToFileURL(join(resolve(values.dist), p)).href;
const { initRepository } = await import(dist('repository/repository.js'));
const { LocalStorage } = await import(dist('storage/local.js'));
const { systemClock } = await import(dist('platform/clock.js'));
const { silentLogger } = await import(dist('platform/logger.js'));
const { backupImage, restoreImage } = await import(dist('sources/image/index.js'));

const MiB = 1024 * 1024;
const imageSize = Math.round(Number(values.gib) * 1024) * MiB;
const dataBytes = Number(values['data-mib']) * MiB;
const PASSWORD = 'benchmark password';

if (process.getuid?.() !== 0) {
  console.error('This benchmark needs root (loop devices and mounts).');
  process.exit(2);
}

const sh = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts }).toString();

/**
 * Run restic under GNU time with the repository password, stdin from and
 * stdout to files through a shell redirect (as a person would run it);
 * resolves to { seconds, cpu, load }.
 */
async function restic(args, { stdinFile, stdoutFile } = {}) {
  const redirect = `${stdinFile ? ' < "$IN"' : ''}${stdoutFile ? ' > "$OUT"' : ''}`;
  const m = await measure(['sh', '-c', `exec restic "$@"${redirect}`, 'restic', ...args], {
    env: { ...process.env, RESTIC_PASSWORD: PASSWORD, IN: stdinFile ?? '', OUT: stdoutFile ?? '' },
    logFile: resticLog,
  });
  return { seconds: m.wall, cpu: m.cpu, load: m.load };
}

async function dirBytes(root) {
  let total = 0;
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function sha256File(path, size) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, size ? { start: 0, end: size - 1 } : {}))
    hash.update(chunk);
  return hash.digest('hex');
}

/** Deterministic data: an AES-CTR keystream (incompressible) or words from it (compressible). */
function fileContent(seed, size, textLike) {
  const key = createHash('sha256').update(seed).digest();
  const bytes = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
  if (!textLike) return bytes;
  const words = [
    'restore',
    'backup',
    'lifeboat',
    'drill',
    'policy',
    'snapshot',
    'rpo',
    'rto',
    'disk',
    'image',
  ];
  const out = Buffer.alloc(size);
  for (let at = 0, i = 0; at < size; i++) at += out.write(`${words[bytes[i % size] % words.length]} `, at);
  return out;
}

/** Wall and CPU seconds (all threads of this process) of an in-process step. */
async function timed(fn) {
  const load = loadavg()[0];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const cpu = process.cpuUsage(c0);
  return { value, seconds: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6, load };
}

const fmtMiB = (n) => `${(n / MiB).toFixed(1)} MiB`;
const fmtS = (s) => `${s.toFixed(2)} s`;

const resticVersion = ensureTool(['restic', 'version'], 'restic').trim();
ensureTool([GNU_TIME, '--version'], 'time');
const work = await mkdtemp(join(values.workdir, 'lifeboat-bench-image-'));
const image = join(work, 'disk.img');
const mnt = join(work, 'mnt');
const resticLog = join(work, 'restic.log');
let loop;
try {
  console.error(`work dir ${work}; ${resticVersion}`);
  await writeFile(image, '');
  await truncate(image, imageSize);
  sh('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  loop = sh('losetup', ['-f', '--show', image]).trim();
  await mkdir(mnt);
  const fileSize = 512 * 1024;
  const fileCount = Math.round(dataBytes / fileSize);
  sh('mount', [loop, mnt]);
  for (let i = 0; i < fileCount; i++) {
    const dir = join(mnt, `d${i % 20}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.dat`), fileContent(`file-${i}`, fileSize, i % 2 === 0));
  }
  sh('umount', [mnt]);
  // Same page cache for both tools (see the file comment).
  const firstSha = await sha256File(image);

  // lifeboat
  const lbRoot = join(work, 'lifeboat-repo');
  const storage = await LocalStorage.create(pathToFileURL(lbRoot).href);
  const repo = await initRepository(storage, PASSWORD, { clock: systemClock, host: 'bench' });
  const lbBackup = async () => {
    const r = await backupImage(repo, { device: image }, { logger: silentLogger });
    const now = new Date(systemClock.now()).toISOString();
    await repo.saveSnapshot({
      v: 1,
      job: 'disk',
      kind: 'image',
      host: 'bench',
      startedAt: now,
      endedAt: now,
      tree: r.tree,
      paths: [image],
      tags: [],
      partial: false,
      fingerprint: { ...r.fingerprint },
      stats: r.stats,
      toolVersion: 'bench',
    });
    return r;
  };
  // restic
  const rRoot = join(work, 'restic-repo');
  await restic(['init', '--repo', rRoot]);
  const rBackup = () =>
    restic(['backup', '-q', '--repo', rRoot, '--stdin', '--stdin-filename', 'disk.img'], {
      stdinFile: image,
    });

  const lb1 = await timed(lbBackup);
  if (lb1.value.fingerprint.sha256 !== firstSha) throw new Error('lifeboat recorded a wrong image SHA-256');
  const lbBytes1 = await dirBytes(lbRoot);
  const r1 = await rBackup();
  const rBytes1 = await dirBytes(rRoot);

  // Change about 1 % of the files: rewrite them with new content.
  sh('mount', [loop, mnt]);
  const changed = Math.max(1, Math.round(fileCount / 100));
  for (let i = 0; i < changed; i++) {
    const n = (i * 97) % fileCount;
    await writeFile(join(mnt, `d${n % 20}`, `f${n}.dat`), randomBytes(fileSize));
  }
  sh('umount', [mnt]);
  const sourceSha = await sha256File(image);

  const lb2 = await timed(lbBackup);
  const lbBytes2 = await dirBytes(lbRoot);
  const r2 = await rBackup();
  const rBytes2 = await dirBytes(rRoot);

  const lbTarget = join(work, 'restore-lifeboat.img');
  const lbRestore = await timed(() => restoreImage(repo, lb2.value.tree, lbTarget));
  const rTarget = join(work, 'restore-restic.img');
  const rRestore = await restic(['dump', '-q', '--repo', rRoot, 'latest', 'disk.img'], {
    stdoutFile: rTarget,
  });
  await repo.close();

  const lbSha = await sha256File(lbTarget);
  const rSha = await sha256File(rTarget);
  const lbAlloc = (await stat(lbTarget)).blocks * 512;
  const rAlloc = (await stat(rTarget)).blocks * 512;

  const timeRows = (name, lb, r) => [
    [`${name}, wall time`, fmtS(lb.seconds), fmtS(r.seconds), lb.seconds / r.seconds],
    [`${name}, CPU time`, fmtS(lb.cpu), fmtS(r.cpu), lb.cpu / r.cpu],
  ];
  const rows = [
    ...timeRows('first backup', lb1, r1),
    ['first backup, repository size', fmtMiB(lbBytes1), fmtMiB(rBytes1), lbBytes1 / rBytes1],
    ...timeRows(`second backup (${changed} files changed)`, lb2, r2),
    [
      'second backup, bytes added to repository',
      fmtMiB(lbBytes2 - lbBytes1),
      fmtMiB(rBytes2 - rBytes1),
      (lbBytes2 - lbBytes1) / (rBytes2 - rBytes1),
    ],
    ['repository size after the second backup', fmtMiB(lbBytes2), fmtMiB(rBytes2), lbBytes2 / rBytes2],
    ...timeRows('restore of second backup', lbRestore, rRestore),
    ['restored file, allocated on disk', fmtMiB(lbAlloc), fmtMiB(rAlloc), lbAlloc / rAlloc],
  ];
  console.log(
    `\nimage ${fmtMiB(imageSize)}, ${fileCount} files (${fmtMiB(fileCount * fileSize)}), ${resticVersion}`,
  );
  const loads = [lb1, r1, lb2, r2, lbRestore, rRestore].map((t) => t.load.toFixed(1));
  console.log(
    `1-min load before each step (lifeboat, restic; backup 1, backup 2, restore): ${loads.join(' ')}`,
  );
  console.log(
    `${'measure'.padEnd(50)} ${'lifeboat'.padStart(12)} ${'restic'.padStart(12)} ${'ratio'.padStart(7)}`,
  );
  for (const [name, a, b, ratio] of rows) {
    console.log(`${name.padEnd(50)} ${a.padStart(12)} ${b.padStart(12)} ${ratio.toFixed(2).padStart(7)}`);
  }
  console.log(
    `restores verified: lifeboat ${lbSha === sourceSha ? 'OK' : 'MISMATCH'}, restic ${rSha === sourceSha ? 'OK' : 'MISMATCH'}`,
  );
  if (lbSha !== sourceSha || rSha !== sourceSha) process.exitCode = 1;
} finally {
  try {
    execFileSync('umount', [mnt], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  if (loop) execFileSync('losetup', ['-d', loop]);
  if (values.keep) console.error(`kept ${work}`);
  else await rm(work, { recursive: true, force: true });
}
