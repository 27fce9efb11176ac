import type { Clock } from './clock.js';

/** How many failures (refused tokens) a peer may have within a window before it is throttled. */
export interface FailureLimit {
  /** Failures allowed within `windowMs`; the next attempt is refused without being tried. */
  failures: number;
  windowMs: number;
}

/** Peers tracked at most; past it the entry whose window started first is forgotten. */
const MAX_TRACKED = 10_000;

/**
 * Counts failures per peer (a remote address, or any other key) in fixed windows, to throttle token
 * guessing: once a peer has had `failures` within `windowMs`, `retryAfterMs(peer)` answers how long it
 * must wait before it is tried again. Memory stays bounded: windows that ended are dropped as they
 * are met, and at most 10,000 peers are tracked (the oldest window is forgotten first).
 */
export class FailureWindow<Key = string> {
  readonly #windows = new Map<Key, { start: number; failures: number }>();

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    readonly limit: FailureLimit,
  ) {
    if (!(Number.isSafeInteger(limit.failures) && limit.failures >= 1)) throw new RangeError(`invalid failures: ${limit.failures}`);
    if (!(limit.windowMs > 0)) throw new RangeError(`invalid windowMs: ${limit.windowMs}`);
  }

  /** 0 when the peer may try; otherwise the milliseconds until its window ends. */
  retryAfterMs(peer: Key): number {
    const window = this.#current(peer);
    if (!window || window.failures < this.limit.failures) return 0;
    return Math.max(1, window.start + this.limit.windowMs - this.clock.now());
  }

  /** Records one failure of the peer. */
  fail(peer: Key): void {
    const window = this.#current(peer);
    if (window) {
      window.failures++;
      return;
    }
    if (this.#windows.size >= MAX_TRACKED) this.#windows.delete(this.#windows.keys().next().value as Key);
    this.#windows.set(peer, { start: this.clock.now(), failures: 1 });
  }

  /** Peers currently tracked (for tests and metrics). */
  get size(): number {
    return this.#windows.size;
  }

  #current(peer: Key): { start: number; failures: number } | undefined {
    const window = this.#windows.get(peer);
    if (window && this.clock.now() - window.start >= this.limit.windowMs) {
      this.#windows.delete(peer);
      return undefined;
    }
    return window;
  }
}
