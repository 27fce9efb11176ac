import type { Clock, TimerHandle } from '@lockstep/core';
import type { PresenceRegistry } from './eventStore.js';
import type { StreamHost } from './streamHost.js';

/** The presence registry of a store several hubs share, as one hub uses it. */
export interface SharedPresence {
  registry: PresenceRegistry;
  hubId: string;
  /** A hub whose last heartbeat is older than this is gone (its holders no longer count). */
  ttlMs: number;
  onError: (error: unknown, context: string) => void;
}

/** Since when a holder absent here has been away: a sighting (it left this hub), or only when this hub learned of it. */
interface Absence {
  at: number;
  seen: boolean;
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
 * The grace period runs from when the holder was last seen. Alone, a hub knows when the holder left
 * it; a hub that never saw the holder (its leases were loaded, or taken through another hub) counts
 * from when it learned of them. With several hubs on one store, the store's presence registry also
 * says when any hub last saw the holder (0 while one has it connected), and the latest sighting wins:
 * every hub counts from the same moment, so none expires a holder that was seen anywhere within the
 * grace period — one that only moved or reconnected — and one gone for good expires one grace period
 * after it left, whichever hub was watching.
 */
export class LeaseKeeper {
  readonly #present = new Map<string, number>();
  readonly #timers = new Map<string, TimerHandle>();
  /** Holders absent here, while their grace period may be running. */
  readonly #absent = new Map<string, Absence>();
  /** Holder → owner, while present or within its grace period (`undefined`: anonymous). */
  readonly #owners = new Map<string, string | undefined>();
  /** Holder → its last presence write: the next goes after it, so a quick reconnect is not undone by a slow leave. */
  readonly #writes = new Map<string, Promise<void>>();
  /** Present holders whose announcement failed: announced again after the next heartbeat that works. */
  readonly #unannounced = new Set<string>();
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
    this.#absent.delete(holder);
    const timer = this.#timers.get(holder);
    if (timer !== undefined) {
      this.clock.clearTimeout(timer);
      this.#timers.delete(holder);
    }
    if (count === 0) this.#announce(holder);
    return true;
  }

