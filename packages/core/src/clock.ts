/** An opaque timer handle returned by a {@link Clock}. */
export type TimerHandle = { readonly __timer: unique symbol } | number | object;

/**
 * Time enters Lockstep only through a Clock, so tests can run hours of backoff, leases and
 * heartbeats in milliseconds with a fake one, and core stays free of platform types.
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

interface TimerHost {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  Date: { now(): number };
}

const host = globalThis as unknown as TimerHost;

/** The platform clock (`Date.now` and the global timers), in browsers and Node alike. */
export const systemClock: Clock = {
  now: () => host.Date.now(),
  setTimeout: (callback, ms) => host.setTimeout(callback, ms),
  clearTimeout: (handle) => host.clearTimeout(handle),
};
