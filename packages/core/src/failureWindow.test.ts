import { describe, expect, it } from 'vitest';
import { FailureWindow } from './failureWindow.js';

function clock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('FailureWindow', () => {
  it('lets a peer fail `failures` times within the window, then answers how long to wait', () => {
    const time = clock();
    const window = new FailureWindow(time, { failures: 3, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      expect(window.retryAfterMs('a')).toBe(0);
      window.fail('a');
    }
    expect(window.retryAfterMs('a')).toBe(60_000);
    time.advance(20_000);
    expect(window.retryAfterMs('a')).toBe(40_000);
    // Other peers have budgets of their own.
    expect(window.retryAfterMs('b')).toBe(0);
    // The window ends: the peer starts over.
    time.advance(40_000);
    expect(window.retryAfterMs('a')).toBe(0);
    window.fail('a');
    expect(window.retryAfterMs('a')).toBe(0);
  });

  it('forgets ended windows and tracks at most 10,000 peers, the oldest forgotten first', () => {
    const time = clock();
    const window = new FailureWindow(time, { failures: 1, windowMs: 1_000 });
    for (let i = 0; i < 10_500; i++) window.fail(`peer-${i}`);
    expect(window.size).toBe(10_000);
    expect(window.retryAfterMs('peer-0')).toBe(0);
    expect(window.retryAfterMs('peer-10499')).toBe(1_000);
    time.advance(1_000);
    expect(window.retryAfterMs('peer-10499')).toBe(0);
  });

  it('refuses nonsensical limits', () => {
    expect(() => new FailureWindow(clock(), { failures: 0, windowMs: 1 })).toThrow(RangeError);
    expect(() => new FailureWindow(clock(), { failures: 1, windowMs: 0 })).toThrow(RangeError);
  });
});
