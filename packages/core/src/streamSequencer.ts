import type { Event } from './envelope.js';
import type { SnapshotParams, SubscribeResult } from './protocol.js';

/**
 * What to do with events a stream was sent ({@link StreamSequencer.events}, and a subscribe answer
 * carrying events):
 * - `apply`: `events[sequencer.from]` is the version after the last applied one and the rest follow it
 *   one by one: apply them (from `from`), then call {@link StreamSequencer.applied};
 * - `none`: every event is at or below the last applied version (a duplicate): nothing to do;
 * - `held`: a subscribe answer is awaited; the events were kept and come back through
 *   {@link StreamSequencer.takeEarly} once it is handled;
 * - `ignore`: the stream holds no state to apply them onto (no subscription answered yet);
 * - `gap`: versions are missing: apply nothing, resubscribe from the last applied version.
 */
export type SequenceVerdict = 'apply' | 'none' | 'held' | 'ignore' | 'gap';

/**
 * What to do with a subscribe answer ({@link StreamSequencer.answer}): `stale` (an older
 * subscription's: ignore it), `pages` (its snapshot follows in pages: feed them to
 * {@link StreamSequencer.page}), `snapshot` (replace the state with the answer's snapshot; the
 * sequencer is at its version), or what the answer's events call for (`apply`, `none`, `gap`, as for
 * {@link SequenceVerdict}). After anything but `stale` and `pages`, the events held meanwhile are in
 * {@link StreamSequencer.takeEarly} (none after a `gap`).
 */
export type AnswerVerdict = 'stale' | 'pages' | 'snapshot' | 'apply' | 'none' | 'gap';

/**
 * What a snapshot page did ({@link StreamSequencer.page}): `held` (it came before its answer was
 * handled: kept for it), `ignore` (no paged answer awaited), `more` (wait for the next),
 * `complete` (the text is in {@link StreamSequencer.takeSnapshot}: parse it and give the answer
 * again with the snapshot), `gap` (out of order or another snapshot's: resubscribe).
 */
export type PageVerdict = 'held' | 'ignore' | 'more' | 'complete' | 'gap';

interface Assembly {
  readonly epoch: number;
  readonly result: SubscribeResult;
  readonly parts: string[];
}

/**
 * The order of one stream's versions as a subscriber receives them, and nothing else: the gap
 * check, the subscription epoch that fences off stale answers, the events notified before their
 * subscribe answer is handled, and the pages of a snapshot. It performs nothing (no I/O, no timers,
 * no state of the domain): each input answers what the caller must do, and the caller applies the
 * events, replaces the state or resubscribes. The client's `SyncedStream` and the reference server's
 * `StreamFeed` share it.
 *
 * Whatever the interleaving of answers, notifications, duplicates, gaps and reconnects, the versions a
 * caller applies as told are contiguous and in order (`streamSequencer.test.ts` checks it with seeded
 * random runs). The per-event path ({@link events}, {@link applied}) allocates nothing.
 */
export class StreamSequencer {
  #version = 0;
  #hasState = false;
  #head = 0;
  #epoch = 0;
  #awaiting = false;
  #from = 0;
  /**
   * Events notified while a subscribe answer is awaited. On a socket, a notification the hub sent
   * after the answer can arrive in the same read while the answer is handled a microtask later: it
   * would otherwise be taken for a gap.
   */
  #early: Event[] = [];
  /** A snapshot arriving in pages: the answer is complete with its last page. */
  #assembly: Assembly | undefined;
  /** Pages that arrived before their answer was handled (as `#early` for events). */
  #earlyPages: SnapshotParams[] = [];
  /** A paged snapshot whose last page came: its text, for {@link takeSnapshot}. */
  #complete: { text: string; epoch: number; result: SubscribeResult } | undefined;

  /** The last version applied (0: none). */
  get version(): number {
    return this.#version;
  }

  /** The stream holds a state to apply events onto: an answer was applied, or {@link restore} said so. */
  get hasState(): boolean {
    return this.#hasState;
  }

