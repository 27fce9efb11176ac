import type { Clock, TimerHandle } from '@lockstep/core';
import type { PresenceRegistry } from './eventStore.js';
import type { StreamHost } from './streamHost.js';

/** The presence registry of a store several hubs share, as one hub uses it. */
export interface SharedPresence {
  registry: PresenceRegistry;
  hubId: string;
  /** A hub whose last heartbeat is older than this is gone (its holders no longer count). */
  ttlMs: number;
  onError(error: unknown, context: string): void;
}

/**
 * Tracks which lease holders (client ids) are connected, and whose they are, and expires a holder's
 * leases once it has been gone for the grace period.
 *
 * Expiry itself is a command the hub runs, so it is published as ordinary events and survives
 * restarts like any other.
 *
 * A holder belongs to the owner (an identity id; `undefined` for anonymous connections) that presented
 * it first, until it has been gone for the grace period — when its leases expire, or, having none,
 * when there is nothing left to keep. Meanwhile another owner cannot present it: it would keep the
 * holder's leases alive, or act as their holder. So memory holds an owner per connected client and
 * per client gone for less than the grace period. Owners live in this hub's memory: after a restart,
 * or on another hub of the same store, the first owner to present a holder gets it.
 *
 * With several hubs on one store, a holder absent here may be connected to another hub: the store's
 * presence registry is asked before expiring, and a holder present elsewhere is looked at again
 * after another grace period (until it is gone everywhere, or connects here).
 */
export class LeaseKeeper {
  readonly #present = new Map<string, number>();
  readonly #timers = new Map<string, TimerHandle>();
  /** Holder → owner, while present or within its grace period (`undefined`: anonymous). */
  readonly #owners = new Map<string, string | undefined>();
  #heartbeat: TimerHandle | undefined;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly graceMs: number,
    private readonly expire: (holder: string) => void,
    private readonly shared?: SharedPresence,
  ) {
    if (shared) this.#beat();
  }

  isPresent(holder: string): boolean {
    return this.#present.has(holder);
  }

  /** True when `owner` may act as `holder`: the holder is its, or nobody's right now. */
  mayActAs(holder: string, owner: string | undefined): boolean {
    return !this.#owners.has(holder) || this.#owners.get(holder) === owner;
  }

  /**
   * A connection of `holder` opened, for `owner`. False, and nothing changes, when the holder belongs
   * to another owner.
   */
  present(holder: string, owner?: string): boolean {
    if (!this.mayActAs(holder, owner)) return false;
    this.#owners.set(holder, owner);
    const count = this.#present.get(holder) ?? 0;
    this.#present.set(holder, count + 1);
    const timer = this.#timers.get(holder);
    if (timer !== undefined) {
      this.clock.clearTimeout(timer);
      this.#timers.delete(holder);
    }
    if (count === 0 && this.shared) {
      const { registry, hubId, onError } = this.shared;
      registry.enter(hubId, holder, this.clock.now()).catch((error: unknown) => onError(error, `announcing lease holder ${holder}`));
    }
    return true;
  }

  absent(holder: string): void {
    const count = (this.#present.get(holder) ?? 1) - 1;
    if (count > 0) {
      this.#present.set(holder, count);
      return;
    }
    this.#present.delete(holder);
    if (this.shared) {
      const { registry, hubId, onError } = this.shared;
      registry.leave(hubId, holder).catch((error: unknown) => onError(error, `withdrawing lease holder ${holder}`));
    }
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
      if (this.#present.has(holder) || this.#stopped) return;
      if (!this.shared) {
        this.#gone(holder);
        return;
      }
      const { registry, hubId, ttlMs, onError } = this.shared;
      registry.isPresentElsewhere(hubId, holder, ttlMs, this.clock.now()).then(
        (elsewhere) => {
          if (this.#present.has(holder) || this.#stopped) return;
          if (elsewhere) this.#schedule(holder);
          else this.#gone(holder);
        },
        (error: unknown) => {
          // Unknown is not absent: look again later rather than expire a lease that may be held.
          onError(error, `looking for lease holder ${holder} on other hubs`);
          this.#schedule(holder);
        },
      );
    }, this.graceMs);
    this.#timers.set(holder, timer);
  }

  /** The holder has been gone for the grace period: it belongs to nobody any more, and its leases expire. */
  #gone(holder: string): void {
    this.#owners.delete(holder);
    this.expire(holder);
  }

  /**
   * Heartbeats at a third of the ttl, so two can be lost before this hub's holders stop counting;
   * the next is timed from the answer to the last, so a slow store never has two at once.
   */
  #beat(): void {
    const { registry, hubId, ttlMs, onError } = this.shared!;
    const next = () => {
      if (!this.#stopped) this.#heartbeat = this.clock.setTimeout(() => this.#beat(), ttlMs / 3);
    };
    registry.heartbeat(hubId, this.clock.now()).then(next, (error: unknown) => {
      onError(error, 'presence heartbeat');
      next();
    });
  }

  /** Cancels every timer; with a shared registry, withdraws this hub's holders at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.clock.clearTimeout(timer);
    this.#timers.clear();
    if (this.#heartbeat !== undefined) this.clock.clearTimeout(this.#heartbeat);
    if (this.shared) {
      const { registry, hubId, onError } = this.shared;
      await registry.forget(hubId).catch((error: unknown) => onError(error, 'withdrawing this hub from presence'));
    }
  }
}
