import { randomUUID } from 'node:crypto';
import {
  LockstepError,
  MAX_BATCH_MESSAGES,
  TokenBucket,
  protocol,
  type Codec,
  type Frame,
  type TimerHandle,
  type Transport,
  type TransportListener,
} from '@lockstep/core';
import type { Subscription as RxSubscription } from 'rxjs';
import type { AccessAction, Identity } from '../identity.js';
import { ConnectionPeer, type PeerLink } from '../peer.js';
import { command, commandBeforeHello } from './commands.js';
import type { ConnectionHost } from './connectionHost.js';
import { hello, startHelloTimer, stopHelloTimer } from './handshake.js';
import { flushHeld, replyError, reply, salvageId, send, sendError, shed, withinRate, write } from './outbox.js';
import { dropSubscription, reauthorize, subscribe } from './subscribe.js';
import type { SubscribeGate } from './subscribeGate.js';
import { SubscriptionTable, type Subscription, type SubscriptionOwner } from './subscriptionTable.js';

/**
 * A request arriving while the connection holds more than this many times `maxBufferedBytes` unsent
 * closes it: the client asks and asks but does not read the answers.
 */
export const UNREAD_LIMIT_FACTOR = 4;

type RequestId = protocol.RequestId;

/** What a request handler answers: the result, and work to do once the response is on its way. */
export interface Answer {
  result: unknown;
  after?: () => void;
}

/**
 * One client connection: the lockstep/1 session over a transport (and that transport's
 * listener, when it has `listen`). This file holds the session's state, its life (start, close) and
 * its reading side: frame → messages (rate-limited, batches unpacked) → a handler per method. What
 * each handler does lives beside it, one protocol concern a file, as functions of the connection
 * (logux/core's `connect/`, `sync/`, `ping/` beside its base node):
 *
 * - `handshake.ts` — `hello`, its timeout, the token throttle, the capabilities taken;
 * - `outbox.ts` — every message out: encoding, batching, shedding a client that stops reading, rate strikes;
 * - `subscribe.ts` — subscriptions and catch-up (the hub's half of resync), revocation;
 * - `commands.ts`, `commandReply.ts` — a command's path into its stream's pipeline, and its answer.
 *
 * Its fields are that state, read and written by those files (not `#private` for that reason); a
 * connection is internal to the package (not exported), made and held only by its host, the hub.
 */
export class Connection implements TransportListener, SubscriptionOwner, PeerLink {
  readonly sessionId = randomUUID();
  clientId: string | undefined;
  identity: Identity | undefined;
  closed = false;

  // --- handshake (handshake.ts) -----------------------------------------------------------------
  greeted = false;
  /**
   * The hello being authenticated: a second one is refused even before the first is answered, and
   * requests pipelined behind it wait for it instead of being refused.
   */
  greeting: Promise<unknown> | undefined;
  helloTimer: TimerHandle | undefined;
  /** Set by a request whose error answer must be followed by the close of the connection. */
  closeAfterReply: string | undefined;
  /** What the client said it serves in hello (name → version), and its application. */
  announcedServices: ReadonlyMap<string, string> | undefined;
  peerApp: protocol.AppInfo | undefined;
  /** The client said `eventAcks` in hello: a command whose events it was sent live is not answered. */
  eventAcks = false;
  /** The client takes a large snapshot in `snapshot` pages (it said `snapshotPages` in hello). */
  snapshotPages = false;
  /** The largest page (of events or of a snapshot) built for this client: `pageBytes`, or less if it says so. */
  pageBytes = 0;

  // --- outbox (outbox.ts) -----------------------------------------------------------------------
  /** Both sides said `batch` in hello: frames may hold arrays of messages, in both directions. */
  batching = false;
  /** With batching, the frames sent in this tick, written together at its end (`flushHeld`). */
  held: Frame[] | undefined;
  /** Streams dropped because the client stopped reading; resynced once its buffer has drained. */
  overloaded: string[] | undefined;
  readonly bucket: TokenBucket | undefined;
  /** Rate-limited messages in the current window; too many and the connection is closed. */
  strikes = 0;
  strikeWindowStart = 0;

