import { describe, expect, it } from 'vitest';
import { FakeClock } from './fakeClock.js';

describe('FakeClock', () => {
  it('fires timers in time order (ties in scheduling order) only when advanced, and skips cleared ones', async () => {
    const clock = new FakeClock(1_000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => fired.push('a@10'), 10);
    const cleared = clock.setTimeout(() => fired.push('cleared'), 15);
    clock.setTimeout(() => fired.push('c@20'), 20);
    clock.clearTimeout(cleared);
    expect(clock.pendingTimers).toBe(3);
    await clock.advance(10);
    expect(fired).toEqual(['a@10']);
    expect(clock.now()).toBe(1_010);
    await clock.advance(100);
    expect(fired).toEqual(['a@10', 'b@20', 'c@20']);
    expect(clock.now()).toBe(1_110);
  });

  it('runs promise work queued by a timer before the next timer, and advanceUntil stops when a condition holds', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    clock.setTimeout(() => void Promise.resolve().then(() => seen.push(clock.now())), 5);
    let done = false;
    clock.setTimeout(() => (done = true), 50);
    await clock.advanceUntil(() => done, { stepMs: 10 });
    expect(seen).toEqual([Date.UTC(2026, 0, 1) + 5]);
    await expect(clock.advanceUntil(() => false, { timeoutMs: 100 })).rejects.toThrow('condition not met within 100 ms of fake time');
  });
});
