import type { Clock } from '@lockstep/core';

/** A token bucket: `ratePerSecond` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  #tokens: number;
  #updated: number;

  constructor(
    private readonly clock: Clock,
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.#tokens = burst;
    this.#updated = clock.now();
  }

  /** Takes one token; false when there is none (the caller is over its rate). */
  take(): boolean {
    const now = this.clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updated) / 1000) * this.ratePerSecond);
    this.#updated = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token. */
  get retryAfterMs(): number {
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.ratePerSecond) * 1000);
  }
}
