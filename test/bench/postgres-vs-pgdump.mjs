#!/usr/bin/env node
// lifeboat's postgres job against plain pg_dump/pg_restore on a pgbench
// database. Run by a person, not by the test suite:
//
//   npm run build && node test/bench/postgres-vs-pgdump.mjs [--scale 50] [--jobs 2] [--host 127.0.0.1 --port 5432 --user postgres]
//
// Measures, on the same server and database:
//   backup    pg_dump -Fc > file            vs  backupPostgres (checksums on, and off) into a local repository
//   size      dump file size                vs  repository growth on disk (zstd + encryption + packs)
//   2nd run   after updating ~1% of the rows: a second dump file vs the bytes the second backup added
//   3rd run   after appending rows to one table: the bytes the third backup added
//   restore   pg_restore -d (1 and N jobs)  vs  restorePostgres streamed (1 job) and spooled (N jobs), plus verification
// Creates lb_bench_* databases and removes them (and the temp dir) at the end.
// --dist <dir> points at another build.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '50' },
    jobs: { type: 'string', default: '2' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '5432' },
    user: { type: 'string', default: 'postgres' },
    dist: { type: 'string', default: new URL('../../dist', import.meta.url).pathname },
  },
});
const dist = (p) => pathToFileURL(join(resolve(values.dist), p)).href;
const { backupPostgres } = await import(dist('sources/postgres/backup.js'));
const { restorePostgres } = await import(dist('sources/postgres/restore.js'));
const { initRepository } = await import(dist('repository/repository.js'));
const { LocalStorage } = await import(dist('storage/local.js'));
const { systemClock } = await import(dist('platform/clock.js'));

const conn = { host: values.host, port: Number(values.port), user: values.user };
const jobs = Number(values.jobs);
const env = { ...process.env, PGHOST: conn.host, PGPORT: String(conn.port), PGUSER: conn.user };
const MiB = 1024 * 1024;
const psql = (db, sql) =>
  execFileSync('psql', ['-X', '-q', '-At', '-d', db, '-c', sql], { env }).toString().trim();
const tag = randomBytes(4).toString('hex');
const created = [];
const newDb = (name) => {
  psql('postgres', `CREATE DATABASE ${name}`);
  created.push(name);
  return name;
};

async function duBytes(dir) {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath ?? e.path, e.name))).size;
  }
  return total;
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Run a command with stdout to a file, resolving when it exits 0. */
function toFile(argv, file) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.pipe(createWriteStream(file));
    child.on('close', (code) => (code === 0 ? resolveRun() : reject(new Error(`${argv[0]} exited ${code}`))));
  });
}

const rows = [];
const report = (what, ms, bytes, note = '') =>
  rows.push([
    what,
    ms === undefined ? '' : (ms / 1000).toFixed(2) + ' s',
    bytes === undefined ? '' : (bytes / MiB).toFixed(1) + ' MiB',
    note,
  ]);

