/**
 * `lifeboat drill`: prove that restore points can be restored, in time. For each job a
 * restore point is chosen (latest, random within the policy's drill window, or an ID),
 * restored into a throwaway scratch environment, verified (content, fingerprint,
 * filesystem, the job's own assertions), timed phase by phase with a monotonic clock, and
 * judged: pass, fail (verification) or breach (slower than the RTO). The verdict is
 * written to the journal of the repository the snapshot came from. The scratch
 * environment is always removed — after success, failure, an exception or SIGINT/SIGTERM —
 * unless --keep-on-failure keeps a failed one for inspection.
 *
 * `runDrills` is the use case (also called by `lifeboat run --due`); it never throws for
 * an ordinary drill failure: that is a result with verdict `fail`.
 */
import type { JobConfig, LifeboatConfig } from '../config/schema.js';
import { ExitCode, OperationError, UsageError } from '../errors.js';
import { registerCleanup } from '../platform/cleanup.js';
import { monotonicMs } from '../platform/clock.js';
import { redact } from '../platform/redact.js';
import type { SnapshotEntry } from '../repository/api.js';
import { newRunId } from '../repository/journal.js';
import type { Repository } from '../repository/repository.js';
import type { ScratchEnvironment } from '../scratch/index.js';
import { selectJobs } from './backup.js';
import type { Deps, ProgressListener } from './deps.js';
import { runAssertions } from './drillAssertions.js';
import { dueDrills } from './drillDue.js';
import { kindDrill, type KindDrill } from './drillKinds.js';
import {
  drillJournalInput,
  drillVerdict,
  formatMs,
  measuredRto,
  rtoStep,
  scratchKindOf,
  type DrillCoverage,
  type DrillPhases,
  type DrillResult,
  type DrillSelection,
  type DrillStep,
} from './drillModel.js';
import { drillServerOf } from './drillScratch.js';
import { chooseSnapshot, coverageOf, drillCandidates, drilledSnapshotIds } from './drillSelect.js';
import { jobRepositoryNames, openConfiguredRepository, repositoryConfig } from './repositories.js';
import {
  describeFailure,
  failureOutcome,
  isoTime,
  summarizeFailure,
  type FailureSummary,
} from './runRecord.js';
import { stateDir } from './stateDir.js';

export type { DrillResult, DrillStep, DrillPhases, DrillVerdict, DrillCoverage } from './drillModel.js';

export interface DrillOptions {
  /** Jobs to drill; empty means every job (with `due`: every job whose drill is due). */
  jobs: string[];
  /** Only jobs whose policy's drill cadence (`drill.every`) has elapsed since their last drill. */
  due?: boolean;
  /** `latest`, `random` or a snapshot ID (prefix); default: the policy's `drill.snapshot`. */
  snapshot?: string;
  /** Keep the scratch environment of a failed drill for inspection (`lifeboat drill cleanup` removes it). */
  keepOnFailure?: boolean;
  /** Drill from this repository instead of the job's first reachable one. */
  repository?: string;
  onStep?: (event: DrillStepEvent) => void;
  onProgress?: ProgressListener;
  /** Random source for `random` (tests pin it); default Math.random. */
  random?: () => number;
}

/** Progress of a drill, phase by phase. */
export interface DrillStepEvent {
  job: string;
  phase: 'select' | 'provision' | 'restore' | 'verify' | 'teardown';
  text: string;
}

export interface DrillRunResult {
  drills: DrillResult[];
  /** Jobs left out by --due, with the reason. */
  notDue: Array<{ job: string; reason: string }>;
  /** Every drill passed. */
  ok: boolean;
  /** 0 when every drill passed, 4 when any failed or breached, 130 when interrupted. */
  exitCode: number;
}

