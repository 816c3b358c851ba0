import { describe, expect, it } from 'vitest';
import { buildReport, CONTROL_IDS, REPORT_SCHEMA } from '../../../src/report/index.js';
import { D, fixture, NOW } from './fixture.js';

describe('buildReport', () => {
  const { evidence, targets } = fixture();
  const report = buildReport(evidence, targets, NOW);

  it('is versioned, dated and sums up every control', () => {
    expect(report.schema).toBe(REPORT_SCHEMA);
    expect(report.generatedAt).toBe('2024-06-01T12:00:00.000Z');
    expect(report.window).toEqual({
      from: '2024-05-02T12:00:00.000Z',
      to: '2024-06-01T12:00:00.000Z',
      durationMs: 30 * D,
    });
    const all = report.jobs.flatMap((j) => j.controls);
    expect(report.summary.pass + report.summary.warning + report.summary.fail + report.summary.unknown).toBe(
      all.length,
    );
    expect(report.status).toBe('fail');
    expect(report.jobs.map((j) => [j.job, j.status])).toEqual([
      ['web', 'fail'],
      ['db', 'fail'],
      ['archive', 'unknown'],
    ]);
  });

  it('uses only known control IDs and points every non-unknown control at evidence it can name', () => {
    for (const job of report.jobs) {
      for (const c of job.controls) {
        expect(CONTROL_IDS).toContain(c.id);
        for (const e of c.evidence) {
          expect(['snapshot', 'run', 'check', 'drill']).toContain(e.kind);
          expect(Number.isNaN(Date.parse(e.time))).toBe(false);
        }
      }
    }
    const web = report.jobs[0]!;
    const rto = web.controls.find((c) => c.id === 'rto')!;
    expect(rto.evidence.map((e) => e.kind)).toEqual(['drill', 'drill']);
  });

  it('lists records of jobs no longer configured, and unusable journal records, as warnings', () => {
    expect(report.unconfiguredJobs).toEqual([
      { job: 'old<job>&"x"', runs: 1, restorePoints: 1, lastRunAt: '2024-05-12T12:00:00.000Z' },
    ]);
    expect(report.warnings).toEqual([
      'repository local: 1 journal record could not be used (1 written by a newer lifeboat: upgrade to read them); ' +
        'controls may lack their evidence (first: journal/20240530T000000000Z-00000000000000aa: it has schema version 2, newer than this lifeboat reads (1))',
      'repository vault could not be opened: no repository at file:///mnt/vault/lifeboat; its controls are unknown',
      'job old<job>&"x" is not in the configuration but has 1 journal record and 1 restore point; it is not judged',
    ]);
    expect(report.repositories.find((r) => r.name === 'vault')).toMatchObject({
      opened: false,
      error: { code: 'E_REPO_MISSING' },
    });
  });

  it('a selected subset of jobs does not turn the others into unconfigured ones', () => {
    const only = buildReport(evidence, { ...targets, jobs: targets.jobs.slice(0, 1) }, NOW);
    expect(only.jobs.map((j) => j.job)).toEqual(['web']);
    expect(only.unconfiguredJobs.map((u) => u.job)).toEqual(['old<job>&"x"']);
  });

  it('an empty window with no data is a report, not a crash', () => {
    const empty = buildReport({ repositories: [], restorePoints: [], runs: [] }, targets, NOW);
    expect(empty.jobs).toHaveLength(3);
    expect(empty.jobs.flatMap((j) => j.controls).some((c) => c.status === 'pass')).toBe(false);
    // Repositories never gathered count as unreadable.
    expect(empty.jobs[0]!.controls[0]!.measured).toMatch(/repository local could not be read/);
  });

  it('is deterministic', () => {
    const again = fixture();
    expect(buildReport(again.evidence, again.targets, NOW)).toEqual(report);
  });

  it('the timeline holds the judged points, exposure and drills of the window', () => {
    const db = report.jobs[1]!;
    expect(db.timeline.points).toHaveLength(72);
    expect(db.timeline.rpoMs).toBe(3_600_000);
    expect(db.timeline.drills.map((d) => d.verdict)).toEqual(['pass', 'pass', 'fail', 'pass', 'breach']);
    expect(report.jobs[2]!.timeline).toMatchObject({ points: [], judgedFrom: null });
  });
});

describe('stable keys', () => {
  it('every control of one id has the same value keys, whatever the evidence', () => {
    const { evidence, targets } = fixture();
    const reports = [
      buildReport(evidence, targets, NOW),
      buildReport({ repositories: [], restorePoints: [], runs: [] }, targets, NOW),
    ];
    const keys = new Map<string, string>();
    for (const r of reports) {
      for (const c of r.jobs.flatMap((j) => j.controls)) {
        const k = Object.keys(c.values).join(',');
        expect(keys.get(c.id) ?? k, c.id).toBe(k);
        keys.set(c.id, k);
        expect(Object.keys(c)).toEqual(['id', 'title', 'status', 'target', 'measured', 'evidence', 'values']);
      }
    }
    expect(keys.size).toBeGreaterThanOrEqual(12);
  });
});