const work = await mkdtemp(join(tmpdir(), 'lb-bench-pg-'));
try {
  const source = newDb(`lb_bench_${tag}`);
  console.error(`pgbench -i -s ${values.scale} ${source} …`);
  execFileSync('pgbench', ['-i', '-q', '-s', values.scale, source], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const dbSize = Number(psql(source, `SELECT pg_database_size(current_database())`));
  report('database size (pg_database_size)', undefined, dbSize);

  // --- backup ---
  const dumpFile = join(work, 'plain.dump');
  const plain = await timed(() => toFile(['pg_dump', '-Fc', '-d', source], dumpFile));
  report('pg_dump -Fc > file', plain.ms, (await stat(dumpFile)).size);

  const repoDir = join(work, 'repo');
  const repo = await initRepository(
    await LocalStorage.create(pathToFileURL(repoDir).href),
    'bench password',
    {
      clock: systemClock,
      host: 'bench',
      kdf: { N: 1 << 14, r: 8, p: 1 },
    },
  );
  const commit = (b) =>
    repo.saveSnapshot({
      v: 1,
      job: 'bench',
      kind: 'postgres',
      host: 'bench',
      startedAt: new Date().toISOString(),
      endedAt: new Date().toISOString(),
      tree: b.tree,
      paths: b.paths,
      tags: [],
      partial: false,
      fingerprint: b.fingerprint,
      stats: b.stats,
      toolVersion: 'bench',
    });
  const first = await timed(() =>
    backupPostgres(repo, conn, { databases: [source], globals: false, checksums: true }),
  );
  const firstId = await commit(first.value);
  const afterFirst = await duBytes(repoDir);
  report(
    'lifeboat backup (checksums on)',
    first.ms,
    afterFirst,
    `dump stream ${(first.value.stats.bytes / MiB).toFixed(1)} MiB`,
  );

  const nocheck = await timed(() =>
    backupPostgres(repo, conn, { databases: [source], globals: false, checksums: false }),
  );
  await commit(nocheck.value);
  const afterNocheck = await duBytes(repoDir);
  report(
    'lifeboat backup (checksums off), unchanged db',
    nocheck.ms,
    afterNocheck - afterFirst,
    'bytes added',
  );

  // --- second run after ~1 % of the rows changed ---
  psql(source, `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0`);
  const dumpFile2 = join(work, 'plain2.dump');
  const plain2 = await timed(() => toFile(['pg_dump', '-Fc', '-d', source], dumpFile2));
  report('pg_dump -Fc > file, 1% rows changed', plain2.ms, (await stat(dumpFile2)).size, 'a full new file');
  const second = await timed(() =>
    backupPostgres(repo, conn, { databases: [source], globals: false, checksums: true }),
  );
  await commit(second.value);
  const afterSecond = await duBytes(repoDir);
  report(
    'lifeboat backup, 1% rows changed',
    second.ms,
    afterSecond - afterNocheck,
    'bytes added to the repository',
  );

  // --- third run after appending rows (changes concentrated at the end of one table) ---
  psql(
    source,
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, g, 1, '2024-01-01' FROM generate_series(1, ${Number(values.scale) * 1000}) g`,
  );
  const third = await timed(() =>
    backupPostgres(repo, conn, { databases: [source], globals: false, checksums: true }),
  );
  await commit(third.value);
  const afterThird = await duBytes(repoDir);
  report(
    'lifeboat backup, rows appended to one table',
    third.ms,
    afterThird - afterSecond,
    'bytes added to the repository',
  );

  // --- restore ---
  const t1 = newDb(`lb_bench_${tag}_r1`);
  const pr1 = await timed(() => execFileSync('pg_restore', ['-d', t1, dumpFile], { env }));
  report('pg_restore -d (1 job)', pr1.ms);
  const tN = newDb(`lb_bench_${tag}_rn`);
  const prN = await timed(() => execFileSync('pg_restore', ['-d', tN, `--jobs=${jobs}`, dumpFile], { env }));
  report(`pg_restore -d --jobs=${jobs}`, prN.ms);

  const snapshot = await repo.findSnapshot(firstId);
  const restoreOpts = { create: true, clean: false, globals: false, force: false, dryRun: false };
  const l1 = await timed(() =>
    restorePostgres(repo, snapshot, {
      ...restoreOpts,
      jobs: 1,
      into: { ...conn, database: `lb_bench_${tag}_l1` },
    }),
  );
  created.push(`lb_bench_${tag}_l1`);
  const d1 = l1.value.databases[0];
  report(
    'lifeboat restore, streamed (1 job)',
    d1.restoreMs,
    undefined,
    `+ verify ${(d1.verifyMs / 1000).toFixed(2)} s, ${l1.value.differences.length} differences`,
  );
  const lN = await timed(() =>
    restorePostgres(repo, snapshot, {
      ...restoreOpts,
      jobs,
      into: { ...conn, database: `lb_bench_${tag}_ln` },
    }),
  );
  created.push(`lb_bench_${tag}_ln`);
  const dN = lN.value.databases[0];
  report(
    `lifeboat restore, spooled (${jobs} jobs)`,
    dN.restoreMs,
    undefined,
    `+ verify ${(dN.verifyMs / 1000).toFixed(2)} s, ${lN.value.differences.length} differences`,
  );
  await repo.close();

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(`\npgbench scale ${values.scale}, PostgreSQL at ${conn.host}:${conn.port}\n`);
  for (const r of rows)
    console.log(
      r.map((c, i) => (i === 0 || i === 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '),
    );
  console.log(
    `\nbackup time ratio lifeboat/pg_dump: ${(first.ms / plain.ms).toFixed(2)} (checksums on), ${(nocheck.ms / plain.ms).toFixed(2)} (off)` +
      `\nrestore time ratio lifeboat/pg_restore (1 job): ${(d1.restoreMs / pr1.ms).toFixed(2)}` +
      `\nsecond run: ${((afterSecond - afterNocheck) / MiB).toFixed(1)} MiB added vs ${((await stat(dumpFile2)).size / MiB).toFixed(1)} MiB for a new dump file`,
  );
} finally {
  for (const db of created.reverse()) {
    try {
      psql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    } catch {
      // Reported by psql on stderr.
    }
  }
  await rm(work, { recursive: true, force: true });
}
