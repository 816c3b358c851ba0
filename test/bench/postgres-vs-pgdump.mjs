#!/usr/bin/env node
// lifeboat's postgres job against plain pg_dump/pg_restore on a pgbench
// database. Run by a person, not by the test suite:
//
//   npm run build && node test/bench/postgres-vs-pgdump.mjs [--scale 50] [--repeat 3] [--jobs 2]
//        [--host 127.0.0.1 --port 5432 --user postgres] [--dist <dir>]
//
// Measures, on the same server and database, each pair back to back (the
// order alternates per round, so both share the machine's load of the moment):
//   backup    pg_dump -Fc > file                vs  backupPostgres (default config: checksums on)
//   unchanged a second backup of the unchanged database: bytes it adds to the repository
//   1% rows   after updating 1% of the rows: a second dump file vs the bytes the next backup adds
//   appended  after appending rows to one table: the bytes the next backup adds
//   restore   createdb + pg_restore -d file     vs  restorePostgres, 1 loading session, + verification
//             pg_restore -d --jobs=N            vs  restorePostgres, N loading sessions, + verification
//             (both streamed: lifeboat loads the table data itself, a large table split across the
//             sessions; the rows are read back while indexes build); and lifeboat's default
//             (2 sessions) against pg_restore's default (1 job), from the same rounds
// lifeboat's restore time is split into "restored" (until the indexes are built)
// and what verification added after that.
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
const repeat = Math.max(1, Number(values.repeat));
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
const dropDb = (name) => psql('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
const load = () => loadavg()[0].toFixed(1);
const log = (msg) => console.error(`[load ${load()}] ${msg}`);

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

/** `tool > file`, as in a shell (lib/measure.mjs). */
const toFile = (argv, file) => runRedirected(argv, { env, stdout: file });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Run two measurements back to back, `a` first on even rounds. */
async function pair(round, a, b) {
  if (round % 2 === 0) return [await a(), await b()];
  const rb = await b();
  return [await a(), rb];
}

const work = await mkdtemp(join(tmpdir(), 'lb-bench-pg-'));
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

const results = {};
const record = (name, value) => (results[name] ??= []).push(value);
const loads = [load()];

try {
  const source = newDb(`lb_bench_${tag}`);
  log(`pgbench -i -s ${values.scale} ${source} …`);
  execFileSync('pgbench', ['-i', '-q', '-s', values.scale, source], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  execFileSync('psql', ['-X', '-q', '-d', source, '-c', 'VACUUM ANALYZE'], { env });
  const dbSize = Number(psql(source, `SELECT pg_database_size(current_database())`));
  // Every round's plain dump goes to a new file, kept until the end like the rounds' repositories: both sides
  // write new files, as a nightly dump does. (An overwritten file may get the page-cache pages its truncation
  // has just freed; on a VM that hands free memory back to its host, first-touch pages cost far more system
  // time — docs/performance.md, MariaDB, session 13.)
  let dumpFile;
  const backupOpts = { databases: [source], globals: false, checksums: true };
  let kept; // the last round's repository and first snapshot, for the restores

  // --- backup, unchanged re-run ---
  for (let round = 0; round < repeat; round++) {
    const { repo, dir } = await newRepo();
    log(`round ${round + 1}: backup`);
    dumpFile = join(work, `plain-${round + 1}.dump`);
    const [plain, first] = await pair(
      round,
      () => timed(() => toFile(['pg_dump', '-Fc', '-d', source], dumpFile)),
      () => timed(() => backupPostgres(repo, conn, backupOpts)),
    );
    const firstId = await commit(repo, first.value);
    const stored = await duBytes(dir);
    const again = await timed(() => backupPostgres(repo, conn, backupOpts));
    await commit(repo, again.value);
    const storedAgain = await duBytes(dir);
    record('pg_dump', plain.ms);
    record('backup', first.ms);
    record('backup ratio', first.ms / plain.ms);
    record('unchanged', again.ms);
    record('unchanged added', storedAgain - stored);
    record('unchanged %', (100 * (storedAgain - stored)) / stored);
    record('dump file', (await stat(dumpFile)).size);
    record('stored', stored);
    record('stream', first.value.stats.bytes);
    if (kept) await kept.repo.close();
    kept = { repo, dir, firstId, stored: storedAgain };
    loads.push(load());
  }

  // --- checksums off, for reference (one run, into a fresh repository like the first backup) ---
  const offRepo = (await newRepo()).repo;
  const off = await timed(() => backupPostgres(offRepo, conn, { ...backupOpts, checksums: false }));
  await offRepo.close();

  // --- second run after ~1 % of the rows changed, third after appending rows ---
  psql(source, `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0`);
  const dumpFile2 = join(work, 'plain2.dump');
  await toFile(['pg_dump', '-Fc', '-d', source], dumpFile2);
  const before2 = await duBytes(kept.dir);
  const changed = await timed(() => backupPostgres(kept.repo, conn, backupOpts));
  await commit(kept.repo, changed.value);
  const after2 = await duBytes(kept.dir);
  psql(
    source,
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, g, 1, '2024-01-01' FROM generate_series(1, ${Number(values.scale) * 1000}) g`,
  );
  const appended = await timed(() => backupPostgres(kept.repo, conn, backupOpts));
  await commit(kept.repo, appended.value);
  const after3 = await duBytes(kept.dir);

  // --- restore ---
  const snapshot = await kept.repo.findSnapshot(kept.firstId);
  const restoreOpts = { create: true, clean: false, globals: false, force: false, dryRun: false };
  for (let round = 0; round < repeat; round++) {
    for (const n of [1, jobs]) {
      log(`round ${round + 1}: restore, ${n} job(s)`);
      const plainDb = `lb_bench_${tag}_p${round}_${n}`;
      const lbDb = `lb_bench_${tag}_l${round}_${n}`;
      created.push(lbDb);
      // Both sides create their database inside the timing (lifeboat's restore does, with --create).
      // A CHECKPOINT first (untimed): otherwise the previous restore's dirty pages are written out by
      // whichever run comes next, and rounds differ by up to 1.7x.
      const [plain, lb] = await pair(
        round,
        () => {
          psql('postgres', 'CHECKPOINT');
          return timed(() => {
            newDb(plainDb);
            execFileSync('pg_restore', ['-d', plainDb, `--jobs=${n}`, dumpFile], { env });
          });
        },
        () => {
          psql('postgres', 'CHECKPOINT');
          return timed(() =>
            restorePostgres(kept.repo, snapshot, {
              ...restoreOpts,
              jobs: n,
              into: { ...conn, database: lbDb },
            }),
          );
        },
      );
      log(
        `  pg_restore${n > 1 ? ` --jobs=${n}` : ''} ${(plain.ms / 1000).toFixed(2)} s, lifeboat ${n} session(s) ${(lb.ms / 1000).toFixed(2)} s`,
      );
      const d = lb.value.databases[0];
      if (lb.value.differences.length > 0)
        throw new Error(`restore differs: ${JSON.stringify(lb.value.differences)}`);
      record(`pg_restore ${n}`, plain.ms);
      record(`restore ${n}`, d.restoreMs);
      record(`verify ${n}`, d.verifyMs);
      record(`restore total ${n}`, lb.ms);
      record(`restore ratio ${n}`, lb.ms / plain.ms);
      dropDb(plainDb);
      dropDb(lbDb);
      loads.push(load());
    }
    // lifeboat's default (2 sessions) against pg_restore's (1 job), measured minutes apart in this round.
    if (results['restore total 2'] && results['pg_restore 1'])
      record('restore default ratio', results['restore total 2'].at(-1) / results['pg_restore 1'].at(-1));
  }
  await kept.repo.close();

  const m = (name) => median(results[name]);
  const s = (ms) => (ms / 1000).toFixed(2) + ' s';
  const mib = (b) => (b / MiB).toFixed(1) + ' MiB';
  const rows = [
    ['step', 'plain tool', 'lifeboat', 'ratio'],
    ['database size', mib(dbSize), '', ''],
    [
      'backup',
      `pg_dump -Fc > file ${s(m('pg_dump'))}`,
      `${s(m('backup'))} (checksums on)`,
      m('backup ratio').toFixed(2),
    ],
    [
      'size',
      `dump file ${mib(m('dump file'))}`,
      `repository ${mib(m('stored'))} (stream ${mib(m('stream'))})`,
      '',
    ],
    [
      'unchanged re-run',
      '',
      `${s(m('unchanged'))}, ${mib(m('unchanged added'))} added`,
      `${m('unchanged %').toFixed(2)} % new`,
    ],
    ['checksums off (1 run)', '', s(off.ms), (off.ms / m('pg_dump')).toFixed(2)],
    [
      '1 % rows updated',
      `new file ${mib((await stat(dumpFile2)).size)}`,
      `${s(changed.ms)}, ${mib(after2 - before2)} added`,
      '',
    ],
    ['rows appended', '', `${s(appended.ms)}, ${mib(after3 - after2)} added`, ''],
    ...[1, jobs].map((n) => [
      `restore, ${n} job${n > 1 ? 's' : ''}`,
      `pg_restore${n > 1 ? ` --jobs=${n}` : ''} ${s(m(`pg_restore ${n}`))}`,
      `${s(m(`restore total ${n}`))} = ${s(m(`restore ${n}`))} restored (${n} session${n > 1 ? 's' : ''}) + ${s(m(`verify ${n}`))} verify after`,
      m(`restore ratio ${n}`).toFixed(2),
    ]),
    ...(results['restore default ratio']
      ? [
          [
            'restore, defaults',
            `pg_restore ${s(m('pg_restore 1'))}`,
            `${s(m('restore total 2'))} (2 sessions)`,
            m('restore default ratio').toFixed(2),
          ],
        ]
      : []),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(
    `\npgbench scale ${values.scale}, PostgreSQL at ${conn.host}:${conn.port}, ${repeat} round(s) (medians), ` +
      `1-min load at step starts ${loads.join(' ')}\n`,
  );
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
  console.log(
    `\nper-round ratios: backup ${results['backup ratio'].map((x) => x.toFixed(2)).join(' ')}; ` +
      `restore 1 job ${results['restore ratio 1'].map((x) => x.toFixed(2)).join(' ')}; ` +
      `restore ${jobs} jobs ${results[`restore ratio ${jobs}`].map((x) => x.toFixed(2)).join(' ')}; ` +
      `restore defaults ${(results['restore default ratio'] ?? []).map((x) => x.toFixed(2)).join(' ')}`,
  );
} finally {
  for (const db of created.reverse()) {
    try {
      dropDb(db);
    } catch {
      // Reported by psql on stderr.
    }
  }
  await rm(work, { recursive: true, force: true });
}
