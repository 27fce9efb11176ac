import { LockstepError, StreamSequencer, protocol, type Event } from '@lockstep/core';
import type { Hub, Identity } from '@lockstep/server';
import { HubPeer, type HubPeerOptions } from './hubPeer.js';

/** Where a feed delivers a stream: a snapshot (when the hub no longer has the events) or events in version order. */
export interface FeedSink {
  snapshot(version: number, state: unknown): void;
  /** Each `version` one more than the last delivered. */
  event(event: Event): void;
  /**
   * Optional flow control: when `full()` answers true after a delivery, the feed stops following the
   * stream and calls `whenRoom(resume)`; `resume` catches up from the last event delivered.
   */
  full?(): boolean;
  whenRoom?(resume: () => void): void;
  /**
   * The feed stopped for good: the hub shut down, it could not resubscribe, or the reader may no longer
   * read the stream (the grant was revoked: `reason` starts with `FORBIDDEN`).
   */
  end(reason: string): void;
}

/**
 * Follows one stream from a version, over an in-process lockstep/1 connection: the subscribe answer,
 * then every `events` notification, put in order by the client's own `StreamSequencer` (a gap or a `resync`
 * resubscribes from the last delivered version). A sink that is full (a Server-Sent Events client
 * that is not reading) pauses the feed: the subscription is dropped, so the reader costs the hub
 * nothing meanwhile, and once there is room the feed catches up from the last event delivered —
 * with events, or a snapshot if the hub no longer has them. Nothing is missed, nothing piles up.
 *
 * The feed reads as the identity it was started with (the request's), so the hub's `authorize` hook
 * decides what it may read; when the application revokes the grant and calls `hub.reauthorize`, the
 * hub ends the subscription (`unsubscribed`) and the feed ends its sink.
 */
export class StreamFeed {
  readonly #stream: string;
  readonly #sink: FeedSink;
  #peer!: HubPeer;
  /**
   * The last version delivered to the sink (its `since` once answered); a new epoch on every
   * (re)subscribe and pause, so that answers of an older one are ignored; the events notified while
   * an answer is awaited (they may continue a paged catch-up); the gap check.
   */
  readonly #sequencer = new StreamSequencer();
  #paused = false;
  /** The rest of the batch that was being delivered when the sink filled up (at most one catch-up page). */
  #backlog: readonly Event[] = [];
  #ended = false;

  private constructor(stream: string, sink: FeedSink) {
    this.#stream = stream;
    this.#sink = sink;
  }

  /**
   * Subscribes to `stream` from `since` (omitted: from the start, or a snapshot), delivers the answer
   * to the sink and resolves; rejects with the hub's error (`UNKNOWN_STREAM`, `INVALID_PARAMS`,
   * `FORBIDDEN`, `UNAUTHORIZED`).
   *
   * `identity`: whom the feed reads for — the request's identity. Given but undefined, an anonymous
   * request; omitted, the server itself (`REFERENCE_SERVER_IDENTITY`), for background work only.
   */
  static async start(hub: Hub, stream: string, since: number | undefined, sink: FeedSink, ...as: [identity?: Identity | undefined]): Promise<StreamFeed> {
    const feed = new StreamFeed(stream, sink);
    const options: HubPeerOptions = {
      onNotification: (method, params) => feed.#onNotification(method, params),
      onClose: (reason) => feed.#end(`the hub closed the connection: ${reason}`),
    };
    if (as.length > 0) options.identity = as[0];
    feed.#peer = await HubPeer.open(hub, options);
    try {
      await feed.#subscribe(since);
    } catch (error) {
      feed.#ended = true;
      feed.#peer.close();
      throw error;
    }
    return feed;
  }

  /** The last version delivered; undefined before the first answer. */
  get cursor(): number | undefined {
    return this.#sequencer.since;
  }

  close(): void {
    this.#ended = true;
    this.#peer.close();
  }

