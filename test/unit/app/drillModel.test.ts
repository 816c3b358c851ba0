import { describe, expect, it } from 'vitest';
import {
  drillJournalInput,
  drillVerdict,
  measuredRto,
  rtoStep,
  type DrillResult,
  type DrillStep,
} from '../../../src/app/drillModel.js';

const step = (name: string, status: DrillStep['status']): DrillStep => ({ name, status, durationMs: 1 });

describe('drill verdicts', () => {
  it.each([
    [[step('restore', 'pass'), step('content', 'pass'), step('rto', 'pass')], 'pass'],
    [[step('restore', 'pass'), step('rto', 'skip')], 'pass'],
    [[step('restore', 'pass'), step('rto', 'fail')], 'breach'],
    [[step('restore', 'fail'), step('rto', 'skip')], 'fail'],
    // Failed verification wins over a breached RTO.
    [[step('fingerprint', 'fail'), step('rto', 'fail')], 'fail'],
    [[step('teardown', 'fail'), step('rto', 'pass')], 'fail'],
  ] as const)('%j → %s', (steps, verdict) => {
    expect(drillVerdict(steps)).toBe(verdict);
  });

  it('counts provisioning towards the RTO only when the policy says so', () => {
    const phases = { provisionMs: 900, restoreMs: 1200, verifyMs: 400, teardownMs: 100 };
    expect(measuredRto(phases, false)).toBe(1200);
    expect(measuredRto(phases, true)).toBe(2100);
  });

  it('judges the RTO with measured and expected values', () => {
    const phases = { provisionMs: 900, restoreMs: 1200, verifyMs: 400, teardownMs: 100 };
    expect(rtoStep(phases, true, 2000, true)).toMatchObject({
      name: 'rto',
      status: 'fail',
      expected: '<= 2000 ms',
      actual: '2100 ms',
      message: 'provision + restore took 2.10 s (measured 2100 ms), the RTO is 2.00 s (2000 ms)',
    });
    expect(rtoStep(phases, false, 1_800_000, true)).toMatchObject({ status: 'pass' });
    expect(rtoStep(phases, false, null, true)).toMatchObject({ status: 'skip' });
    expect(rtoStep(phases, false, 1000, false)).toMatchObject({ status: 'skip' });
  });
});

describe('the drill journal record', () => {
  it('has exactly the agreed fields', () => {
    const r: DrillResult = {
      job: 'web',
      kind: 'files',
      runId: '0123456789abcdef',
      recorded: false,
      repository: 'local',
      snapshotId: 'aa'.repeat(32),
      snapshotTime: '2026-01-01T00:00:00.000Z',
      selection: 'random',
      scratch: 'directory',
      verdict: 'breach',
      outcome: 'failure',
      startedAt: '2026-01-02T00:00:00.000Z',
      endedAt: '2026-01-02T00:00:05.000Z',
      durationMs: 5000,
      phases: { provisionMs: 10, restoreMs: 4000, verifyMs: 900, teardownMs: 20 },
      measuredRtoMs: 4000,
      rtoMs: 1000,
      provisioningCounts: false,
      steps: [
        {
          name: 'rto',
          status: 'fail',
          message: 'too slow',
          durationMs: 0,
          expected: '<= 1000 ms',
          actual: '4000 ms',
        },
      ],
      coverage: { windowMs: 1, points: 1, drilled: 1, share: 1 },
      error: { code: 'E_POLICY_BREACH', message: 'restore took 4 s', exitCode: 4 },
    };
    expect(drillJournalInput(r)).toEqual({
      id: '0123456789abcdef',
      kind: 'drill',
      job: 'web',
      startedAt: '2026-01-02T00:00:00.000Z',
      endedAt: '2026-01-02T00:00:05.000Z',
      outcome: 'failure',
      error: { code: 'E_POLICY_BREACH', message: 'restore took 4 s' },
      snapshotIds: ['aa'.repeat(32)],
      details: {
        verdict: 'breach',
        repository: 'local',
        snapshotTime: '2026-01-01T00:00:00.000Z',
        selection: 'random',
        scratch: 'directory',
        phases: { provisionMs: 10, restoreMs: 4000, verifyMs: 900, teardownMs: 20 },
        measuredRtoMs: 4000,
        rtoMs: 1000,
        steps: [{ name: 'rto', status: 'fail', message: 'too slow', durationMs: 0 }],
      },
    });
  });
});
