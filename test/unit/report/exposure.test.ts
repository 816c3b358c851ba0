import { describe, expect, it } from 'vitest';
import { exposureOf } from '../../../src/report/exposure.js';

const H = 3_600_000;
const FROM = 0;
const TO = 24 * H;

describe('exposureOf', () => {
  it('finds the largest gap and the exposed periods, clipped to the window', () => {
    // A point before the window (-30m), then at 0:30, 5:30 (a 5h gap), 6:00, and nothing after 20:00.
    const e = exposureOf({
      times: [-0.5 * H, 0.5 * H, 5.5 * H, 6 * H, 20 * H],
      from: FROM,
      to: TO,
      rpoMs: H,
    })!;
    expect(e.judgedFrom).toBe(FROM);
    expect(e.points).toEqual([-0.5 * H, 0.5 * H, 5.5 * H, 6 * H, 20 * H]);
    expect(e.largest).toEqual({ from: 6 * H, to: 20 * H, open: false });
    expect(e.exposed).toEqual([
      { from: 1.5 * H, to: 5.5 * H },
      { from: 7 * H, to: 20 * H },
      { from: 21 * H, to: 24 * H },
    ]);
    expect(e.exposedMs).toBe(20 * H);
    expect(e.withinShare).toBeCloseTo(4 / 24);
  });

  it('counts the open gap up to the end of the window', () => {
    const e = exposureOf({ times: [1 * H, 2 * H], from: FROM, to: TO, rpoMs: H })!;
    expect(e.largest).toEqual({ from: 2 * H, to: TO, open: true });
  });

  it('judges a job younger than the window from its first point, and ignores later points', () => {
    const e = exposureOf({ times: [10 * H, 10.5 * H, 30 * H], from: FROM, to: TO, rpoMs: H })!;
    expect(e.judgedFrom).toBe(10 * H);
    expect(e.points).toEqual([10 * H, 10.5 * H]);
    expect(e.exposed).toEqual([{ from: 11.5 * H, to: TO }]);
    expect(e.withinShare).toBeCloseTo(1.5 / 14);
  });

  it('a gap of exactly the RPO is not exposure', () => {
    const e = exposureOf({ times: [0, H, 2 * H], from: 0, to: 2 * H, rpoMs: H })!;
    expect(e.exposed).toEqual([]);
    expect(e.withinShare).toBe(1);
  });

  it('de-duplicates equal times and accepts any order', () => {
    const e = exposureOf({ times: [3 * H, H, 3 * H, 2 * H], from: 0, to: 3 * H, rpoMs: 2 * H })!;
    expect(e.points).toEqual([H, 2 * H, 3 * H]);
  });

  it('has nothing to say without a point', () => {
    expect(exposureOf({ times: [], from: FROM, to: TO, rpoMs: H })).toBeUndefined();
    expect(exposureOf({ times: [TO + H], from: FROM, to: TO, rpoMs: H })).toBeUndefined();
  });
});
