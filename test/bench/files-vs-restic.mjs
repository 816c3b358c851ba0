#!/usr/bin/env node
// Whole-process benchmark of file backups: the built `lifeboat` CLI against
// `restic`, step by step on the same data. Run by a person, not by the test
// suite (see docs/performance.md):
//
//   npm run build && node test/bench/files-vs-restic.mjs [--datasets a,b,c] [--scale 1]
//        [--repeat 1] [--cold] [--keep] [--work test/bench/work] [--dist dist]
//   node test/bench/files-vs-restic.mjs --report test/bench/work/results.json   (re-print a saved run)
//
// Datasets (test/bench/lib/file-datasets.mjs): a = copy of /usr/share,
// b = 1 GiB cut of a tar of /usr/lib, c = sparse 1 GiB ext4 image file
// (c needs root). For each dataset, in one run, both tools do: first backup,
// unchanged re-run, re-run after a ~1 % change, full restore into an empty
// directory (as root on a fresh ext4 made for that restore, see restoreArea),
// check --read-data. Every step is a whole process under /usr/bin/time
// (wall, user+sys CPU, peak RSS) — start-up, key derivation and everything
// else a user waits for included. The repository is measured with `du -sb`
// after each backup. Which tool goes first alternates per step and per
// round; --repeat N runs N rounds on fresh repositories and prints the
// medians (the ratio: median over rounds of each back-to-back pair). --cold
// drops the page cache before each step (root only); by default both tools
// run warm. Restores are compared with the data (diff -r) outside the
// timing. Logs, results.json and results.md land in the work dir.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { snapshotBuild } from './lib/build-snapshot.mjs';
import { DATASETS } from './lib/file-datasets.mjs';
import { dropCaches, duBytes, ensureTool, GNU_TIME, measure } from './lib/measure.mjs';

const repoRoot = new URL('../..', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    datasets: { type: 'string', default: 'a,b,c' },
    scale: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '1' },
    cold: { type: 'boolean', default: false },
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

const scale = Number(values.scale);
const rounds = Number(values.repeat);
const datasetIds = values.datasets.split(',').map((s) => s.trim());
const isRoot = process.getuid?.() === 0;
if (!(scale > 0 && scale <= 1) || !(Number.isInteger(rounds) && rounds >= 1)) {
  console.error('--scale must be in (0, 1] and --repeat a whole number >= 1');
  process.exit(2);
}
for (const id of datasetIds) {
  if (!DATASETS[id]) {
    console.error(`unknown dataset ${id}: choose from ${Object.keys(DATASETS).join(', ')}`);
    process.exit(2);
  }
}
if (values.cold && !isRoot) {
  console.error('--cold drops the page cache, which needs root.');
  process.exit(2);
}

const MiB = 1024 * 1024;
const PASSWORD = 'files-vs-restic benchmark password';
const work = resolve(values.work);
const STEPS = [
  { key: 'backup1', label: 'first backup', backup: true },
  { key: 'backup2', label: 'unchanged re-run', backup: true },
  { key: 'backup3', label: 'after ~1 % change', backup: true },
  { key: 'restore', label: 'full restore', backup: false },
  { key: 'check', label: 'check --read-data', backup: false },
];
const TOOLS = ['lifeboat', 'restic'];

// ---- tools ------------------------------------------------------------------

const sh = (cmd, args) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim();

/** The commands of one tool against one repository; `dir` holds its repository and cache. */
function lifeboatTool(bin, dir, dataDir) {
  const config = join(dir, 'lifeboat.yaml');
  const run = (...args) => [process.execPath, bin, '--config', config, ...args];
  return {
    repo: join(dir, 'repo'),
    cache: join(dir, 'state'),
    async init() {
      await writeFile(
        config,
        [
          `defaults: { stateDir: ${JSON.stringify(join(dir, 'state'))} }`,
          'repositories:',
          `  bench: { url: ${JSON.stringify(`file://${join(dir, 'repo')}`)}, password: env:LB_BENCH_PW }`,
          'policies:',
          '  p: { rpo: 1d, rto: 1h }',
          'jobs:',
          `  data: { kind: files, paths: [${JSON.stringify(dataDir)}], policy: p, schedule: "0 3 * * *" }`,
          '',
        ].join('\n'),
      );
      return run('repo', 'init');
    },
    backup: () => run('backup', 'data'),
    restore: (target) => run('restore', 'data', '--target', target),
    check: () => run('check', '--read-data'),
  };
}