  /** The hub's head when the current subscription was answered; below it the stream is catching up. */
  get head(): number {
    return this.#head;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** A subscribe answer is awaited (its pages included). */
  get awaiting(): boolean {
    return this.#awaiting;
  }

  /** A paged snapshot is being assembled. */
  get assembling(): boolean {
    return this.#assembly !== undefined;
  }

  /** Answered and at the head the answer named: nothing awaited, nothing known to be missing. */
  get caughtUp(): boolean {
    return !this.#awaiting && this.#version >= this.#head;
  }

  /** With `apply`: the index of the first event to apply. */
  get from(): number {
    return this.#from;
  }

  /** The `since` to subscribe with: the last applied version, or undefined without a state. */
  get since(): number | undefined {
    return this.#hasState ? this.#version : undefined;
  }

  /** A state at `version` is held already (restored from storage, or the reader's starting point). */
  restore(version: number): void {
    this.#version = version;
    this.#hasState = true;
  }

  /** The hub serves another log: versions start over, and there is no state until answered. */
  reset(): void {
    this.#version = 0;
    this.#head = 0;
    this.#hasState = false;
  }

  /** Starts a subscription: a new epoch, whose answer is awaited; what was held for an older one is dropped. */
  begin(): number {
    this.#epoch++;
    this.#awaiting = true;
    this.#assembly = undefined;
    this.#earlyPages = [];
    this.#early = [];
    this.#complete = undefined;
    return this.#epoch;
  }

  /**
   * Nothing is awaited any more (the connection was lost, the subscription ended or failed); what
   * was held is dropped. The epoch stays: use {@link fence} to also refuse the pending answer.
   */
  stop(): void {
    this.#awaiting = false;
    this.#assembly = undefined;
    this.#earlyPages = [];
    this.#early = [];
    this.#complete = undefined;
  }

  /** {@link stop}, and answers to every subscription begun so far are stale. */
  fence(): void {
    this.#epoch++;
    this.stop();
  }

  /** The subscribe request of `epoch` failed: nothing more is awaited for it. False when it is stale. */
  failed(epoch: number): boolean {
    if (epoch !== this.#epoch) return false;
    this.#awaiting = false;
    this.#early = [];
    return true;
  }

  /** An `events` notification. Allocates nothing unless the events are held. */
  events(events: readonly Event[]): SequenceVerdict {
    if (this.#awaiting) {
      for (let i = 0; i < events.length; i++) this.#early.push(events[i]!);
      return 'held';
    }
    if (!this.#hasState) return 'ignore';
    return this.#check(events);
  }

  /** The events told `apply` were applied, up to `version` (all of them, or a first part). */
  applied(version: number): void {
    this.#version = version;
  }

  /** The answer to the subscribe request of `epoch`. */
  answer(epoch: number, result: SubscribeResult): AnswerVerdict {
    if (epoch !== this.#epoch) return 'stale';
    if (result.snapshotPages !== undefined && result.snapshot === undefined) {
      // Still awaiting the answer's pages: events keep waiting in `#early` until they are all here.
      this.#assembly = { epoch, result, parts: [] };
      return 'pages';
    }
    this.#awaiting = false;
    this.#assembly = undefined;
    this.#head = result.head;
    if (result.snapshot !== undefined || !result.events) {
      this.#version = result.version;
      this.#hasState = true;
      return 'snapshot';
    }
    const verdict = this.#check(result.events);
    if (verdict === 'gap') this.#early = [];
    // Events answering a subscription without `since` start from the initial state (docs/protocol.md).
    else this.#hasState = true;
    return verdict;
  }

  /** The events notified while the answer was awaited, to give to {@link events} now. */
  takeEarly(): readonly Event[] {
    const early = this.#early;
    if (early.length > 0) this.#early = [];
    return early;
  }

  /** The pages that came before their answer was handled, to give to {@link page} after a `pages` answer. */
  takeEarlyPages(): readonly SnapshotParams[] {
    const pages = this.#earlyPages;
    if (pages.length > 0) this.#earlyPages = [];
    return pages;
  }

  /**
   * A page of a snapshot sent in pages. Pages come in order, right after the answer; one that does
   * not follow (another subscription's, a page missing) drops the assembly: `gap`.
   */
  page(page: SnapshotParams): PageVerdict {
    const assembly = this.#assembly;
    if (!assembly) {
      if (!this.#awaiting) return 'ignore';
      this.#earlyPages.push(page);
      return 'held';
    }
    const { result, parts } = assembly;
    if (page.version !== result.version || page.pages !== result.snapshotPages || page.page !== parts.length) {
      this.#assembly = undefined;
      return 'gap';
    }
    parts.push(page.data);
    if (parts.length < page.pages) return 'more';
    this.#assembly = undefined;
    const { snapshotPages: _, ...whole } = result;
    this.#complete = { text: parts.join(''), epoch: assembly.epoch, result: whole };
    return 'complete';
  }

  /**
   * After `complete`: the snapshot's JSON text, the answer it completes (without `snapshotPages`) and
   * that answer's epoch. The caller parses the text and gives {@link answer} the answer with it as
   * `snapshot` (or, when it is not JSON, reports the subscription {@link failed}).
   */
  takeSnapshot(): { text: string; epoch: number; result: SubscribeResult } | undefined {
    const complete = this.#complete;
    this.#complete = undefined;
    return complete;
  }

  #check(events: readonly Event[]): 'apply' | 'none' | 'gap' {
    let start = 0;
    const version = this.#version;
    while (start < events.length && events[start]!.version <= version) start++;
    if (start === events.length) return 'none';
    if (events[start]!.version !== version + 1) return 'gap';
    for (let i = start + 1; i < events.length; i++) {
      if (events[i]!.version !== events[i - 1]!.version + 1) return 'gap';
    }
    this.#from = start;
    return 'apply';
  }
}
