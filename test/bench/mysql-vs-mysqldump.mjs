#!/usr/bin/env node
// lifeboat's mysql job against plain mariadb-dump / mariadb on a sysbench-like
// data set. Run by a person, not by the test suite:
//
//   npm run build && node test/bench/mysql-vs-mysqldump.mjs [--scale 50] [--repeat 3]
//        [--host 127.0.0.1 --port 3306 --user root] [--dist <dir>]
//
// Data: 4 tables shaped like sysbench's sbtest (id, k, c CHAR(120), pad CHAR(60),
// a secondary index on k), scale × 12 500 rows each with random digits — at
// --scale 50, 2.5 M rows, ~500 MiB of dump text, comparable to pgbench -s 50.
// Measures, each pair back to back (the order alternates per round):
//   backup    mariadb-dump --single-transaction … > file  vs  backupMysql (default config: checksums on)
//   unchanged a second backup of the unchanged database: bytes it adds to the repository
//   1% rows   after updating 1% of the rows: a new dump file vs the bytes the next backup adds
//   restore   CREATE DATABASE + mariadb db < file          vs  restoreMysql + verification
// Ratios are lifeboat/plain per round, reported as the median over rounds.
// Creates lb_bench_* databases and removes them (and the temp dir) at the end.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runRedirected } from './lib/measure.mjs';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '50' },
    repeat: { type: 'string', default: '1' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '3306' },
    user: { type: 'string', default: 'root' },
    dist: { type: 'string', default: new URL('../../dist', import.meta.url).pathname },
  },
});
const dist = (p) => pathToFileURL(join(resolve(values.dist), p)).href;
const { backupMysql } = await import(dist('sources/mysql/backup.js'));
const { restoreMysql } = await import(dist('sources/mysql/restore.js'));
const { initRepository } = await import(dist('repository/repository.js'));
const { LocalStorage } = await import(dist('storage/local.js'));
const { systemClock } = await import(dist('platform/clock.js'));

const conn = { host: values.host, port: Number(values.port), user: values.user };
const repeat = Math.max(1, Number(values.repeat));
const rowsPerTable = Math.round(Number(values.scale) * 12_500);
const TABLES = 4;
const MiB = 1024 * 1024;
// Password-less connections (as the test servers here); MYSQL_PWD in the environment works too.
const clientArgs = ['-h', conn.host, '-P', String(conn.port), '-u', conn.user];
const mariadb = (db, sql) =>
  execFileSync('mariadb', [...clientArgs, '-N', '-B', ...(db ? [db] : []), '-e', sql])
    .toString()
    .trim();
const tag = randomBytes(4).toString('hex');
const created = [];
const newDb = (name) => {
  mariadb(undefined, `CREATE DATABASE \`${name}\``);
  created.push(name);
  return name;
};
const dropDb = (name) => mariadb(undefined, `DROP DATABASE IF EXISTS \`${name}\``);
const load = () => loadavg()[0].toFixed(1);
const log = (msg) => console.error(`[load ${load()}] ${msg}`);
const DUMP_ARGS = [
  '--single-transaction',
  '--routines',
  '--triggers',
  '--events',
  '--hex-blob',
  '--skip-dump-date',
];

async function duBytes(dir) {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath ?? e.path, e.name))).size;
  }
  return total;
}

/**
 * Time one step. The page cache's dirty data is written out first (outside the timing): otherwise the
 * kernel's flusher writes earlier rounds' files and repositories back while some later step runs, and
 * that step pays for it (measured here: a plain dump 2.8 s alone, 3.7 s inside a run without this).
 */
