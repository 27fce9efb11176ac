import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.js';
import { TokenBucket } from './tokenBucket.js';

function clockAt(start: number): Clock & { time: number } {
  const clock = {
    time: start,
    now: () => clock.time,
    setTimeout: () => 0,
    clearTimeout: () => {},
  };
  return clock;
}

describe('TokenBucket', () => {
  it('gives `burst` tokens at once, then one per 1/rate seconds, and says how long until the next', () => {
    const clock = clockAt(1_000);
    const bucket = new TokenBucket(clock, 2, 3);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    expect(bucket.retryAfterMs).toBe(500);
    clock.time += 250;
    expect(bucket.take()).toBe(false);
    expect(bucket.retryAfterMs).toBe(250);
    clock.time += 250;
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
  });

  it('saves up no more than `burst`', () => {
    const clock = clockAt(0);
    const bucket = new TokenBucket(clock, 10, 2);
    clock.time += 60_000;
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
  });

  it('keeps a fractional rate (tokens a minute) exact', () => {
    const clock = clockAt(0);
    const bucket = new TokenBucket(clock, 30 / 60, 1);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    expect(bucket.retryAfterMs).toBe(2_000);
    clock.time += 2_000;
    expect(bucket.take()).toBe(true);
  });
});
