/**
 * The only place in lifeboat that reads the wall clock. Tests replace it with
 * a fixed or stepping clock; LIFEBOAT_FAKE_NOW (ISO time) pins it for
 * end-to-end tests that drive the built binary.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
};

/** A clock that returns a fixed time until advanced. */
export class FakeClock implements Clock {
  constructor(private current: number) {}
  now(): number {
    return this.current;
  }
  set(ms: number): void {
    this.current = ms;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/** Monotonic milliseconds for measuring durations (unaffected by clock changes). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** The clock the CLI uses: the system clock, or a pinned one when LIFEBOAT_FAKE_NOW is set. */
export function defaultClock(env: NodeJS.ProcessEnv = process.env): Clock {
  const fake = env.LIFEBOAT_FAKE_NOW;
  if (fake) {
    const ms = Date.parse(fake);
    if (!Number.isNaN(ms)) return new FakeClock(ms);
  }
  return systemClock;
}
