import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../config/load.js';
import type { LifeboatConfig } from '../config/schema.js';
import { monotonicMs } from '../platform/clock.js';
import { registerCleanup } from '../platform/cleanup.js';
import { verifyRestoredTree, type TreeMismatch } from '../sources/files/index.js';
import { backupJobs, type JobBackupResult } from './backup.js';
import type { Deps, ProgressListener } from './deps.js';
import { initRepo } from './repoAdmin.js';
import { restoreJob } from './restore.js';
import type { RestoreResult } from '../sources/files/index.js';
import { locateSnapshot } from './snapshots.js';
import { runDrills } from './drill.js';
import type { DrillResult } from './drillModel.js';
import { collectReport } from './report.js';
import { collectStatus, type StatusResult } from './status.js';
import { renderHtml, type Report } from '../report/index.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';

/** The sample data shipped with lifeboat. */
export const SAMPLE_SITE = resolve(fileURLToPath(new URL('../../fixtures/sample-site', import.meta.url)));

/** The embedded configuration of `lifeboat demo`: one local repository, one files job. */
export function demoConfigText(workDir: string, source: string): string {
  return [
    '# Embedded configuration of `lifeboat demo`.',
    'defaults:',
    `  stateDir: ${JSON.stringify(join(workDir, 'state'))}`,
    '  host: demo-host',
    'repositories:',
    '  demo:',
    `    url: ${JSON.stringify('file://' + join(workDir, 'repository'))}`,
    '    password: env:LIFEBOAT_DEMO_PASSWORD',
    'policies:',
    '  standard:',
    '    rpo: 1h',
    '    rto: 15m',
    '    retention: { last: 5, daily: 7 }',
    '    drill: { every: 7d }',
    'jobs:',
    '  sample-site:',
    '    kind: files',
    `    paths: [${JSON.stringify(source)}]`,
    '    exclude: ["*.tmp"]',
    '    schedule: "0 * * * *"',
    '    policy: standard',
    '    repositories: [demo]',
    '',
  ].join('\n');
}

export interface DemoResult {
  workDir: string;
  kept: boolean;
  repository: string;
  source: string;
  first: JobBackupResult;
  second: JobBackupResult;
  restore: RestoreResult & { target: string; durationMs: number };
  verification: { ok: boolean; mismatches: TreeMismatch[]; restoredPath: string };
  /** A restore drill of the demo job: scratch restore, verification, restore time against the RTO. */
  drill: DrillResult;
  /** `lifeboat status` of the demo job: restore-point age against the RPO, drill against the RTO. */
  status: StatusResult;
  /** The compliance report of the demo job, and its HTML file in the work directory. */
  report: { report: Report; htmlPath: string };
  durationMs: number;
}

export interface DemoOptions {
  keep: boolean;
  source?: string;
  onStep?: (text: string) => void;
  onProgress?: ProgressListener;
}

/**
 * The main job end to end on an embedded default: create a local repository,
 * back up the sample site (twice, to show the incremental run), restore it
 * into a scratch directory and verify every file against the snapshot.
 */
export async function runDemo(opts: DemoOptions, baseDeps: Deps): Promise<DemoResult> {
  const t0 = monotonicMs();
  const source = opts.source ?? SAMPLE_SITE;
  const workDir = await mkdtemp(join(tmpdir(), 'lifeboat-demo-'));
  const unregister = registerCleanup('demo directory', () => rm(workDir, { recursive: true, force: true }));
  const deps: Deps = {
    ...baseDeps,
    env: { ...baseDeps.env, LIFEBOAT_DEMO_PASSWORD: randomBytes(18).toString('base64url') },
  };
  try {
    const { config } = parseConfigText(
      demoConfigText(workDir, source),
      '(embedded demo configuration)',
      deps.env,
    );
    opts.onStep?.('creating a local repository');
    await initRepo(config, 'demo', deps);
    opts.onStep?.('backing up the sample site');
    const [first] = await backupJobs(config, { jobs: ['sample-site'], onProgress: opts.onProgress }, deps);
    opts.onStep?.('backing up again (incremental: unchanged files are not read)');
    const [second] = await backupJobs(config, { jobs: ['sample-site'], onProgress: opts.onProgress }, deps);
    if (!first || !second || first.outcome === 'failure' || second.outcome === 'failure') {
      throw new Error(`demo backup failed: ${(first?.error ?? second?.error)?.message ?? 'unknown'}`);
    }
    opts.onStep?.('restoring into a scratch directory');
    const target = join(workDir, 'restore');
    const restored = await restoreJob(
      config,
      {
        job: 'sample-site',
        snapshot: 'latest',
        target,
        overwrite: 'never',
        dryRun: false,
        onProgress: opts.onProgress,
      },
      deps,
    );
    if (restored.kind !== 'files') throw new Error('the demo job is a files job');
    const restore = { ...restored.files, target, durationMs: restored.durationMs };
    opts.onStep?.('verifying every restored file against the snapshot');
    const verification = await verifyDemoRestore(config, target, deps);
    opts.onStep?.('running a restore drill (scratch restore, verification, restore time against the RTO)');
    const drill = (await runDrills(config, { jobs: ['sample-site'] }, deps)).drills[0]!;
    opts.onStep?.('checking the status against the policy (RPO, RTO)');
    const status = await collectStatus(config, { jobs: ['sample-site'] }, deps);
    opts.onStep?.('writing the compliance report');
    const { report } = await collectReport(config, {}, deps);
    const htmlPath = join(workDir, 'report.html');
    await writeFileAtomic(htmlPath, renderHtml(report, { timeZone: config.defaults.timezone }));
    return {
      workDir,
      kept: opts.keep,
      repository: 'file://' + join(workDir, 'repository'),
      source,
      first,
      second,
      restore,
      verification,
      drill,
      status,
      report: { report, htmlPath },
      durationMs: monotonicMs() - t0,
    };
  } finally {
    if (!opts.keep) {
      await rm(workDir, { recursive: true, force: true });
      unregister();
    } else unregister();
  }
}

async function verifyDemoRestore(config: LifeboatConfig, target: string, deps: Deps) {
  const { repo, snapshot } = await locateSnapshot(config, { ref: 'latest', job: 'sample-site' }, deps);
  try {
    const mismatches = await verifyRestoredTree(repo, snapshot.tree, target);
    return { ok: mismatches.length === 0, mismatches, restoredPath: join(target, snapshot.paths[0] ?? '') };
  } finally {
    await repo.close();
  }
}