  // --- subscriptions (subscribe.ts) -------------------------------------------------------------
  readonly subscriptions: SubscriptionTable;
  /**
   * Bumped by every `reauthorize`: a subscribe whose authorization was answered under an older count
   * may have been answered with grants since revoked, and asks again before it subscribes.
   */
  grants = 0;
  /**
   * Exists only while subscribes hold or wait for a turn (`gateUsers`): an idle gate holds nothing a
   * new one would not, and a hub keeps thousands of idle connections.
   */
  subscribeGate: SubscribeGate | undefined;
  gateUsers = 0;
  /** Streams this connection may still cause to be loaded (`newStreamsPerMinute`); made on first use. */
  #newStreams: TokenBucket | undefined;

  /** This connection as services see it: made when one first needs it (most connections never do). */
  servicePeer: ConnectionPeer | undefined;
  /** The transport's two subscriptions, for a transport without `listen`. */
  #rx: RxSubscription[] | undefined;

  constructor(
    readonly host: ConnectionHost,
    readonly transport: Transport,
    readonly codec: Codec,
    /** Set when the transport authenticated the peer before the connection existed. */
    readonly preauthenticated: Identity | undefined,
  ) {
    const { rateLimit } = host.settings;
    if (rateLimit) this.bucket = new TokenBucket(host.clock, rateLimit.messagesPerSecond, rateLimit.burst);
    this.subscriptions = new SubscriptionTable(host.settings.maxSubscriptionsPerConnection);
  }

