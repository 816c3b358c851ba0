import { describe, expect, it } from 'vitest';
import {
  evaluateCopies,
  evaluateRpo,
  stateOfRatio,
  worstState,
  type CopyHolding,
} from '../../../src/policy/rpo.js';
import { evaluateRto, measuredRestoreMs, rtoWeight } from '../../../src/policy/rto.js';

const MIN = 60_000;
const H = 60 * MIN;
const D = 24 * H;
const NOW = Date.parse('2024-06-01T12:00:00Z');

describe('evaluateRpo', () => {
  it.each([
    {
      name: 'fresh',
      age: 10 * MIN,
      state: 'ok',
      reason: 'newest restore point 10m ago, within the RPO of 1h',
    },
    { name: 'just under 80%', age: 47 * MIN, state: 'ok' },
    {
      name: 'at 80%',
      age: 48 * MIN,
      state: 'at-risk',
      reason: 'newest restore point 48m ago, close to the RPO of 1h',
    },
    { name: 'just under the RPO', age: 59 * MIN, state: 'at-risk' },
    {
      name: 'at the RPO',
      age: H,
      state: 'breached',
      reason: 'newest restore point 1h ago, older than the RPO of 1h',
    },
    { name: 'far over', age: 3 * D, state: 'breached' },
  ])('$name', ({ age, state, reason }) => {
    const r = evaluateRpo({ now: NOW, rpoMs: H, newestAt: NOW - age });
    expect(r.state).toBe(state);
    expect(r.ageMs).toBe(age);
    expect(r.ratio).toBeCloseTo(age / H);
    if (reason) expect(r.reason).toBe(reason);
  });

  it('no restore point is a breach', () => {
    expect(evaluateRpo({ now: NOW, rpoMs: H, newestAt: undefined })).toEqual({
      state: 'breached',
      reason: 'no restore point (RPO 1h)',
    });
  });

  it('a repository that cannot be read is unknown, never ok', () => {
    expect(evaluateRpo({ now: NOW, rpoMs: H, newestAt: NOW, error: 'wrong password' })).toEqual({
      state: 'unknown',
      reason: 'cannot tell: wrong password',
    });
  });

  it('a restore point from the future (clock skew) counts as fresh', () => {
    expect(evaluateRpo({ now: NOW, rpoMs: H, newestAt: NOW + MIN }).state).toBe('ok');
  });
});

describe('worstState and stateOfRatio', () => {
  it.each([
    [[], 'ok'],
    [['ok', 'at-risk'], 'at-risk'],
    [['at-risk', 'unknown', 'ok'], 'unknown'],
    [['unknown', 'breached', 'ok'], 'breached'],
  ] as const)('%j → %s', (states, worst) => {
    expect(worstState(states)).toBe(worst);
  });

  it.each([
    [0, 'ok'],
    [0.79, 'ok'],
    [0.8, 'at-risk'],
    [0.99, 'at-risk'],
    [1, 'breached'],
  ] as const)('ratio %d → %s', (ratio, state) => {
    expect(stateOfRatio(ratio)).toBe(state);
  });
});

describe('evaluateCopies', () => {
  const h = (repository: string, state: CopyHolding['state'], offsite = false): CopyHolding => ({
    repository,
    state,
    offsite,
  });

  it.each([
    { name: 'one fresh copy of one', holdings: [h('local', 'ok')], copies: 1, offsite: 0, state: 'ok' },
    {
      name: 'a lagging offsite copy breaks copies: 2, offsite: 1',
      holdings: [h('local', 'ok'), h('s3', 'breached', true)],
      copies: 2,
      offsite: 1,
      state: 'breached',
      reason: '1 of 2 copies within the RPO, 0 of 1 offsite',
    },
    {
      name: 'an at-risk copy still counts',
      holdings: [h('local', 'ok'), h('s3', 'at-risk', true)],
      copies: 2,
      offsite: 1,
      state: 'ok',
    },
    {
      name: 'an unreadable repository makes a shortfall unknown',
      holdings: [h('local', 'ok'), h('s3', 'unknown', true)],
      copies: 2,
      offsite: 1,
      state: 'unknown',
      reason: '1 of 2 copies within the RPO, 0 of 1 offsite (s3 unreadable)',
    },
    {
      name: 'enough fresh copies even though one is unreadable',
      holdings: [h('a', 'ok'), h('b', 'ok', true), h('c', 'unknown')],
      copies: 2,
      offsite: 1,
      state: 'ok',
    },
    {
      name: 'offsite missing although copies are enough',
      holdings: [h('a', 'ok'), h('b', 'ok')],
      copies: 2,
      offsite: 1,
      state: 'breached',
    },
  ])('$name', ({ holdings, copies, offsite, state, reason }) => {
    const r = evaluateCopies(holdings, copies, offsite);
    expect(r.state).toBe(state);
    if (reason) expect(r.reason).toBe(reason);
  });
});

