import { LockstepError, type Codec, type Frame } from '@lockstep/core';
import type { StreamHost, StreamSubscriber } from '../streamHost.js';

/** What a subscription needs of the connection it belongs to. */
export interface SubscriptionOwner {
  readonly codec: Codec;
  sendEvents(frame: Frame): void;
  dropSubscription(subscription: Subscription, reason: string): void;
}

/** One connection's subscription to one stream. */
export class Subscription implements StreamSubscriber {
  cursor = 0;
  live = false;
  cancelled = false;
  /** Its subscribe answer is on the wire (it may still be catching up). */
  answered = false;
  /**
   * Set when it was refused before its answer went out (grants revoked meanwhile): the subscribe is
   * answered with this error, or — if the answer was already on its way — followed by `unsubscribed`.
   */
  refusal: LockstepError | undefined;

  constructor(
    private readonly owner: SubscriptionOwner,
    readonly host: StreamHost,
  ) {}

  deliver(frameFor: (codec: Codec) => Frame): void {
    this.owner.sendEvents(frameFor(this.owner.codec));
  }

  reset(reason: string): void {
    this.owner.dropSubscription(this, reason);
  }

  cancel(): void {
    this.cancelled = true;
    this.live = false;
    this.host.subscribers.delete(this);
  }
}

/**
 * Per stream a connection has asked about: its subscription; a generation bumped by every subscribe
 * and unsubscribe of the stream, synchronously on arrival (a subscribe overtaken while it waits by a
 * later request for the same stream gives up instead of resurrecting a subscription the client has
 * dropped); and how many subscribes of it are under way. One map, not three: a hub keeps thousands of
 * idle connections.
 */
interface Slot {
  generation: number;
  subscription: Subscription | undefined;
  pending: number;
}

/** A place held for a subscription being prepared, so the bound holds while several are. */
export interface Reservation {
  held: boolean;
}

/**
 * A connection's subscriptions, one per stream, and their bound (`maxSubscriptionsPerConnection`).
 * A slot lives while the stream is subscribed or a subscribe of it is under way, so a client that
 * asks about many names (refused, unknown, unsubscribed) leaves nothing behind.
 */
export class SubscriptionTable {
  readonly #slots = new Map<string, Slot>();
  /** Slots with a subscription. */
  #count = 0;
  /** Places held by subscribes being prepared for streams without a subscription. */
  #reserved = 0;

  constructor(private readonly max: number) {}

  /** Subscriptions right now (live, catching up, or prepared and not yet answered). */
  get count(): number {
    return this.#count;
  }

  get(stream: string): Subscription | undefined {
    return this.#slots.get(stream)?.subscription;
  }

  /** A subscribe of `stream` arrived: answers its generation. Pair with {@link SubscriptionTable.finish}. */
  begin(stream: string): number {
    const slot = this.#slot(stream);
    slot.pending++;
    return ++slot.generation;
  }

  /** The subscribe begun with `begin` was answered (or refused). */
  finish(stream: string): void {
    const slot = this.#slots.get(stream);
    if (!slot) return;
    slot.pending--;
    this.#forgetIfIdle(stream, slot);
  }

  /** No later subscribe or unsubscribe of `stream` arrived since the one of this generation. */
  isCurrent(stream: string, generation: number): boolean {
    return this.#slots.get(stream)?.generation === generation;
  }

  /** An unsubscribe arrived: supersedes the subscribes under way, ends the subscription. */
  unsubscribe(stream: string): void {
    const slot = this.#slot(stream);
    slot.generation++;
    if (slot.subscription) this.remove(slot.subscription);
    else this.#forgetIfIdle(stream, slot);
  }

  /**
   * Holds a place for a new subscription of `stream`; none is needed (undefined) when it has one,
   * which the new one replaces. Throws LIMIT_EXCEEDED when the connection has all it may have.
   */
  reserve(stream: string): Reservation | undefined {
    if (this.#slots.get(stream)?.subscription) return undefined;
    this.#checkRoom();
    this.#reserved++;
    return { held: true };
  }

  /** Gives back a place not used (idempotent). */
  release(reservation: Reservation | undefined): void {
    if (!reservation?.held) return;
    reservation.held = false;
    this.#reserved--;
  }

  /**
   * Makes `subscription` the stream's, cancelling the one it replaces. Uses the reservation when it
   * takes a new place; throws LIMIT_EXCEEDED when it needs one and there is none.
   */
  install(subscription: Subscription, reservation: Reservation | undefined): void {
    const slot = this.#slot(subscription.host.name);
    if (slot.subscription) {
      slot.subscription.cancel();
      this.release(reservation);
    } else {
      if (reservation?.held) this.release(reservation);
      else this.#checkRoom();
      this.#count++;
    }
    slot.subscription = subscription;
  }

  /** Cancels `subscription` and removes it, if it is still its stream's; answers whether it was. */
  remove(subscription: Subscription): boolean {
    subscription.cancel();
    const name = subscription.host.name;
    const slot = this.#slots.get(name);
    if (slot?.subscription !== subscription) return false;
    slot.subscription = undefined;
    this.#count--;
    this.#forgetIfIdle(name, slot);
    return true;
  }

  /** Every subscription, in the order their streams were first asked about. */
  subscriptions(): Subscription[] {
    const all: Subscription[] = [];
    for (const slot of this.#slots.values()) if (slot.subscription) all.push(slot.subscription);
    return all;
  }

  /** Cancels and removes every subscription, superseding subscribes under way; answers their streams. */
  dropAll(): string[] {
    const dropped: string[] = [];
    for (const [stream, slot] of this.#slots) {
      if (!slot.subscription) continue;
      dropped.push(stream);
      slot.generation++;
      this.remove(slot.subscription);
    }
    return dropped;
  }

  #slot(stream: string): Slot {
    let slot = this.#slots.get(stream);
    if (!slot) {
      slot = { generation: 0, subscription: undefined, pending: 0 };
      this.#slots.set(stream, slot);
    }
    return slot;
  }

  #forgetIfIdle(stream: string, slot: Slot): void {
    if (slot.pending === 0 && slot.subscription === undefined) this.#slots.delete(stream);
  }

  #checkRoom(): void {
    if (this.#count + this.#reserved < this.max) return;
    throw new LockstepError('LIMIT_EXCEEDED', `at most ${this.max} subscriptions per connection`, { limit: 'maxSubscriptionsPerConnection', max: this.max });
  }
}
