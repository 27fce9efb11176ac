import { TokenBucket, type Clock } from '@lockstep/core';

export interface RateLimit {
  requestsPerSecond: number;
  burst: number;
}

/** Clients whose buckets are full again are forgotten once there are more than this many. */
const MAX_TRACKED_CLIENTS = 10_000;

/**
 * A token bucket per client (the remote address): `burst` requests at once, refilled at
 * `requestsPerSecond`. `take` answers 0 when the request may go ahead, else the milliseconds until it
 * could.
 */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(limit: RateLimit, clock: Clock) {
    this.#limit = limit;
    this.#clock = clock;
  }

  take(client: string): number {
    const { requestsPerSecond, burst } = this.#limit;
    const bucket = this.#buckets.get(client) ?? new TokenBucket(this.#clock, requestsPerSecond, burst);
    const allowed = bucket.take();
    this.#buckets.delete(client);
    this.#buckets.set(client, bucket);
    // Least recently seen first (a Map keeps insertion order): the one whose bucket refilled the most.
    if (this.#buckets.size > MAX_TRACKED_CLIENTS) this.#buckets.delete(this.#buckets.keys().next().value!);
    return allowed ? 0 : bucket.retryAfterMs;
  }
}