  absent(holder: string): void {
    const count = (this.#present.get(holder) ?? 1) - 1;
    if (count > 0) {
      this.#present.set(holder, count);
      return;
    }
    this.#present.delete(holder);
    const now = this.clock.now();
    this.#absent.set(holder, { at: now, seen: true });
    this.#unannounced.delete(holder);
    this.#write(holder, `withdrawing lease holder ${holder}`, (registry, hubId) => registry.leave(hubId, holder, now));
    this.#schedule(holder, this.graceMs);
  }

  /** Starts the grace period of every holder in the stream's state that is not connected. */
  watch(host: StreamHost): void {
    const leases = host.domain.leases;
    if (!leases) return;
    for (const { holder } of leases.holders(host.state)) {
      if (this.#present.has(holder)) continue;
      if (!this.#absent.has(holder)) this.#absent.set(holder, { at: this.clock.now(), seen: false });
      this.#schedule(holder, this.graceMs);
    }
  }

  #schedule(holder: string, delayMs: number): void {
    if (this.#stopped || this.#timers.has(holder)) return;
    const timer = this.clock.setTimeout(() => {
      this.#timers.delete(holder);
      this.#check(holder);
    }, delayMs);
    this.#timers.set(holder, timer);
  }

  /** The holder's grace period may be over: expires it, or looks again when it would be. */
  #check(holder: string): void {
    if (this.#present.has(holder) || this.#stopped) return;
    if (!this.shared) {
      this.#settle(holder, undefined);
      return;
    }
    const { registry, hubId, ttlMs, onError } = this.shared;
    const now = this.clock.now();
    const asked = registry.sinceLastSeen
      ? registry.sinceLastSeen(hubId, holder, ttlMs, now)
      : registry.isPresentElsewhere(hubId, holder, ttlMs, now).then((elsewhere) => (elsewhere ? 0 : undefined));
    asked.then(
      (sinceSeen) => this.#settle(holder, sinceSeen),
      (error: unknown) => {
        // Unknown is not absent: look again later rather than expire a lease that may be held.
        onError(error, `looking for lease holder ${holder} on other hubs`);
        this.#schedule(holder, this.graceMs);
      },
    );
  }

  /**
   * Expires the holder if its latest sighting — here, or `sinceSeen` ms ago on any hub by the
   * registry — is a grace period old; otherwise looks again when it will be. Without any sighting,
   * the grace period runs from when this hub learned of the holder.
   */
  #settle(holder: string, sinceSeen: number | undefined): void {
    if (this.#present.has(holder) || this.#stopped) return;
    const absence = this.#absent.get(holder);
    const here = absence === undefined ? this.graceMs : this.clock.now() - absence.at;
    let away: number;
    if (sinceSeen === undefined) away = here;
    else if (absence?.seen) away = Math.min(here, sinceSeen);
    else away = sinceSeen;
    if (away >= this.graceMs) this.#gone(holder);
    else this.#schedule(holder, this.graceMs - away);
  }

  /** The holder has been gone for the grace period: it belongs to nobody any more, and its leases expire. */
  #gone(holder: string): void {
    this.#owners.delete(holder);
    this.#absent.delete(holder);
    this.expire(holder);
  }

  /** Tells the registry this hub has `holder`; a failure is retried after the next heartbeat. */
  #announce(holder: string): void {
    const now = this.clock.now();
    this.#write(holder, `announcing lease holder ${holder}`, async (registry, hubId) => {
      try {
        await registry.enter(hubId, holder, now);
        this.#unannounced.delete(holder);
      } catch (error) {
        // Other hubs would take the holder for gone: say it again once the store answers.
        if (this.#present.has(holder)) this.#unannounced.add(holder);
        throw error;
      }
    });
  }

  /**
   * Runs one presence write of `holder` on the shared registry, after the previous one of the same
   * holder (a pool may run two queries in either order). Nothing once stopped: `forget` covers them.
   */
  #write(holder: string, context: string, write: (registry: PresenceRegistry, hubId: string) => Promise<void>): void {
    if (!this.shared || this.#stopped) return;
    const { registry, hubId, onError } = this.shared;
    const next = (this.#writes.get(holder) ?? Promise.resolve())
      .then(() => write(registry, hubId))
      .catch((error: unknown) => onError(error, context))
      .then(() => {
        if (this.#writes.get(holder) === next) this.#writes.delete(holder);
      });
    this.#writes.set(holder, next);
  }

  /**
   * Heartbeats at a third of the ttl, so two can be lost before this hub's holders stop counting;
   * the next is timed from the answer to the last, so a slow store never has two at once. After one
   * that worked, holders whose announcement failed are announced again.
   */
  #beat(): void {
    const { registry, hubId, ttlMs, onError } = this.shared!;
    const next = () => {
      if (!this.#stopped) this.#heartbeat = this.clock.setTimeout(() => this.#beat(), ttlMs / 3);
    };
    registry.heartbeat(hubId, this.clock.now()).then(
      () => {
        for (const holder of [...this.#unannounced]) {
          this.#unannounced.delete(holder);
          if (this.#present.has(holder)) this.#announce(holder);
        }
        next();
      },
      (error: unknown) => {
        onError(error, 'presence heartbeat');
        next();
      },
    );
  }

  /**
   * Cancels every timer; with a shared registry, withdraws this hub's holders at once (after the
   * writes under way), recording them as last seen now.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.clock.clearTimeout(timer);
    this.#timers.clear();
    if (this.#heartbeat !== undefined) this.clock.clearTimeout(this.#heartbeat);
    if (this.shared) {
      const { registry, hubId, onError } = this.shared;
      await Promise.all(this.#writes.values());
      await registry.forget(hubId, this.clock.now()).catch((error: unknown) => onError(error, 'withdrawing this hub from presence'));
    }
  }
}