/** Run the drills of the selected jobs, one after another. */
export async function runDrills(
  config: LifeboatConfig,
  opts: DrillOptions,
  deps: Deps,
): Promise<DrillRunResult> {
  if (opts.repository) repositoryConfig(config, opts.repository);
  let names = selectJobs(config, opts.jobs);
  let notDue: DrillRunResult['notDue'] = [];
  if (opts.due) {
    const selection = await dueDrills(config, names, deps);
    names = selection.due.map((d) => d.job);
    notDue = selection.notDue;
  }
  const drills: DrillResult[] = [];
  for (const name of names) {
    if (deps.signal?.aborted) break;
    drills.push(await drillJob(config, name, opts, deps));
  }
  const interrupted = drills.some((d) => d.outcome === 'interrupted') || Boolean(deps.signal?.aborted);
  const ok = drills.every((d) => d.verdict === 'pass') && !interrupted;
  return {
    drills,
    notDue,
    ok,
    exitCode: interrupted ? ExitCode.interrupted : ok ? ExitCode.ok : ExitCode.policyBreach,
  };
}

interface Selected {
  repositoryName: string;
  repo: Repository;
  snapshot: SnapshotEntry;
  selection: DrillSelection;
  reason: string;
  coverage: DrillCoverage;
}

type Selection =
  ({ ok: true } & Selected) | { ok: false; error: unknown; repositoryName?: string; repo?: Repository };

/**
 * Open the job's repositories in order (or the one asked for) and pick the restore point
 * in the first that has one.
 */
async function selectSnapshot(
  config: LifeboatConfig,
  job: JobConfig,
  mode: string,
  opts: DrillOptions,
  deps: Deps,
): Promise<Selection> {
  const names = opts.repository ? [opts.repository] : jobRepositoryNames(config, job);
  const policy = config.policies[job.policy];
  const windowMs = policy?.drill?.window ?? config.defaults.reportWindow;
  const now = deps.clock.now();
  let failure: { error: unknown; repositoryName?: string; repo?: Repository } | undefined;
  for (const name of names) {
    let repo: Repository | undefined;
    try {
      repo = await openConfiguredRepository(config, name, deps);
      const snapshots = await repo.listSnapshots();
      const journal = await repo.listJournal({ since: now - windowMs - 86_400_000 });
      const drilled = drilledSnapshotIds(journal.records, job.name);
      let snapshot: SnapshotEntry;
      let selection: DrillSelection;
      let reason: string;
      if (mode === 'latest' || mode === 'random') {
        const choice = chooseSnapshot(mode, snapshots, job.name, {
          now,
          windowMs,
          drilled,
          random: opts.random ?? Math.random,
        });
        ({ snapshot, selection, reason } = choice);
      } else {
        snapshot = await repo.findSnapshot(mode, job.name);
        selection = 'id';
        reason = 'the restore point asked for';
      }
      const coverage = coverageOf(
        drillCandidates(snapshots, job.name, now, windowMs),
        drilled,
        windowMs,
        snapshot.id,
      );
      return { ok: true, repositoryName: name, repo, snapshot, selection, reason, coverage };
    } catch (err) {
      if (names.length > 1) deps.logger.warn(`repository ${name}: ${describeFailure(err).message}`);
      // The first repository that opened is where the failed drill is recorded.
      if (repo && !failure?.repo) failure = { error: err, repositoryName: name, repo };
      else {
        failure ??= { error: err };
        await repo?.close();
      }
    }
  }
  return failure
    ? { ok: false, ...failure }
    : { ok: false, error: new UsageError('no repository to drill from') };
}

function stepOf(name: string, err: unknown, durationMs: number): DrillStep {
  const d = describeFailure(err);
  return { name, status: 'fail', message: d.message + (d.hint ? ` (hint: ${d.hint})` : ''), durationMs };
}

const skipped = (name: string, message: string): DrillStep => ({
  name,
  status: 'skip',
  message,
  durationMs: 0,
});

