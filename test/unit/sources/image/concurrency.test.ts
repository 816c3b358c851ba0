import { describe, expect, it } from 'vitest';
import { BoundedTasks } from '../../../../src/sources/image/boundedTasks.js';
import { orderedPrefetch } from '../../../../src/sources/image/orderedPrefetch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BoundedTasks', () => {
  it('never runs more than the limit at once and runs every task', async () => {
    const tasks = new BoundedTasks(3);
    let running = 0;
    let peak = 0;
    let done = 0;
    for (let i = 0; i < 20; i++) {
      await tasks.add(async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(1 + (i % 4));
        running--;
        done++;
      });
    }
    await tasks.drain();
    expect(done).toBe(20);
    expect(peak).toBe(3);
  });

  it('rethrows the first failure from add or drain', async () => {
    const tasks = new BoundedTasks(2);
    await tasks.add(async () => {
      throw new Error('boom');
    });
    await sleep(1);
    await expect(tasks.add(async () => {})).rejects.toThrow('boom');
    await expect(tasks.drain()).rejects.toThrow('boom');
  });
});

describe('orderedPrefetch', () => {
  it('yields in input order with bounded look-ahead even when loads finish out of order', async () => {
    let inFlight = 0;
    let peak = 0;
    const out: number[] = [];
    for await (const v of orderedPrefetch([5, 1, 4, 2, 3, 0], 3, async (x) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep(x * 2);
      inFlight--;
      return x * 10;
    })) {
      out.push(v);
    }
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('surfaces a failed load at its position', async () => {
    const out: number[] = [];
    const consume = async () => {
      for await (const v of orderedPrefetch([1, 2, 3], 2, async (x) => {
        if (x === 2) throw new Error('load 2 failed');
        return x;
      })) {
        out.push(v);
      }
    };
    await expect(consume()).rejects.toThrow('load 2 failed');
    expect(out).toEqual([1]);
  });
});