describe('evaluateRto', () => {
  const drill = (daysAgo: number, outcome: 'success' | 'failure', restoreMs?: number) => ({
    startedAt: NOW - daysAgo * D,
    endedAt: NOW - daysAgo * D + 20 * MIN,
    outcome,
    ...(restoreMs === undefined ? {} : { restoreMs }),
  });

  it.each([
    {
      name: 'no drill yet is never ok',
      input: { rtoMs: 30 * MIN, drillEveryMs: 7 * D },
      state: 'no-drill',
      reason: 'no drill yet',
    },
    {
      name: 'fast restore',
      input: { rtoMs: 30 * MIN, drillEveryMs: 7 * D, last: drill(2, 'success', 10 * MIN) },
      state: 'ok',
      reason: 'last drill passed 2d ago; restore took 10m of an RTO of 30m',
    },
    {
      name: 'restore at 80% of the RTO',
      input: { rtoMs: 30 * MIN, last: drill(2, 'success', 24 * MIN) },
      state: 'at-risk',
    },
    {
      name: 'restore slower than the RTO',
      input: { rtoMs: 30 * MIN, last: drill(2, 'success', 42 * MIN) },
      state: 'breached',
      reason: 'last drill passed 2d ago; restore took 42m of an RTO of 30m',
    },
    {
      name: 'failed drill',
      input: { rtoMs: 30 * MIN, last: drill(1, 'failure'), lastSuccess: drill(3, 'success', MIN) },
      state: 'breached',
      reason: 'last drill failed 23h 40m ago',
    },
    {
      name: 'overdue drill',
      input: { rtoMs: 30 * MIN, drillEveryMs: 7 * D, last: drill(9, 'success', 10 * MIN) },
      state: 'at-risk',
      reason:
        'last drill passed 9d ago; restore took 10m of an RTO of 30m; overdue: a drill is required every 7d',
    },
    {
      name: 'drill without a measured time',
      input: { rtoMs: 30 * MIN, last: drill(1, 'success') },
      state: 'unknown',
    },
    { name: 'nothing required', input: {}, state: 'not-required' },
  ])('$name', ({ input, state, reason }) => {
    const r = evaluateRto({ now: NOW, ...input } as Parameters<typeof evaluateRto>[0]);
    expect(r.state).toBe(state);
    if (reason) expect(r.reason).toBe(reason);
  });

  it('weighs no drill as at risk and not required as ok', () => {
    expect(rtoWeight('no-drill')).toBe('at-risk');
    expect(rtoWeight('not-required')).toBe('ok');
    expect(rtoWeight('breached')).toBe('breached');
  });

  it('reads the measured restore time from the drill record, else the whole drill', () => {
    const base = { startedAt: '2024-06-01T10:00:00Z', endedAt: '2024-06-01T10:20:00Z' };
    expect(measuredRestoreMs({ ...base, details: { measuredRtoMs: 90_000 } })).toBe(90_000);
    expect(measuredRestoreMs({ ...base, details: { measuredRtoMs: 'fast' } })).toBe(20 * MIN);
    expect(measuredRestoreMs(base)).toBe(20 * MIN);
    expect(measuredRestoreMs({ startedAt: 'x', endedAt: 'y' })).toBeUndefined();
  });
});
