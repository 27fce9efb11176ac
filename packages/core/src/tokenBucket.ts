import type { Clock } from './clock.js';

/**
 * A token bucket: `ratePerSecond` tokens a second, at most `burst` saved up, full at first. The hub
 * limits each connection's messages and new streams with it, the reference server each address's
 * HTTP requests. Taking a token allocates nothing.
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #ratePerSecond: number;
  readonly #burst: number;
  #tokens: number;
  #updated: number;

  constructor(clock: Clock, ratePerSecond: number, burst: number) {
    this.#clock = clock;
    this.#ratePerSecond = ratePerSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updated = clock.now();
  }

  /** Takes one token; false when there is none (the caller is over its rate). */
  take(): boolean {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#updated) * this.#ratePerSecond) / 1000);
    this.#updated = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token, as of the last {@link take}. */
  get retryAfterMs(): number {
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.#ratePerSecond);
  }
}