  start(): void {
    startHelloTimer(this);
    if (this.transport.listen) {
      // No subscription objects: this connection is the listener (about 1.3 KB less per connection).
      this.transport.listen(this);
      return;
    }
    const frames = this.transport.frames.subscribe({ next: (frame) => this.#onFrame(frame) });
    const lifecycle = this.transport.state.subscribe((state) => {
      if (state.status === 'closed') this.#onClosed();
    });
    // Assigned whole: an array grown by push reserves room for 17 (a connection lives long).
    this.#rx = [frames, lifecycle];
    // A transport closed before we listened has already been cleaned up without these.
    if (this.closed) for (const rx of this.#rx) rx.unsubscribe();
  }

  /** A frame from the client (as the transport's listener). */
  onFrame(frame: Frame): void {
    this.#onFrame(frame);
  }

  /** The transport closed (as its listener). */
  onClose(): void {
    this.#onClosed();
  }

  close(reason: string): void {
    flushHeld(this);
    this.transport.close(reason);
    this.#onClosed();
  }

  /** Tells the client the hub is going away (so it reconnects), then closes. */
  shutdown(reason: string): void {
    send(this, { jsonrpc: '2.0', method: protocol.Notifications.shutdown, params: { reason } });
    this.close(reason);
  }

  /**
   * Sends a live `events` frame (a subscription's, from its stream's broadcast) — unless the client
   * has stopped reading: past `maxBufferedBytes` of unsent data the connection is shed to a resync
   * (the outbox's `shed`) instead of buffering without bound.
   */
  sendEvents(frame: Frame): void {
    if (this.closed || this.overloaded) return;
    if ((this.transport.bufferedAmount ?? 0) > this.host.settings.maxBufferedBytes) {
      shed(this);
      return;
    }
    write(this, frame);
  }

  /** Ends a subscription the hub can no longer serve in order (see `subscribe.ts`). */
  dropSubscription(subscription: Subscription, reason: string): void {
    dropSubscription(this, subscription, reason);
  }

  /** Grants changed (`Hub.reauthorize`): see `subscribe.ts`. */
  reauthorize(): Promise<void> {
    return reauthorize(this);
  }

  /**
   * Throws RATE_LIMITED when `stream` is not loaded in the hub and this connection has loaded its
   * `newStreamsPerMinute` already: loading costs memory for as long as the stream stays (until it has
   * been idle for `unloadIdleStreamsMs`), so how many a connection may cause is bounded too.
   */
  admitStream(stream: string): void {
    const { host } = this;
    const perMinute = host.settings.newStreamsPerMinute;
    if (perMinute === false || !host.wouldLoad(stream)) return;
    const budget = (this.#newStreams ??= new TokenBucket(host.clock, perMinute / 60, perMinute));
    if (budget.take()) return;
    throw new LockstepError('RATE_LIMITED', `more than ${perMinute} new streams a minute on this connection`, {
      retryAfterMs: budget.retryAfterMs,
      limit: 'newStreamsPerMinute',
    });
  }

  // --- reading: frame → messages → handlers -------------------------------------------------------

  #onFrame(frame: Frame): void {
    const unsent = this.transport.bufferedAmount ?? 0;
    if (unsent > UNREAD_LIMIT_FACTOR * this.host.settings.maxBufferedBytes) {
      this.close(`the client does not read: ${unsent} bytes unsent`);
      return;
    }
    let message: unknown;
    try {
      message = this.codec.decode(frame);
    } catch (error) {
      if (withinRate(this, null)) sendError(this, null, LockstepError.from(error));
      return;
    }
    if (!Array.isArray(message)) {
      if (withinRate(this, message)) this.#onMessage(message);
      return;
    }
    if (!withinRate(this, null)) return;
    if (!this.batching) {
      sendError(
        this,
        null,
        new LockstepError('INVALID_REQUEST', 'JSON-RPC batches need the batch capability: send one message per frame, or say capabilities.batch in hello'),
      );
      return;
    }
    if (message.length === 0 || message.length > MAX_BATCH_MESSAGES) {
      sendError(this, null, new LockstepError('INVALID_REQUEST', `a batch holds 1 to ${MAX_BATCH_MESSAGES} messages, got ${message.length}`));
      return;
    }
    // Each message as if it had come in a frame of its own, in order; the frame's token is the first's.
    for (let i = 0; i < message.length && !this.closed; i++) {
      const element: unknown = message[i];
      if (i === 0 || withinRate(this, element)) this.#onMessage(element);
    }
  }

  #onMessage(message: unknown): void {
    const parsed = protocol.parseMessage(message);
    if (!parsed.success) {
      sendError(this, salvageId(message), new LockstepError('INVALID_REQUEST', 'not a JSON-RPC 2.0 message', { issues: parsed.error.issues }));
      return;
    }
    const { id, method, params } = parsed.data;
    if (method === undefined) {
      this.#onResponse(parsed.data);
      return;
    }
    if (id === undefined) {
      this.#onNotification(method, params);
      return;
    }
    if (id === null) {
      // A request (it has a method) whose id cannot be answered apart from others: JSON-RPC 2.0
      // discourages it, lockstep/1 refuses it — but answers, as a request must be.
      sendError(this, null, new LockstepError('INVALID_REQUEST', 'a request id is a string or an integer, not null (leave id out for a notification)'));
      return;
    }
    // Commands, the hot path, take one path of their own (commands.ts), greeted or not yet.
    if (method === protocol.Methods.command) {
      if (this.greeted) command(this, id, params);
      else commandBeforeHello(this, id, params);
      return;
    }
    this.#dispatch(method, id, params).then(
      (answer) => {
        reply(this, id, answer.result);
        answer.after?.();
      },
      (error: unknown) => {
        replyError(this, id, error, method);
        if (this.closeAfterReply !== undefined) this.close(this.closeAfterReply);
      },
    );
  }

  /**
   * A message without a method: the client's answer to a call of the hub (`result` or `error`), or
   * not a JSON-RPC message at all (`{"jsonrpc":"2.0","id":5}`), answered INVALID_REQUEST — unless its
   * id is one of the hub's calls, which then fails instead: an error answer with that id would read,
   * to the client, as the answer to a request of its own with the same id.
   */
  #onResponse(message: { id?: RequestId | null | undefined; result?: unknown; error?: protocol.ErrorResponse['error'] | undefined }): void {
    const { id } = message;
    if (message.error !== undefined || Object.hasOwn(message, 'result')) {
      // An error with id null is the client refusing a frame of ours it could not read: nothing to settle.
      if (id !== undefined && id !== null) this.servicePeer?.settle(id, message);
      return;
    }
    if (id !== undefined && id !== null && this.servicePeer?.awaits(id)) {
      this.servicePeer.fail(id, new LockstepError('INTERNAL_ERROR', 'the client answered with neither result nor error', { reason: 'invalidResponse' }));
      return;
    }
    sendError(
      this,
      id ?? null,
      new LockstepError('INVALID_REQUEST', 'not a request, notification or response: method is missing, and so are result and error'),
    );
  }