/** Drill one job; never throws for drill failures (they are in the result and the journal). */
export async function drillJob(
  config: LifeboatConfig,
  name: string,
  opts: DrillOptions,
  deps: Deps,
): Promise<DrillResult> {
  const job = config.jobs[name];
  if (!job) throw new UsageError(`unknown job '${name}'`);
  const policy = config.policies[job.policy];
  const mode = opts.snapshot ?? policy?.drill?.snapshot ?? 'latest';
  const runId = newRunId();
  const startedMs = deps.clock.now();
  const t0 = monotonicMs();
  const timeoutMs = job.drill?.timeout ?? 3_600_000;
  const deadline = t0 + timeoutMs;
  const provisioningCounts = policy?.drill?.provisioningCounts ?? false;
  const rtoMs = policy?.rto ?? null;
  const steps: DrillStep[] = [];
  const phases: DrillPhases = { provisionMs: 0, restoreMs: 0, verifyMs: 0, teardownMs: 0 };
  const existing = (job.kind === 'postgres' || job.kind === 'mysql') && job.drill?.scratch === 'existing';
  let firstError: FailureSummary | undefined;
  const noteError = (err: unknown) => {
    firstError ??= summarizeFailure(err);
  };
  const state = {
    repository: undefined as string | undefined,
    snapshot: undefined as SnapshotEntry | undefined,
    selection: (mode === 'latest' || mode === 'random' ? mode : 'id') as DrillSelection,
    coverage: undefined as DrillCoverage | undefined,
    kept: undefined as DrillResult['kept'],
    leftovers: [] as string[],
  };
  const step = (phase: DrillStepEvent['phase'], text: string) => opts.onStep?.({ job: name, phase, text });
  // An interrupt tears the scratch environment down before lifeboat's own abort signal fires.
  let scratchInterrupted = false;

  const build = (outcomeOverride?: 'interrupted'): DrillResult => {
    const measuredRtoMs = measuredRto(phases, provisioningCounts);
    const verdict = drillVerdict(steps);
    const interrupted =
      outcomeOverride === 'interrupted' || Boolean(deps.signal?.aborted) || scratchInterrupted;
    const failing = steps.find((s) => s.status === 'fail');
    let error: FailureSummary | undefined;
    if (interrupted)
      error = { code: 'E_INTERRUPTED', message: 'the drill was interrupted', exitCode: ExitCode.interrupted };
    else if (verdict === 'breach') {
      error = {
        code: 'E_POLICY_BREACH',
        message: `restore took ${formatMs(measuredRtoMs)}, longer than the RTO of ${formatMs(rtoMs ?? 0)}`,
        hint: 'Speed up the restore (faster storage, a closer repository) or revisit the RTO.',
        exitCode: ExitCode.policyBreach,
      };
    } else if (verdict === 'fail') {
      const message = `${failing?.name ?? 'drill'} failed: ${failing?.message ?? 'unknown'}`;
      error = {
        code: firstError?.code ?? 'E_DRILL_FAILED',
        message: redact(message),
        ...(firstError?.hint ? { hint: firstError.hint } : {}),
        exitCode: ExitCode.policyBreach,
      };
    }
    return {
      job: name,
      kind: job.kind,
      runId,
      recorded: false,
      ...(state.repository ? { repository: state.repository } : {}),
      ...(state.snapshot ? { snapshotId: state.snapshot.id, snapshotTime: state.snapshot.endedAt } : {}),
      selection: state.selection,
      scratch: scratchKindOf(job.kind, existing),
      verdict: interrupted && verdict === 'pass' ? 'fail' : verdict,
      outcome: interrupted ? 'interrupted' : verdict === 'pass' ? 'success' : 'failure',
      startedAt: isoTime(startedMs),
      endedAt: isoTime(deps.clock.now()),
      durationMs: monotonicMs() - t0,
      phases: { ...phases },
      measuredRtoMs,
      rtoMs,
      provisioningCounts,
      steps: steps.map((s) => ({ ...s })),
      ...(state.coverage ? { coverage: state.coverage } : {}),
      ...(state.kept ? { kept: state.kept } : {}),
      ...(error ? { error } : {}),
      ...(state.leftovers.length ? { leftovers: state.leftovers } : {}),
    };
  };

  // 1. The restore point.
  step('select', `choosing a restore point of ${name}`);
  const sel = await selectSnapshot(config, job, mode, opts, deps);
  if (!sel.ok) {
    noteError(sel.error);
    steps.push(stepOf('select snapshot', sel.error, monotonicMs() - t0));
    state.repository = sel.repositoryName;
    const result = build(failureOutcome(sel.error) === 'interrupted' ? 'interrupted' : undefined);
    if (sel.repo) {
      try {
        await sel.repo.appendJournal(drillJournalInput(result));
        result.recorded = true;
      } catch (err) {
        deps.logger.warn(
          `could not record the drill of ${name} in the journal: ${describeFailure(err).message}`,
        );
      } finally {
        await sel.repo.close();
      }
    }
    return result;
  }
  const { repo } = sel;
  Object.assign(state, {
    repository: sel.repositoryName,
    snapshot: sel.snapshot,
    selection: sel.selection,
    coverage: sel.coverage,
  });
  steps.push({
    name: 'select snapshot',
    status: 'pass',
    message: `${sel.snapshot.id.slice(0, 12)} of ${sel.snapshot.endedAt} in ${sel.repositoryName}: ${sel.reason}`,
    durationMs: monotonicMs() - t0,
  });

  // An interrupted drill is still recorded (after its scratch environment is gone: cleanups run newest first).
  let recorded = false;
  const record = async (result: DrillResult) => {
    if (recorded) return;
    recorded = true;
    await repo.appendJournal(drillJournalInput(result));
    result.recorded = true;
  };
  const unregisterRecord = registerCleanup(`journal record of the drill of ${name}`, () =>
    record(build('interrupted')).catch(() => {}),
  );

  const timeout = new AbortController();
  const timer = setTimeout(
    () =>
      timeout.abort(
        new OperationError(
          'E_DRILL_TIMEOUT',
          `the drill of ${name} did not finish within ${formatMs(timeoutMs)}`,
          {
            hint: `Raise jobs.${name}.drill.timeout, or find out why the restore is slow.`,
          },
        ),
      ),
    Math.max(1, deadline - monotonicMs()),
  );
  timer.unref();
  const signal = deps.signal ? AbortSignal.any([deps.signal, timeout.signal]) : timeout.signal;
  let env: ScratchEnvironment | undefined;
  let lock: { release(): Promise<void> } | undefined;
  try {
    try {
      lock = await repo.lock({ exclusive: false, purpose: `drill of ${name}` });
    } catch (err) {
      noteError(err);
      steps.push(stepOf('lock repository', err, 0));
    }

    // 2. Provision.
    let kd: KindDrill | undefined;
    if (lock && signal.aborted) {
      const reason: unknown = signal.reason;
      noteError(reason);
      steps.push(stepOf('provision', reason, 0));
    } else if (lock) {
      const tp = monotonicMs();
      step('provision', `provisioning a ${scratchKindOf(job.kind, existing)} scratch environment`);
      try {
        const server = await drillServerOf(job, deps);
        kd = kindDrill({
          job,
          repo,
          snapshot: sel.snapshot,
          deps,
          stateDir: stateDir(config, deps.env),
          scratchRoot: config.defaults.scratchRoot,
          runId,
          now: isoTime(deps.clock.now()),
          signal,
          deadline,
          ...(server ? { server } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
          onInterrupt: () => (scratchInterrupted = true),
        });
        env = await kd.provision();
        phases.provisionMs = monotonicMs() - tp;
        steps.push({
          name: 'provision',
          status: 'pass',
          message: env.description,
          durationMs: phases.provisionMs,
        });
      } catch (err) {
        phases.provisionMs = monotonicMs() - tp;
        noteError(err);
        steps.push(stepOf('provision', err, phases.provisionMs));
      }
    }

    // 3. Restore.
    let restored = false;
    if (env && kd) {
      step('restore', `restoring ${sel.snapshot.id.slice(0, 12)} into ${env.description}`);
      const tr = monotonicMs();
      try {
        if (signal.aborted) throw signal.reason;
        const out = await kd.restore();
        const elapsed = monotonicMs() - tr;
        phases.restoreMs = elapsed - out.innerVerifyMs;
        phases.verifyMs += out.innerVerifyMs;
        steps.push({ name: 'restore', status: 'pass', message: out.message, durationMs: phases.restoreMs });
        restored = true;
      } catch (err) {
        phases.restoreMs = monotonicMs() - tr;
        const reason = signal.aborted && signal.reason !== undefined ? signal.reason : err;
        noteError(reason);
        steps.push(stepOf('restore', reason, phases.restoreMs));
      }
    }

    // 4. Verify.
    const assertions = job.drill?.assertions ?? [];
    if (restored && kd) {
      step('verify', `verifying the restored copy of ${name}`);
      const tv = monotonicMs();
      try {
        steps.push(...(await kd.verify(assertions.some((a) => a.type === 'command'))));
        steps.push(...(await runAssertions(assertions, kd.assertionContext(), deps.env, deadline, signal)));
      } catch (err) {
        const reason = signal.aborted && signal.reason !== undefined ? signal.reason : err;
        noteError(reason);
        steps.push(stepOf('verify', reason, monotonicMs() - tv));
      }
      phases.verifyMs += monotonicMs() - tv;
    } else if (env) {
      steps.push(skipped('verify', 'nothing restored to verify'));
      for (const [i, a] of assertions.entries())
        steps.push(skipped(`assertion ${i + 1}`, `${a.type} assertion: nothing restored`));
    }

    // 5. Teardown (or keep a failed environment for inspection).
    if (env) {
      const failed = steps.some((s) => s.status === 'fail');
      if (failed && opts.keepOnFailure && !deps.signal?.aborted && !scratchInterrupted) {
        await env.keep();
        state.kept = { id: env.id, description: env.description };
        steps.push(
          skipped(
            'teardown',
            `kept for inspection: ${env.description} (remove it with \`lifeboat drill cleanup\`)`,
          ),
        );
        env = undefined;
      } else {
        step('teardown', `removing ${env.description}`);
        const td = monotonicMs();
        await env.dispose();
        phases.teardownMs = monotonicMs() - td;
        state.leftovers = env.disposeProblems;
        steps.push(
          env.disposeProblems.length === 0
            ? {
                name: 'teardown',
                status: 'pass',
                message: 'scratch environment removed',
                durationMs: phases.teardownMs,
              }
            : {
                name: 'teardown',
                status: 'fail',
                message: `left behind (run \`lifeboat drill cleanup\`): ${env.disposeProblems.join('; ')}`,
                durationMs: phases.teardownMs,
              },
        );
        env = undefined;
      }
    }

    // 6. Judge and record. A drill that restored nothing never passes, whatever stopped it.
    if (!restored && !steps.some((s) => s.status === 'fail')) {
      steps.push({ name: 'restore', status: 'fail', message: 'nothing was restored', durationMs: 0 });
    }
    steps.push(rtoStep(phases, provisioningCounts, rtoMs, restored));
    const result = build();
    try {
      await record(result);
    } catch (err) {
      deps.logger.warn(
        `could not record the drill of ${name} in the journal: ${describeFailure(err).message}`,
      );
    }
    return result;
  } finally {
    clearTimeout(timer);
    // Only an unexpected exception gets here with the environment still up.
    if (env) await env.dispose();
    unregisterRecord();
    await lock?.release().catch(() => {});
    await repo.close().catch(() => {});
  }
}
