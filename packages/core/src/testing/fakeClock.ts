import type { Clock, TimerHandle } from '../clock.js';

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

interface MacrotaskHost {
  setImmediate?: (callback: () => void) => unknown;
  setTimeout(callback: () => void, ms: number): unknown;
}
const host = globalThis as unknown as MacrotaskHost;

/** One macrotask turn: by its end every queued promise continuation has run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof host.setImmediate === 'function') host.setImmediate(resolve);
    else host.setTimeout(resolve, 0);
  });
}

/**
 * A clock that only moves when told to. Timers fire in time order (ties in scheduling order), and
 * pending promise work is flushed before and after each timer, so hours of backoff, leases and
 * delayed frames run in milliseconds, deterministically. Hand it to a hub, a client or a memory link
 * as their `clock`.
 */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  /** Sorted by (at, id). */
  #timers: Timer[] = [];

  /** `start`: the first `now()`, in ms since the epoch. Default 2026-01-01T00:00:00Z. */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: Timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), callback };
    // Binary search for the insertion point keeps timers ordered without re-sorting.
    let low = 0;
    let high = this.#timers.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#timers[mid]!.at <= timer.at) low = mid + 1;
      else high = mid;
    }
    this.#timers.splice(low, 0, timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    const index = this.#timers.findIndex((timer) => timer.id === handle);
    if (index >= 0) this.#timers.splice(index, 1);
  }

  /** Number of timers waiting. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Lets every queued promise continuation run (one macrotask turn drains the microtask queue). */
  async flush(): Promise<void> {
    await macrotask();
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await this.flush();
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.#now = next.at;
      next.callback();
      await this.flush();
    }
    this.#now = target;
  }

  /**
   * Advances in steps of `stepMs` until `condition` holds, or throws after `timeoutMs` of fake time.
   */
  async advanceUntil(condition: () => boolean, { stepMs = 10, timeoutMs = 60_000 } = {}): Promise<void> {
    const deadline = this.#now + timeoutMs;
    await this.flush();
    while (!condition()) {
      if (this.#now >= deadline) throw new Error(`condition not met within ${timeoutMs} ms of fake time`);
      await this.advance(stepMs);
    }
  }
}
