import { createRandom, type Random } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { BACKOFF_DEFAULTS, backoffDelay } from './backoff.js';

/** A Random that always answers the same `next()`. */
function fixed(value: number): Random {
  return { seed: 0, next: () => value, int: (max) => Math.floor(value * max), chance: (p) => value < p, pick: (items) => items[0]! };
}

describe('backoffDelay', () => {
  it('grows exponentially from initialMs by factor when there is no jitter', () => {
    const options = { initialMs: 100, factor: 3, maxMs: 1_000_000, jitter: 0 };
    const delays = [0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, options, fixed(0.5)));
    expect(delays).toEqual([100, 300, 900, 2_700, 8_100]);
  });

  it('uses the documented defaults', () => {
    expect(BACKOFF_DEFAULTS).toEqual({ initialMs: 250, maxMs: 10_000, factor: 2, jitter: 0.5 });
    expect(backoffDelay(0, { jitter: 0 }, fixed(0))).toBe(250);
    expect(backoffDelay(3, { jitter: 0 }, fixed(0))).toBe(2_000);
  });

  it('is capped at maxMs, also for huge attempt numbers', () => {
    const options = { initialMs: 250, maxMs: 5_000, factor: 2, jitter: 0 };
    expect(backoffDelay(5, options, fixed(0))).toBe(5_000);
    for (const attempt of [10, 31, 32, 33, 100, 1_000, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(attempt, options, fixed(0.999));
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBe(5_000);
    }
  });

  it('keeps jitter within [base × (1 − jitter), base] and never above maxMs', () => {
    const random = createRandom(42);
    for (const jitter of [0, 0.25, 0.5, 1]) {
      const options = { initialMs: 200, maxMs: 8_000, factor: 2, jitter };
      for (let attempt = 0; attempt < 12; attempt++) {
        const base = Math.min(8_000, 200 * 2 ** attempt);
        for (let i = 0; i < 50; i++) {
          const delay = backoffDelay(attempt, options, random);
          expect(delay).toBeGreaterThanOrEqual(base * (1 - jitter));
          expect(delay).toBeLessThanOrEqual(base);
          expect(delay).toBeLessThanOrEqual(8_000);
        }
        // the extremes of the random source map to the bounds
        expect(backoffDelay(attempt, options, fixed(0))).toBeCloseTo(base * (1 - jitter));
        expect(backoffDelay(attempt, options, fixed(0.999999))).toBeLessThanOrEqual(base);
      }
    }
  });

  it('spreads delays with jitter (two clients rarely retry at the same moment)', () => {
    const random = createRandom(7);
    const delays = new Set(Array.from({ length: 20 }, () => backoffDelay(4, {}, random)));
    expect(delays.size).toBe(20);
  });

  it('is deterministic for a seeded random source', () => {
    const a = createRandom(123);
    const b = createRandom(123);
    const run = (random: Random) => Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, {}, random));
    expect(run(a)).toEqual(run(b));
  });
});