  /** Subscribes from `since` (the first time, the caller's; after that, the last version delivered). */
  async #subscribe(since: number | undefined): Promise<void> {
    const sequencer = this.#sequencer;
    if (since !== undefined && !sequencer.hasState) sequencer.restore(since);
    const epoch = sequencer.begin();
    const answer = await this.#peer.request('subscribe', since === undefined ? { stream: this.#stream } : { stream: this.#stream, since });
    if (epoch !== sequencer.epoch || this.#ended) return;
    const parsed = protocol.subscribeResultSchema.safeParse(answer);
    if (!parsed.success) throw new LockstepError('INVALID_REQUEST', `malformed subscribe answer from the hub: ${parsed.error.message}`);
    const result = parsed.data as protocol.SubscribeResult;
    // This connection's hello asks for no `snapshotPages`: the hub sends a snapshot whole.
    const verdict = sequencer.answer(epoch, result);
    if (verdict === 'snapshot') {
      this.#sink.snapshot(result.version, result.snapshot);
      if (this.#pauseIfFull()) return;
    } else if (verdict === 'pages') {
      throw new LockstepError('INVALID_REQUEST', `the hub sent ${this.#stream}'s snapshot in pages, which this connection did not ask for`);
    } else if (verdict === 'gap') {
      return this.#resubscribe();
    } else if (verdict === 'apply') {
      this.#deliver(result.events!, sequencer.from);
      if (epoch !== sequencer.epoch) return; // paused part-way: resumes from the cursor
    }
    // The answer is handled a microtask after it arrived; notifications right behind it were held.
    const early = sequencer.takeEarly();
    if (early.length > 0) this.#onEvents(early);
  }

  #resubscribe(): void {
    this.#subscribe(this.#sequencer.since).catch((error: unknown) => this.#end(`could not follow ${this.#stream}: ${(error as Error).message}`));
  }

  #onNotification(method: string, params: unknown): void {
    const { stream } = (params ?? {}) as { stream?: unknown };
    if (stream !== this.#stream || this.#ended) return;
    if (method === protocol.Notifications.unsubscribed) {
      // For good: the reader may no longer read the stream. Never resubscribed.
      const parsed = protocol.unsubscribedParamsSchema.safeParse(params);
      const error = parsed.success ? LockstepError.fromWire(parsed.data.error) : new LockstepError('FORBIDDEN', 'the hub ended the subscription');
      this.#end(`${error.code}: ${error.message}`);
      return;
    }
    if (this.#paused) return;
    if (method === protocol.Notifications.resync) {
      this.#resubscribe();
    } else if (method === protocol.Notifications.events) {
      const parsed = protocol.parseEventsParams(params);
      if (parsed.success) this.#onEvents(parsed.data.events);
      else this.#resubscribe();
    }
  }

  #onEvents(events: readonly Event[]): void {
    const verdict = this.#sequencer.events(events);
    if (verdict === 'apply') this.#deliver(events, this.#sequencer.from);
    else if (verdict === 'gap') this.#resubscribe();
  }

  /**
   * Delivers `events` from `from` (which the sequencer found to follow the cursor one by one), one at
   * a time until the sink is full.
   */
  #deliver(events: readonly Event[], from: number): void {
    for (let i = from; i < events.length; i++) {
      const event = events[i]!;
      this.#sink.event(event);
      this.#sequencer.applied(event.version);
      if (this.#pauseIfFull(events, i + 1)) return;
    }
  }

  /**
   * When the sink is full: drop the subscription, keep the undelivered rest of the batch, and wait
   * for room — then deliver that rest and catch up from the cursor. One catch-up page (already
   * decoded) is delivered across as many drains as it takes, instead of being fetched again per drain.
   */
  #pauseIfFull(events: readonly Event[] = [], rest = 0): boolean {
    if (!this.#sink.full?.()) return false;
    this.#paused = true;
    this.#backlog = events.slice(rest);
    this.#sequencer.fence();
    this.#peer.request('unsubscribe', { stream: this.#stream }).catch(() => {});
    this.#sink.whenRoom?.(() => {
      if (this.#ended || !this.#paused) return;
      this.#paused = false;
      const backlog = this.#backlog;
      this.#backlog = [];
      // The rest of a batch that followed the cursor: it still does.
      this.#deliver(backlog, 0);
      if (this.#paused) return;
      this.#resubscribe();
    });
    return true;
  }

  #end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#peer.close();
    this.#sink.end(reason);
  }
}