function resticTool(dir, dataDir) {
  const run = (...args) => ['restic', '-r', join(dir, 'repo'), '--cache-dir', join(dir, 'cache'), ...args];
  return {
    repo: join(dir, 'repo'),
    cache: join(dir, 'cache'),
    init: async () => run('init'),
    backup: () => run('backup', dataDir),
    restore: (target) => run('restore', 'latest', '--target', target),
    check: () => run('check', '--read-data'),
  };
}

// ---- one dataset ------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Where one restore goes. As root: a fresh ext4 with a journal on a loop image, made for this one restore
 * and removed after its check, so neither tool restores into a file system the other (or an earlier round)
 * filled: into one shared by a dataset's six restores, the later ones of the 1 GiB file took up to twice the
 * time of the first, for either tool. The root file system of the machine these numbers come from is ext4 without a journal, and there
 * creating an inode first skips every inode of its group freed in the last minutes (the kernel's
 * recently_deleted()): after any large deletion (an earlier dataset's files, an earlier run, a person's rm)
 * restoring /usr/share cost 5–15x the system time, for whichever tool ran. Without root: a plain directory.
 */
async function restoreArea(id) {
  const dir = join(work, 'restores', id);
  const image = join(work, `restores-${id}.img`);
  try {
    sh('umount', [dir]); // left mounted by an interrupted run
  } catch {
    // not mounted
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  if (!isRoot) return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
  await writeFile(image, '');
  await truncate(image, Math.ceil(8 * scale) * 1024 * MiB);
  sh('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  sh('mount', ['-o', 'loop', image, dir]);
  return {
    dir,
    async dispose() {
      sh('umount', [dir]);
      await rm(image, { force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function runDataset(id, bin, env) {
  const ds = DATASETS[id];
  const dataDir = join(work, 'data', id);
  const logs = join(work, 'logs');
  await mkdir(logs, { recursive: true });
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  console.error(`[${id}] building dataset in ${dataDir} (scale ${scale})…`);
  const description = await ds.build(dataDir, scale);
  console.error(`[${id}] ${description}`);

  /** samples[step][tool] = list of { wall, cpu, rssKiB, repoBytes, load } over rounds */
  const samples = Object.fromEntries(STEPS.map((s) => [s.key, { lifeboat: [], restic: [] }]));
  const changes = [];
  for (let round = 0; round < rounds; round++) {
    const runDir = join(work, 'run', id);
    await rm(runDir, { recursive: true, force: true });
    const tools = {
      lifeboat: lifeboatTool(bin, join(runDir, 'lifeboat'), dataDir),
      restic: resticTool(join(runDir, 'restic'), dataDir),
    };
    for (const name of TOOLS) {
      await mkdir(join(runDir, name), { recursive: true });
      await measure(await tools[name].init(), { env, logFile: join(logs, `${id}-${name}.log`) });
    }
    for (const [index, step] of STEPS.entries()) {
      if (step.key === 'backup3') {
        const change = await ds.change(dataDir, round);
        changes.push(change);
        console.error(`[${id}] round ${round + 1}: changed ${JSON.stringify(change)}`);
      }
      const order = (index + round + datasetIds.indexOf(id)) % 2 === 0 ? TOOLS : [...TOOLS].reverse();
      for (const name of order) {
        const tool = tools[name];
        // A file system of its own (see restoreArea), removed after the check below.
        const area =
          step.key === 'restore' ? await restoreArea(`${id}-round${round + 1}-${name}`) : undefined;
        const target = area ? join(area.dir, 'target') : '';
        const argv =
          step.key === 'restore' ? tool.restore(target) : step.backup ? tool.backup() : tool.check();
        execFileSync('sync');
        if (values.cold) dropCaches();
        const result = await measure(argv, { env, logFile: join(logs, `${id}-${name}.log`) });
        if (step.backup) result.repoBytes = duBytes(tool.repo);
        result.cacheBytes = duBytes(tool.cache);
        samples[step.key][name].push(result);
        console.error(
          `[${id}] round ${round + 1} ${step.label.padEnd(18)} ${name.padEnd(8)} ` +
            `${result.wall.toFixed(2)} s wall, ${result.cpu.toFixed(2)} s CPU, ` +
            `${(result.rssKiB / 1024).toFixed(0)} MiB RSS` +
            (step.backup ? `, repo ${(result.repoBytes / MiB).toFixed(1)} MiB` : '') +
            ` (load ${result.load.toFixed(2)})`,
        );
        if (step.key === 'restore') {
          // Outside the timing: the restore must equal the data (both tools restore absolute paths under the target).
          try {
            execFileSync('diff', ['-rq', '--no-dereference', dataDir, join(target, dataDir)], {
              stdio: ['ignore', 'pipe', 'pipe'],
              maxBuffer: 1 << 26,
            });
          } catch (e) {
            throw new Error(`${name} restore differs from the data:\n${String(e.stdout).slice(0, 2000)}`);
          }
          await area.dispose();
        }
      }
    }
    if (!values.keep || round < rounds - 1) await rm(runDir, { recursive: true, force: true });
  }
  if (!values.keep) await rm(dataDir, { recursive: true, force: true });

  const loads = Object.values(samples).flatMap((byTool) =>
    TOOLS.flatMap((n) => byTool[n].map((r) => r.load)),
  );
  return { id, title: ds.title, description, changes, samples, load: loadSummary(loads) };
}

/**
 * Per step: the median of each measure per tool, and the median over rounds
 * of the lifeboat/restic ratio of the two runs made back to back — on a
 * noisy machine the pair shares the load of the moment, so its ratio varies
 * less than the ratio of the two medians.
 */
function summarize(samples) {
  const fields = { wall: 1, cpu: 1, rssMiB: 1 / 1024, repoMiB: 1 / MiB, cacheMiB: 1 / MiB };
  const source = { wall: 'wall', cpu: 'cpu', rssMiB: 'rssKiB', repoMiB: 'repoBytes', cacheMiB: 'cacheBytes' };
  return STEPS.map((step) => {
    const row = { step: step.key, label: step.label, ratio: {} };
    const runs = samples[step.key];
    for (const [field, factor] of Object.entries(fields)) {
      if (field === 'repoMiB' && !step.backup) continue;
      for (const name of TOOLS) {
        row[name] ??= {};
        row[name][field] = median(runs[name].map((r) => r[source[field]] * factor));
      }
      row.ratio[field] = median(
        runs.lifeboat.map((r, i) => r[source[field]] / runs.restic[i][source[field]]),
      );
    }
    return row;
  });
}

const loadSummary = (loads) => ({ min: Math.min(...loads), median: median(loads), max: Math.max(...loads) });

// ---- report -----------------------------------------------------------------

const BARS = { wall: 1.0, rssMiB: 1.5, repoMiB: 1.05 };
const GOAL = { steps: ['backup1', 'restore'], wall: 0.75 };
const ratio = (row, field) => row.ratio[field];

/** One table per dataset: lifeboat, restic and lifeboat/restic for each measure; `*` marks a missed bar. */
function table(result, markdown) {
  const groups = [
    ['wall s', 'wall', 2],
    ['CPU s', 'cpu', 2],
    ['peak RSS MiB', 'rssMiB', 0],
    ['repo MiB', 'repoMiB', 1],
  ];
  const header = ['step'];
  for (const [title] of groups) header.push(`${title} lifeboat`, 'restic', 'ratio');
  const lines = [header];
  for (const row of result.rows) {
    const cells = [row.label];
    for (const [, field, digits] of groups) {
      if (row.ratio[field] === undefined) {
        cells.push('', '', '');
        continue;
      }
      const r = ratio(row, field);
      const missed = BARS[field] !== undefined && r > BARS[field];
      cells.push(
        row.lifeboat[field].toFixed(digits),
        row.restic[field].toFixed(digits),
        `${r.toFixed(2)}${missed ? '*' : ''}`,
      );
    }
    lines.push(cells);
  }
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

/** The issue's bars and goal, checked over every dataset: a list of { text, met, misses }. */
function bars(results) {
  const each = (field, limit, steps) =>
    results.flatMap((res) =>
      res.rows
        .filter((row) => (!steps || steps.includes(row.step)) && row.ratio[field] !== undefined)
        .filter((row) => ratio(row, field) > limit)
        .map((row) => `${res.id} ${row.label} ${ratio(row, field).toFixed(2)}`),
    );
  return [
    { text: 'every wall-time ratio <= 1.0', misses: each('wall', BARS.wall) },
    { text: 'peak RSS <= 1.5x restic', misses: each('rssMiB', BARS.rssMiB) },
    { text: 'repository size <= 1.05x restic', misses: each('repoMiB', BARS.repoMiB) },
    {
      text: 'goal: first backup and restore wall <= 0.75x restic',
      misses: each('wall', GOAL.wall, GOAL.steps),
    },
  ].map((b) => ({ ...b, met: b.misses.length === 0 }));
}

function environment(resticVersion) {
  const git = (...args) => {
    try {
      return sh('git', ['-C', repoRoot, ...args]);
    } catch {
      return '?';
    }
  };
  return {
    date: new Date().toISOString(),
    host: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${sh('uname', ['-r'])}`,
    lifeboat: `${sh(process.execPath, [join(work, 'lifeboat-build/bin/lifeboat'), '--version'])} (git ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'src').length ? ', uncommitted changes in src/' : ''})`,
    restic: resticVersion,
    node: process.version,
    options: { datasets: datasetIds, scale, repeat: rounds, cold: values.cold },
  };
}

// ---- main -------------------------------------------------------------------

/** The report of a run: a plain-text table for the terminal and Markdown for docs/performance.md. */
function render({ meta, loadBefore, loadAfter, results: raw }) {
  const { scale: sc, repeat, cold } = meta.options;
  const results = raw.map((res) => ({ ...res, rows: summarize(res.samples) }));
  const loads = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const text = [
    `files-vs-restic, ${meta.date}`,
    `${meta.lifeboat}; ${meta.restic}; node ${meta.node}`,
    meta.host,
    `scale ${sc}, ${repeat} round(s) (medians), ${cold ? 'cold (page cache dropped before each step)' : 'warm page cache'}`,
    `load average (1/5/15 min): before ${loads(loadBefore)}, after ${loads(loadAfter)}`,
  ];
  const md = [
    `Run ${meta.date}: ${meta.lifeboat}; ${meta.restic}; node ${meta.node}; ${meta.host}.`,
    `Scale ${sc}, ${repeat} round(s), ${cold ? 'cold' : 'warm'} cache; load average before ${loads(loadBefore)}, after ${loads(loadAfter)}.`,
  ];
  for (const res of results) {
    const load = `min ${res.load.min.toFixed(1)}, median ${res.load.median.toFixed(1)}, max ${res.load.max.toFixed(1)}`;
    text.push('', `dataset ${res.title} — ${res.description}`, `1-min load at step starts: ${load}`);
    text.push(table(res, false));
    md.push(
      '',
      `**${res.title}** — ${res.description}; 1-min load at step starts ${load}`,
      '',
      table(res, true),
    );
  }
  const legend =
    'ratio = lifeboat / restic (median over rounds of the back-to-back pair); * = misses its bar (wall <= 1.0, RSS <= 1.5, repo <= 1.05)';
  text.push('', legend);
  md.push('', legend.replace('*', '`*`'), '');
  for (const b of bars(results)) {
    text.push(`${b.met ? 'MET   ' : 'MISSED'} ${b.text}${b.met ? '' : `: ${b.misses.join('; ')}`}`);
    md.push(`- ${b.met ? 'met' : '**missed**'}: ${b.text}${b.met ? '' : ` (${b.misses.join('; ')})`}`);
  }
  return { text: text.join('\n'), md: `${md.join('\n')}\n` };
}

if (values.report) {
  // Re-render a saved run (e.g. after changing how the report is computed).
  const saved = JSON.parse(readFileSync(values.report, 'utf8'));
  const { text, md } = render(saved);
  console.log(text);
  await writeFile(join(dirname(resolve(values.report)), 'results.md'), md);
  process.exit(0);
}

const resticVersion = ensureTool(['restic', 'version'], 'restic').trim();
ensureTool([GNU_TIME, '--version'], 'time');
await mkdir(work, { recursive: true });
await rm(join(work, 'logs'), { recursive: true, force: true });
// A private copy of the build, so a rebuild or reinstall during a long run cannot change what is measured.
const bin = await snapshotBuild({ dist: values.dist, repoRoot, work });
const env = { ...process.env, LB_BENCH_PW: PASSWORD, RESTIC_PASSWORD: PASSWORD, NO_COLOR: '1' };
delete env.RESTIC_REPOSITORY;
delete env.LIFEBOAT_CONFIG;
const meta = environment(resticVersion);
const loadBefore = loadavg();
console.error(`${meta.lifeboat}; ${meta.restic}; node ${meta.node}; ${meta.host}`);
console.error(`load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; work dir ${work}`);

const results = [];
for (const id of datasetIds) {
  if (DATASETS[id].needsRoot && !isRoot) {
    console.error(`[${id}] skipped: building the ext4 image needs root (loop mount).`);
    continue;
  }
  results.push(await runDataset(id, bin, env));
}
const run = { meta, loadBefore, loadAfter: loadavg(), results };
const { text, md } = render(run);
console.log(text);
await writeFile(join(work, 'results.md'), md);
await writeFile(join(work, 'results.json'), `${JSON.stringify(run, null, 2)}\n`);
console.error(`\nwrote ${join(work, 'results.md')} and results.json; logs in ${join(work, 'logs')}`);