  /** A notification from the client: `$/cancelRequest`, or one of a service someone listens to. Never answered. */
  #onNotification(method: string, params: unknown): void {
    if (method === protocol.CANCEL_REQUEST) {
      const cancel = protocol.cancelRequestParamsSchema.safeParse(params);
      if (cancel.success) this.servicePeer?.cancelHandling(cancel.data.id);
      return;
    }
    const { host } = this;
    if (this.greeted && host.services.listens(method)) host.services.deliver(method, params, this.peer(), (error, context) => host.reportError(error, context));
  }

  /** Every request but `command`: `hello`, `ping`, then — once greeted — subscriptions and services. */
  async #dispatch(method: string, id: RequestId, params: unknown): Promise<Answer> {
    const { host } = this;
    switch (method) {
      case protocol.Methods.hello:
        // `hub.onPeer` listeners hear of the connection once the answer is on its way.
        return { result: await hello(this, parse(protocol.helloParamsSchema, params)), after: () => host.greeted(this) };
      case protocol.Methods.ping:
        parse(protocol.pingParamsSchema, params);
        return { result: { time: host.clock.now() } };
    }
    // Requests pipelined behind a hello wait for it rather than being refused (as `afterHello`, inline).
    if (!this.greeted && this.greeting) await this.greeting.catch(() => {});
    if (!this.greeted) {
      if (Object.hasOwn(protocol.Methods, method) || host.services.has(method)) throw new LockstepError('HANDSHAKE_REQUIRED', `send hello before ${method}`);
      throw new LockstepError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(method)}`);
    }
    switch (method) {
      case protocol.Methods.subscribe:
        return subscribe(this, parse(protocol.subscribeParamsSchema, params));
      case protocol.Methods.unsubscribe: {
        const { stream } = parse(protocol.unsubscribeParamsSchema, params);
        this.subscriptions.unsubscribe(stream);
        return { result: {} };
      }
      default:
        if (!host.services.has(method)) throw new LockstepError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(method)}`);
        return { result: await host.services.handle(method, id, params, this.peer(), host) };
    }
  }

  #onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = undefined;
    stopHelloTimer(this);
    this.subscribeGate?.close();
    this.subscriptions.dropAll();
    if (this.#rx) for (const rx of this.#rx) rx.unsubscribe();
    else this.transport.listen?.(undefined);
    if (this.servicePeer) {
      this.servicePeer.onClosed();
      this.host.peerClosed(this.servicePeer);
    }
    this.host.connectionClosed(this);
  }

  // --- as a Peer's link (services) --------------------------------------------------------------

  /** This connection as services see it (made on first use). */
  peer(): ConnectionPeer {
    return (this.servicePeer ??= new ConnectionPeer(this, this.host.clock, this.host.settings.callTimeoutMs));
  }

  get peerServices(): ReadonlyMap<string, string> {
    return this.announcedServices ?? NO_SERVICES;
  }

  get bufferedAmount(): number {
    return this.transport.bufferedAmount ?? 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  sendMessage(message: protocol.Message): void {
    send(this, message);
  }

  authorize(resource: string, action: AccessAction): Promise<void> {
    return this.host.authorize(this.identity, resource, action);
  }
}

const NO_SERVICES: ReadonlyMap<string, string> = new Map();

function parse<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: unknown[] } } }, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new LockstepError('INVALID_PARAMS', 'invalid params', { issues: result.error.issues });
  return result.data;
}
