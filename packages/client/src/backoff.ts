import type { Random } from '@lockstep/core';

/** Reconnect policy: exponential backoff with jitter. */
export interface BackoffOptions {
  /** First delay after a failure. Default 250 ms. */
  initialMs?: number;
  /** Upper bound of a delay. Default 10 s. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of each delay that is randomised (0 = none, 1 = "full jitter"). Default 0.5. */
  jitter?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = { initialMs: 250, maxMs: 10_000, factor: 2, jitter: 0.5 };

/** The delay before reconnect attempt `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: Random): number {
  const { initialMs, maxMs, factor, jitter } = { ...BACKOFF_DEFAULTS, ...options };
  const base = Math.min(maxMs, initialMs * factor ** Math.min(attempt, 32));
  return base * (1 - jitter) + base * jitter * random.next();
}
