import { LockstepError, protocol, type Event } from '@lockstep/core';
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
 * then every `events` notification, checked for gaps exactly as a client does (a gap or a `resync`
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
  /** The last version delivered to the sink; undefined before the first answer. */
  #cursor: number | undefined;
  /** Bumped on every (re)subscribe and pause: answers and notifications of an older one are ignored. */
  #epoch = 0;
  #following = false;
  /** Events notified while a subscribe answer is awaited: they may continue it (a paged catch-up). */
  #held: Event[][] = [];
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

  /** The last version delivered. */
  get cursor(): number | undefined {
    return this.#cursor;
  }

  close(): void {
    this.#ended = true;
    this.#peer.close();
  }

  async #subscribe(since: number | undefined): Promise<void> {
    const epoch = ++this.#epoch;
    this.#following = false;
    this.#held = [];
    const result = (await this.#peer.request('subscribe', since === undefined ? { stream: this.#stream } : { stream: this.#stream, since })) as protocol.SubscribeResult;
    if (epoch !== this.#epoch || this.#ended) return;
    if (result.snapshot !== undefined || result.events === undefined) {
      this.#cursor = result.version;
      this.#sink.snapshot(result.version, result.snapshot);
      if (this.#pauseIfFull()) return;
    } else {
      this.#cursor = since ?? 0;
      if (!this.#deliver(result.events)) return this.#resubscribe();
      if (epoch !== this.#epoch) return; // paused part-way: resumes from the cursor
    }
    this.#following = true;
    // The answer is handled a microtask after it arrived; notifications right behind it are held.
    for (const events of this.#held.splice(0)) {
      if (!this.#deliver(events)) return this.#resubscribe();
      if (epoch !== this.#epoch) return;
    }
  }

  #resubscribe(): void {
    this.#subscribe(this.#cursor).catch((error: unknown) => this.#end(`could not follow ${this.#stream}: ${(error as Error).message}`));
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
      const { events } = params as protocol.EventsParams;
      if (!this.#following) this.#held.push(events);
      else if (!this.#deliver(events)) this.#resubscribe();
    }
  }

  /** Delivers the events after the cursor, one at a time until the sink is full; false on a gap. */
  #deliver(events: readonly Event[]): boolean {
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const cursor = this.#cursor ?? 0;
      if (event.version <= cursor) continue;
      if (event.version !== cursor + 1) return false;
      this.#sink.event(event);
      this.#cursor = event.version;
      if (this.#pauseIfFull(events.slice(i + 1))) return true;
    }
    return true;
  }

  /**
   * When the sink is full: drop the subscription, keep the undelivered rest of the batch, and wait
   * for room — then deliver that rest and catch up from the cursor. One catch-up page (already
   * decoded) is delivered across as many drains as it takes, instead of being fetched again per drain.
   */
  #pauseIfFull(rest: readonly Event[] = []): boolean {
    if (!this.#sink.full?.()) return false;
    this.#paused = true;
    this.#following = false;
    this.#held = [];
    this.#backlog = rest;
    this.#epoch++;
    this.#peer.request('unsubscribe', { stream: this.#stream }).catch(() => {});
    this.#sink.whenRoom?.(() => {
      if (this.#ended || !this.#paused) return;
      this.#paused = false;
      const backlog = this.#backlog;
      this.#backlog = [];
      if (this.#deliver(backlog) && this.#paused) return;
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
