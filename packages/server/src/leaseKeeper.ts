import type { Clock, TimerHandle } from '@lockstep/core';
import type { StreamHost } from './streamHost.js';

/**
 * Tracks which lease holders (client ids) are connected, and expires a holder's leases once it
 * has been gone for the grace period. Expiry itself is a command the hub runs, so it is published
 * as ordinary events and survives restarts like any other.
 */
export class LeaseKeeper {
  readonly #present = new Map<string, number>();
  readonly #timers = new Map<string, TimerHandle>();
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly graceMs: number,
    private readonly expire: (holder: string) => void,
  ) {}

  isPresent(holder: string): boolean {
    return this.#present.has(holder);
  }

  present(holder: string): void {
    this.#present.set(holder, (this.#present.get(holder) ?? 0) + 1);
    const timer = this.#timers.get(holder);
    if (timer !== undefined) {
      this.clock.clearTimeout(timer);
      this.#timers.delete(holder);
    }
  }

  absent(holder: string): void {
    const count = (this.#present.get(holder) ?? 1) - 1;
    if (count > 0) {
      this.#present.set(holder, count);
      return;
    }
    this.#present.delete(holder);
    this.#schedule(holder);
  }

  /** Starts the grace period of every holder in the stream's state that is not connected. */
  watch(host: StreamHost): void {
    const leases = host.domain.leases;
    if (!leases) return;
    for (const { holder } of leases.holders(host.state)) {
      if (!this.#present.has(holder)) this.#schedule(holder);
    }
  }

  #schedule(holder: string): void {
    if (this.#stopped || this.#timers.has(holder)) return;
    const timer = this.clock.setTimeout(() => {
      this.#timers.delete(holder);
      if (!this.#present.has(holder) && !this.#stopped) this.expire(holder);
    }, this.graceMs);
    this.#timers.set(holder, timer);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.clock.clearTimeout(timer);
    this.#timers.clear();
  }
}