async function timed(fn) {
  execFileSync('sync');
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** `tool > out` / `tool < input`, as in a shell (lib/measure.mjs). */
const run = (argv, { out, input } = {}) => runRedirected(argv, { stdout: out, stdin: input });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
async function pair(round, a, b) {
  if (round % 2 === 0) return [await a(), await b()];
  const rb = await b();
  return [await a(), rb];
}

const work = await mkdtemp(join(tmpdir(), 'lb-bench-my-'));
let repoCount = 0;
async function newRepo() {
  const dir = join(work, `repo${repoCount++}`);
  const repo = await initRepository(await LocalStorage.create(pathToFileURL(dir).href), 'bench password', {
    clock: systemClock,
    host: 'bench',
    kdf: { N: 1 << 14, r: 8, p: 1 },
  });
  return { repo, dir };
}
const commit = (repo, b) =>
  repo.saveSnapshot({
    v: 1,
    job: 'bench',
    kind: 'mysql',
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

const results = {};
const record = (name, value) => (results[name] ??= []).push(value);
const loads = [load()];

/** sysbench's sbtest layout, filled with random digit groups like sysbench's c and pad. */
function populate(db) {
  const groups = (n) =>
    `CONCAT_WS('-', ${Array.from({ length: n }, () => `LPAD(FLOOR(RAND() * 99999999999), 11, '0')`).join(', ')})`;
  for (let i = 1; i <= TABLES; i++) {
    mariadb(
      db,
      `CREATE TABLE sbtest${i} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0,
         c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_${i} (k)) ENGINE=InnoDB;
       INSERT INTO sbtest${i} (k, c, pad)
         SELECT FLOOR(RAND() * ${rowsPerTable}), ${groups(10)}, ${groups(5)} FROM seq_1_to_${rowsPerTable};`,
    );
  }
}

try {
  const source = newDb(`lb_bench_${tag}`);
  log(`creating ${TABLES} × ${rowsPerTable} rows in ${source} …`);
  populate(source);
  const dbSize = Number(
    mariadb(
      undefined,
      `SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${source}'`,
    ),
  );
  // Every round's plain dump goes to a new file, kept until the end like the rounds' repositories: both sides
  // write new files, as a nightly dump does. (An overwritten file may get the page-cache pages its truncation
  // has just freed; on a VM that hands free memory back to its host, first-touch pages cost far more system
  // time — docs/performance.md, MariaDB, session 13.)
  let dumpFile;
  const backupOpts = { databases: [source], usersAndGrants: false, checksums: true };
  let kept;

  for (let round = 0; round < repeat; round++) {
    const { repo, dir } = await newRepo();
    log(`round ${round + 1}: backup`);
    dumpFile = join(work, `plain-${round + 1}.sql`);
    const [plain, first] = await pair(
      round,
      () => timed(() => run(['mariadb-dump', ...clientArgs, ...DUMP_ARGS, source], { out: dumpFile })),
      () => timed(() => backupMysql(repo, conn, backupOpts)),
    );
    const firstId = await commit(repo, first.value);
    const stored = await duBytes(dir);
    const again = await timed(() => backupMysql(repo, conn, backupOpts));
    await commit(repo, again.value);
    const storedAgain = await duBytes(dir);
    record('dump', plain.ms);
    record('backup', first.ms);
    record('backup ratio', first.ms / plain.ms);
    record('unchanged', again.ms);
    record('unchanged added', storedAgain - stored);
    record('unchanged %', (100 * (storedAgain - stored)) / stored);
    record('dump file', (await stat(dumpFile)).size);
    record('stored', stored);
    if (kept) await kept.repo.close();
    kept = { repo, dir, firstId };
    loads.push(load());
  }

  // Checksums off, for reference: into a fresh repository, like the first backup.
  const offRepo = (await newRepo()).repo;
  const off = await timed(() => backupMysql(offRepo, conn, { ...backupOpts, checksums: false }));
  await offRepo.close();

  // --- after ~1 % of the rows changed ---
  for (let i = 1; i <= TABLES; i++) mariadb(source, `UPDATE sbtest${i} SET k = k + 1 WHERE id % 100 = 0`);
  const dumpFile2 = join(work, 'plain2.sql');
  await run(['mariadb-dump', ...clientArgs, ...DUMP_ARGS, source], { out: dumpFile2 });
  const before2 = await duBytes(kept.dir);
  const changed = await timed(() => backupMysql(kept.repo, conn, backupOpts));
  await commit(kept.repo, changed.value);
  const after2 = await duBytes(kept.dir);

  // --- restore (of the first snapshot and the first dump file: the same data) ---
  const snapshot = await kept.repo.findSnapshot(kept.firstId);
  const restoreOpts = { create: true, clean: false, globals: false, force: false, dryRun: false, jobs: 1 };
  for (let round = 0; round < repeat; round++) {
    log(`round ${round + 1}: restore`);
    const plainDb = `lb_bench_${tag}_p${round}`;
    const lbDb = `lb_bench_${tag}_l${round}`;
    created.push(lbDb);
    // Both sides create their database inside the timing (lifeboat's restore does, with create).
    const [plain, lb] = await pair(
      round,
      () =>
        timed(() => {
          newDb(plainDb);
          return run(['mariadb', ...clientArgs, plainDb], { input: dumpFile });
        }),
      () =>
        timed(() => restoreMysql(kept.repo, snapshot, { ...restoreOpts, into: { ...conn, database: lbDb } })),
    );
    const d = lb.value.databases[0];
    if (lb.value.differences.length > 0)
      throw new Error(`restore differs: ${JSON.stringify(lb.value.differences)}`);
    record('plain restore', plain.ms);
    record('restore', d.restoreMs);
    record('verify', d.verifyMs);
    record('restore total', lb.ms);
    record('restore ratio', lb.ms / plain.ms);
    dropDb(plainDb);
    dropDb(lbDb);
    loads.push(load());
  }
  await kept.repo.close();

  const m = (name) => median(results[name]);
  const s = (ms) => (ms / 1000).toFixed(2) + ' s';
  const mib = (b) => (b / MiB).toFixed(1) + ' MiB';
  const rows = [
    ['step', 'plain tool', 'lifeboat', 'ratio'],
    ['database size (data + index)', mib(dbSize), '', ''],
    [
      'backup',
      `mariadb-dump > file ${s(m('dump'))}`,
      `${s(m('backup'))} (checksums on)`,
      m('backup ratio').toFixed(2),
    ],
    ['size', `dump file ${mib(m('dump file'))}`, `repository ${mib(m('stored'))}`, ''],
    [
      'unchanged re-run',
      '',
      `${s(m('unchanged'))}, ${mib(m('unchanged added'))} added`,
      `${m('unchanged %').toFixed(2)} % new`,
    ],
    ['checksums off (1 run)', '', s(off.ms), (off.ms / m('dump')).toFixed(2)],
    [
      '1 % rows updated',
      `new file ${mib((await stat(dumpFile2)).size)}`,
      `${s(changed.ms)}, ${mib(after2 - before2)} added`,
      '',
    ],
    [
      'restore',
      `mariadb db < file ${s(m('plain restore'))}`,
      `${s(m('restore total'))} = ${s(m('restore'))} streamed + ${s(m('verify'))} verify`,
      m('restore ratio').toFixed(2),
    ],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(
    `\nsysbench-like ${TABLES} × ${rowsPerTable} rows (scale ${values.scale}), MariaDB at ${conn.host}:${conn.port}, ` +
      `${repeat} round(s) (medians), 1-min load at step starts ${loads.join(' ')}\n`,
  );
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
  console.log(
    `\nper-round ratios: backup ${results['backup ratio'].map((x) => x.toFixed(2)).join(' ')}; ` +
      `restore ${results['restore ratio'].map((x) => x.toFixed(2)).join(' ')}`,
  );
  const perRound = (plain, lb) =>
    results[plain].map((p, i) => `${(p / 1000).toFixed(2)}/${(results[lb][i] / 1000).toFixed(2)}`).join(' ');
  console.log(
    `per-round seconds (plain/lifeboat): backup ${perRound('dump', 'backup')}; ` +
      `restore ${perRound('plain restore', 'restore total')}`,
  );
} finally {
  for (const db of created.reverse()) {
    try {
      dropDb(db);
    } catch {
      // Reported by the client on stderr.
    }
  }
  await rm(work, { recursive: true, force: true });
}
