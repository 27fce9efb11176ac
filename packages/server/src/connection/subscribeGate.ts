import { LockstepError, type Clock, type TimerHandle } from '@lockstep/core';

/** How often a gate waiting for the connection to drain looks again. */
const DRAIN_CHECK_MS = 50;

export interface SubscribeGateOptions {
  clock: Clock;
  /** Subscribe answers prepared at once. */
  concurrency: number;
  /** Subscribes allowed to wait for a turn; one more means the client does not read its answers. */
  maxWaiting: number;
  /** True while the connection holds more unsent bytes than it may. */
  backlogged(): boolean;
}

/**
 * Admission of one connection's `subscribe` requests, the only requests whose answer (a snapshot, a
 * page of events) can be much larger than the request. At most `concurrency` are prepared at a time,
 * and each starts only while the connection's unsent bytes are under the bound — so a client that
 * pipelines subscribes and never reads the answers makes the hub hold a bounded amount for it, not
 * one snapshot per request. Turns are given in arrival order.
 */
export class SubscribeGate {
  readonly #options: SubscribeGateOptions;
  readonly #waiting: Array<{ resolve(release: () => void): void; reject(error: LockstepError): void }> = [];
  #active = 0;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(options: SubscribeGateOptions) {
    this.#options = options;
  }

  /**
   * Resolves with a release function once this subscribe may be prepared; call it once its answer
   * has been sent (or has failed). Rejects with UNAVAILABLE when the gate is closed, and with
   * RATE_LIMITED when `maxWaiting` subscribes already wait (the caller closes the connection).
   */
  acquire(): Promise<() => void> {
    if (this.#closed) return Promise.reject(new LockstepError('UNAVAILABLE', 'connection closed'));
    if (this.#waiting.length === 0 && this.#free()) return Promise.resolve(this.#grant());
    if (this.#waiting.length >= this.#options.maxWaiting) {
      return Promise.reject(
        new LockstepError('RATE_LIMITED', `more than ${this.#options.maxWaiting} subscribe requests wait for the client to read`, {
          retryAfterMs: DRAIN_CHECK_MS,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Subscribes waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Refuses everything waiting and everything to come. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const error = new LockstepError('UNAVAILABLE', 'connection closed');
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }

  #free(): boolean {
    return this.#active < this.#options.concurrency && !this.#options.backlogged();
  }

  #grant(): () => void {
    this.#active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#pump();
    };
  }

  #pump(): void {
    while (!this.#closed && this.#waiting.length > 0 && this.#free()) this.#waiting.shift()!.resolve(this.#grant());
    if (this.#waiting.length > 0) this.#schedule();
  }

  /** While something waits on a backlog (not on a slot, whose release pumps), look again later. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, DRAIN_CHECK_MS);
  }
}
