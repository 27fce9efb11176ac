import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  LockstepError,
  frameSize,
  MAX_BATCH_MESSAGES,
  PROTOCOL_VERSION,
  incompatibleApp,
  protocol,
  writeBatched,
  type Codec,
  type Event,
  type Frame,
  type TimerHandle,
  type Transport,
  type TransportListener,
} from '@lockstep/core';
import type { Subscription as RxSubscription } from 'rxjs';
import { CommandReply, type ReplyChannel } from './commandReply.js';
import type { AccessAction, Hub, Identity } from './hub.js';
import { ConnectionPeer, type PeerLink } from './peer.js';
import { SubscribeGate } from './subscribeGate.js';
import { Subscription, SubscriptionTable, type SubscriptionOwner } from './subscriptionTable.js';
import { TokenBucket } from './tokenBucket.js';

/** How often a shed connection's buffer is checked for having drained. */
const DRAIN_CHECK_MS = 50;
/** The smallest page a client can ask for (with `maxFrameBytes` in hello): its half, at least this. */
const MIN_PAGE_BYTES = 4 * 1024;
/** Window over which rate-limited messages are counted before a flooding client is closed. */
const STRIKE_WINDOW_MS = 10_000;
/** Subscribe answers (snapshots, pages of events) prepared at once per connection. */
export const SUBSCRIBE_CONCURRENCY = 8;
/** Subscribes that may wait for a turn; one more and the client is taken for one that does not read. */
export const MAX_WAITING_SUBSCRIBES = 4_096;
/**
 * A request arriving while the connection holds more than this many times `maxBufferedBytes` unsent
 * closes it: the client asks and asks but does not read the answers.
 */
export const UNREAD_LIMIT_FACTOR = 4;

type RequestId = protocol.RequestId;

/** What a request handler answers: the result, and work to do once the response is on its way. */
interface Answer {
  result: unknown;
  after?: () => void;
}

/** One client connection: the lockstep/1 session over a transport (and that transport's listener, when it has `listen`). */
export class Connection implements TransportListener, SubscriptionOwner, ReplyChannel, PeerLink {
  readonly sessionId = randomUUID();
  clientId: string | undefined;
  identity: Identity | undefined;
  #greeted = false;
  /**
   * The hello being authenticated: a second one is refused even before the first is answered, and
   * requests pipelined behind it wait for it instead of being refused.
   */
  #greeting: Promise<unknown> | undefined;
  #closed = false;
  readonly #subscriptions: SubscriptionTable;
  /**
   * Bumped by every `reauthorize`: a subscribe whose authorization was answered under an older count
   * may have been answered with grants since revoked, and asks again before it subscribes.
   */
  #grants = 0;
  /** Streams this connection may still cause to be loaded (`newStreamsPerMinute`); made on first use. */
  #newStreams: TokenBucket | undefined;
  /** The transport's two subscriptions, for a transport without `listen`. */
  #rx: RxSubscription[] | undefined;
  readonly #bucket: TokenBucket | undefined;
  /** Rate-limited messages in the current window; too many and the connection is closed. */
  #strikes = 0;
  #strikeWindowStart = 0;
  #helloTimer: TimerHandle | undefined;
  /** Streams dropped because the client stopped reading; resynced once its buffer has drained. */
  #overloaded: string[] | undefined;
  /** This connection as services see it: made when one first needs it (most connections never do). */
  #peer: ConnectionPeer | undefined;
  /** What the client said it serves in hello (name → version), and its application. */
  #peerServices: ReadonlyMap<string, string> | undefined;
  #peerApp: protocol.AppInfo | undefined;
  /**
   * Exists only while subscribes hold or wait for a turn (`#gateUsers`): an idle gate holds nothing a
   * new one would not, and a hub keeps thousands of idle connections.
   */
  #subscribeGate: SubscribeGate | undefined;
  #gateUsers = 0;
  /** Set by a request whose error answer must be followed by the close of the connection. */
  #closeAfterReply: string | undefined;
  /** Both sides said `batch` in hello: frames may hold arrays of messages, in both directions. */
  #batching = false;
  /** The client said `eventAcks` in hello: a command whose events it was sent live is not answered. */
  #eventAcks = false;
  /** The client takes a large snapshot in `snapshot` pages (it said `snapshotPages` in hello). */
  #snapshotPages = false;
  /** The largest page (of events or of a snapshot) built for this client: `pageBytes`, or less if it says so. */
  #pageBytes = 0;
  /** With batching, the frames sent in this tick, written together at its end (`flushHeld`). */
  #held: Frame[] | undefined;

  constructor(
    private readonly hub: Hub,
    private readonly transport: Transport,
    readonly codec: Codec,
    /** Set when the transport authenticated the peer before the connection existed. */
    private readonly preauthenticated: Identity | undefined,
  ) {
    const { rateLimit } = hub.settings;
    if (rateLimit) this.#bucket = new TokenBucket(hub.clock, rateLimit.messagesPerSecond, rateLimit.burst);
    this.#subscriptions = new SubscriptionTable(hub.settings.maxSubscriptionsPerConnection);
  }

  /** Takes a place at the subscribe gate (made on first use); the returned function gives it back, once. */
  #enterGate(): { gate: SubscribeGate; leave(): void } {
    const gate = (this.#subscribeGate ??= new SubscribeGate({
      clock: this.hub.clock,
      concurrency: SUBSCRIBE_CONCURRENCY,
      maxWaiting: MAX_WAITING_SUBSCRIBES,
      backlogged: () => (this.transport.bufferedAmount ?? 0) > this.hub.settings.maxBufferedBytes,
    }));
    this.#gateUsers++;
    let left = false;
    return {
      gate,
      leave: () => {
        if (left) return;
        left = true;
        if (--this.#gateUsers === 0 && this.#subscribeGate === gate) this.#subscribeGate = undefined;
      },
    };
  }

  /** Cancels the hello timeout and lets go of its handle (a Timeout and its closure, kept for as long as the connection otherwise). */
  #stopHelloTimer(): void {
    if (this.#helloTimer === undefined) return;
    this.hub.clock.clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
  }

  start(): void {
    const { helloTimeoutMs } = this.hub.settings;
    this.#helloTimer = this.hub.clock.setTimeout(() => {
      if (!this.#greeted) this.close(`no hello within ${helloTimeoutMs} ms`);
    }, helloTimeoutMs);
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
    if (this.#closed) for (const rx of this.#rx) rx.unsubscribe();
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
    this.#flushHeld();
    this.transport.close(reason);
    this.#onClosed();
  }

  /** Tells the client the hub is going away (so it reconnects), then closes. */
  shutdown(reason: string): void {
    this.#send({ jsonrpc: '2.0', method: protocol.Notifications.shutdown, params: { reason } });
    this.close(reason);
  }

  /**
   * Sends a live `events` frame — unless the client has stopped reading: past `maxBufferedBytes`
   * of unsent data the connection is dropped to a resync instead of buffering without bound.
   */
  sendEvents(frame: Frame): void {
    if (this.#closed || this.#overloaded) return;
    if ((this.transport.bufferedAmount ?? 0) > this.hub.settings.maxBufferedBytes) {
      this.#shed();
      return;
    }
    this.#write(frame);
  }

  /**
   * Every frame to the client goes through here. With batching, the frames of one tick (a batch's
   * events and acks, answers to a batch of requests) are held and leave as batch frames at its end,
   * after every promise settled in the tick: one frame for the client to parse instead of hundreds.
   */
  #write(frame: Frame): void {
    if (!this.#batching) {
      this.transport.send(frame);
      return;
    }
    if (this.#held) {
      this.#held.push(frame);
      return;
    }
    this.#held = [frame];
    process.nextTick(Connection.flushHeld, this);
  }

  #flushHeld(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    if (this.#closed) return;
    writeBatched(held, this.codec.join!, (frame) => this.transport.send(frame));
  }

  /** For `process.nextTick`, which passes arguments: no closure per connection. */
  static flushHeld(connection: Connection): void {
    connection.#flushHeld();
  }

  /** Drops every subscription of a client that does not read, and resyncs them once it does again. */
  #shed(): void {
    this.#overloaded = this.#subscriptions.dropAll();
    const lowWater = this.hub.settings.maxBufferedBytes / 4;
    const check = () => {
      if (this.#closed) return;
      if ((this.transport.bufferedAmount ?? 0) > lowWater) {
        this.hub.clock.setTimeout(check, DRAIN_CHECK_MS);
        return;
      }
      const streams = this.#overloaded ?? [];
      this.#overloaded = undefined;
      for (const stream of streams) {
        this.#send({ jsonrpc: '2.0', method: protocol.Notifications.resync, params: { stream, reason: 'slowConsumer' } });
      }
    };
    this.hub.clock.setTimeout(check, DRAIN_CHECK_MS);
  }

  /**
   * True when one more message may be processed; otherwise it has been answered RATE_LIMITED with
   * the id of `message`, when it has one (or the connection closed). Every message of a batch counts.
   */
  #withinRate(message: unknown): boolean {
    if (!this.#bucket || this.#bucket.take()) return true;
    const now = this.hub.clock.now();
    if (now - this.#strikeWindowStart > STRIKE_WINDOW_MS) {
      this.#strikeWindowStart = now;
      this.#strikes = 0;
    }
    if (++this.#strikes > (this.hub.settings.rateLimit || { burst: 0 }).burst) {
      this.close('rate limit exceeded');
      return false;
    }
    this.#sendError(salvageId(message), new LockstepError('RATE_LIMITED', 'too many messages; slow down', { retryAfterMs: this.#bucket.retryAfterMs }));
    return false;
  }

  #send(message: protocol.Message): void {
    if (this.#closed) return;
    let frame: Frame;
    try {
      frame = this.codec.encode(message);
    } catch (error) {
      this.hub.reportError(error, 'encoding a message');
      return;
    }
    this.#write(frame);
  }

  #sendError(id: RequestId | null, error: LockstepError): void {
    this.#send({ jsonrpc: '2.0', id, error: error.toJSON() });
  }

  #onFrame(frame: Frame): void {
    const unsent = this.transport.bufferedAmount ?? 0;
    if (unsent > UNREAD_LIMIT_FACTOR * this.hub.settings.maxBufferedBytes) {
      this.close(`the client does not read: ${unsent} bytes unsent`);
      return;
    }
    let message: unknown;
    try {
      message = this.codec.decode(frame);
    } catch (error) {
      if (this.#withinRate(null)) this.#sendError(null, LockstepError.from(error));
      return;
    }
    if (!Array.isArray(message)) {
      if (this.#withinRate(message)) this.#onMessage(message);
      return;
    }
    if (!this.#withinRate(null)) return;
    if (!this.#batching) {
      this.#sendError(null, new LockstepError('INVALID_REQUEST', 'JSON-RPC batches need the batch capability: send one message per frame, or say capabilities.batch in hello'));
      return;
    }
    if (message.length === 0 || message.length > MAX_BATCH_MESSAGES) {
      this.#sendError(null, new LockstepError('INVALID_REQUEST', `a batch holds 1 to ${MAX_BATCH_MESSAGES} messages, got ${message.length}`));
      return;
    }
    // Each message as if it had come in a frame of its own, in order; the frame's token is the first's.
    for (let i = 0; i < message.length && !this.#closed; i++) {
      const element: unknown = message[i];
      if (i === 0 || this.#withinRate(element)) this.#onMessage(element);
    }
  }

  #onMessage(message: unknown): void {
    const parsed = protocol.parseMessage(message);
    if (!parsed.success) {
      this.#sendError(salvageId(message), new LockstepError('INVALID_REQUEST', 'not a JSON-RPC 2.0 message', { issues: parsed.error.issues }));
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
      this.#sendError(null, new LockstepError('INVALID_REQUEST', 'a request id is a string or an integer, not null (leave id out for a notification)'));
      return;
    }
    if (method === protocol.Methods.command && this.#greeted) {
      this.#command(id, params);
      return;
    }
    this.#dispatch(method, id, params).then(
      (answer) => {
        this.reply(id, answer.result);
        answer.after?.();
      },
      (error: unknown) => {
        this.replyError(id, error, method);
        if (this.#closeAfterReply !== undefined) this.close(this.#closeAfterReply);
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
      if (id !== undefined && id !== null) this.#peer?.settle(id, message);
      return;
    }
    if (id !== undefined && id !== null && this.#peer?.awaits(id)) {
      this.#peer.fail(id, new LockstepError('INTERNAL_ERROR', 'the client answered with neither result nor error', { reason: 'invalidResponse' }));
      return;
    }
    this.#sendError(id ?? null, new LockstepError('INVALID_REQUEST', 'not a request, notification or response: method is missing, and so are result and error'));
  }

  /** A notification from the client: `$/cancelRequest`, or one of a service someone listens to. Never answered. */
  #onNotification(method: string, params: unknown): void {
    if (method === protocol.CANCEL_REQUEST) {
      const cancel = protocol.cancelRequestParamsSchema.safeParse(params);
      if (cancel.success) this.#peer?.cancelHandling(cancel.data.id);
      return;
    }
    if (this.#greeted && this.hub.services.listens(method)) this.hub.services.deliver(method, params, this.peer(), (error, context) => this.hub.reportError(error, context));
  }

  /**
   * A command once the connection is greeted: the same steps as in `#dispatch`, with one reply object
   * that travels through the pipeline and hears the answer (and leaves out an ack its events stand
   * for), instead of an async call, a promise and two handlers per command. The `authorize` hook is
   * awaited only when there is one.
   */
  #command(id: RequestId, params: unknown): void {
    const command = protocol.parseCommandParams(params);
    if (!command.success) {
      this.#sendError(id, invalidParams(command.error.issues));
      return;
    }
    const { stream } = command.data;
    const reply = new CommandReply(this, id, command.data, this.clientId!);
    if (!this.hub.checksAccess) {
      this.#enqueue(stream, reply);
      return;
    }
    this.hub.authorize(this.identity, stream, 'write').then(
      () => this.#enqueue(stream, reply),
      (error: unknown) => this.replyError(id, error),
    );
  }

  #enqueue(stream: string, reply: CommandReply): void {
    try {
      this.#admitStream(stream);
    } catch (error) {
      reply.reject(LockstepError.from(error));
      return;
    }
    this.hub.enqueue(stream, reply);
  }

  /**
   * Throws RATE_LIMITED when `stream` is not loaded in the hub and this connection has loaded its
   * `newStreamsPerMinute` already: loading costs memory for as long as the stream stays (until it has
   * been idle for `unloadIdleStreamsMs`), so how many a connection may cause is bounded too.
   */
  #admitStream(stream: string): void {
    const perMinute = this.hub.settings.newStreamsPerMinute;
    if (perMinute === false || !this.hub.wouldLoad(stream)) return;
    const budget = (this.#newStreams ??= new TokenBucket(this.hub.clock, perMinute / 60, perMinute));
    if (budget.take()) return;
    throw new LockstepError('RATE_LIMITED', `more than ${perMinute} new streams a minute on this connection`, {
      retryAfterMs: budget.retryAfterMs,
      limit: 'newStreamsPerMinute',
    });
  }

  /**
   * With `eventAcks`, true when the live broadcast that just carried this command's events was sent
   * to this connection: the client takes them for the ack, and no answer is sent. A subscription is
   * live and at or past the version only if the broadcast was written to it (a shed one is cancelled
   * on the spot); one catching up page by page is not live.
   */
  receivedLive(result: protocol.CommandResult): boolean {
    if (!this.#eventAcks) return false;
    const subscription = this.#subscriptions.get(result.stream);
    return subscription !== undefined && subscription.live && subscription.cursor >= result.version;
  }

  /** The answer to a request of this client (a command's, from its {@link CommandReply}). */
  reply(id: RequestId, result: unknown): void {
    this.#send({ jsonrpc: '2.0', id, result });
  }

  /** The error answer to a request; an error that is not a LockstepError is a bug, reported too. */
  replyError(id: RequestId, error: unknown, method: string = protocol.Methods.command): void {
    if (!(error instanceof LockstepError)) this.hub.reportError(error, `handling ${method}`);
    this.#sendError(id, LockstepError.from(error));
  }

  async #dispatch(method: string, id: RequestId, params: unknown): Promise<Answer> {
    switch (method) {
      case protocol.Methods.hello:
        // `hub.onPeer` listeners hear of the connection once the answer is on its way.
        return { result: await this.#hello(parse(protocol.helloParamsSchema, params)), after: () => this.hub.greeted(this) };
      case protocol.Methods.ping:
        parse(protocol.pingParamsSchema, params);
        return { result: { time: this.hub.clock.now() } };
    }
    // Requests pipelined behind a hello wait for it rather than being refused.
    if (!this.#greeted && this.#greeting) await this.#greeting.catch(() => {});
    if (!this.#greeted) {
      if (Object.hasOwn(protocol.Methods, method) || this.hub.services.has(method)) throw new LockstepError('HANDSHAKE_REQUIRED', `send hello before ${method}`);
      throw new LockstepError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(method)}`);
    }
    switch (method) {
      case protocol.Methods.subscribe:
        return this.#subscribe(parse(protocol.subscribeParamsSchema, params));
      case protocol.Methods.unsubscribe: {
        const { stream } = parse(protocol.unsubscribeParamsSchema, params);
        this.#subscriptions.unsubscribe(stream);
        return { result: {} };
      }
      case protocol.Methods.command: {
        // Only for a command that waited for the hello behind it; once greeted, `#command` takes them.
        const command = parse({ safeParse: protocol.parseCommandParams }, params);
        if (this.hub.checksAccess) await this.hub.authorize(this.identity, command.stream, 'write');
        this.#admitStream(command.stream);
        return { result: await this.hub.submit(command, { clientId: this.clientId! }) };
      }
      default:
        if (!this.hub.services.has(method)) throw new LockstepError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(method)}`);
        return { result: await this.hub.services.handle(method, id, params, this.peer(), this.hub) };
    }
  }

  // --- as a Peer's link (services) --------------------------------------------------------------

  get greeted(): boolean {
    return this.#greeted;
  }

  /** This connection as services see it (made on first use). */
  peer(): ConnectionPeer {
    return (this.#peer ??= new ConnectionPeer(this, this.hub.clock, this.hub.settings.callTimeoutMs));
  }

  get peerServices(): ReadonlyMap<string, string> {
    return this.#peerServices ?? NO_SERVICES;
  }

  get peerApp(): protocol.AppInfo | undefined {
    return this.#peerApp;
  }

  get bufferedAmount(): number {
    return this.transport.bufferedAmount ?? 0;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  sendMessage(message: protocol.Message): void {
    this.#send(message);
  }

  authorize(resource: string, action: AccessAction): Promise<void> {
    return this.hub.authorize(this.identity, resource, action);
  }

  async #hello(params: protocol.HelloParams): Promise<protocol.HelloResult> {
    if (params.protocol !== PROTOCOL_VERSION) {
      throw new LockstepError('UNSUPPORTED_PROTOCOL', `protocol ${params.protocol} is not supported`, { supported: [PROTOCOL_VERSION] });
    }
    if (this.#greeted || this.#greeting) throw new LockstepError('INVALID_REQUEST', 'hello was already done on this connection');
    // Token guessing is throttled per peer: its address when the transport knows it.
    const throttle = this.preauthenticated ? undefined : this.hub.authFailures;
    const remoteAddress = this.transport.info?.['remoteAddress'];
    const peer = typeof remoteAddress === 'string' ? `address:${remoteAddress}` : `session:${this.sessionId}`;
    const retryAfterMs = throttle?.retryAfterMs(peer) ?? 0;
    if (retryAfterMs > 0) {
      this.#closeAfterReply = 'too many refused tokens';
      throw new LockstepError('RATE_LIMITED', `too many refused tokens; retry in ${retryAfterMs} ms`, { retryAfterMs });
    }
    let identity: Identity | undefined;
    const authenticating = this.preauthenticated ?? this.hub.authenticate(params.token, params.clientId, this.transport.info ?? {});
    this.#greeting = Promise.resolve(authenticating);
    try {
      identity = await authenticating;
    } catch (error) {
      if (error instanceof LockstepError && error.code === 'UNAUTHORIZED') throttle?.fail(peer);
      throw error;
    } finally {
      this.#greeting = undefined;
    }
    if (this.#closed) throw new LockstepError('UNAVAILABLE', 'connection closed');
    // After authentication: the refusal names the hub's application.
    const refusal = incompatibleApp(this.hub.app, params.app, 'hub');
    if (refusal) throw refusal;
    const clientId = params.clientId ?? `anon-${this.sessionId}`;
    // FORBIDDEN when the client id belongs to another identity: nothing is set, hello may be sent again.
    this.hub.clientPresent(clientId, identity);
    this.identity = identity;
    this.clientId = clientId;
    if (params.services !== undefined && params.services.length > 0) this.#peerServices = new Map(params.services.map(({ name, version }) => [name, version]));
    this.#peerApp = params.app;
    this.#greeted = true;
    this.#stopHelloTimer();
    const result = this.hub.helloResult(this.sessionId);
    result.capabilities['eventAcks'] = true;
    this.#eventAcks = params.capabilities?.['eventAcks'] === true;
    result.capabilities['snapshotPages'] = true;
    this.#snapshotPages = params.capabilities?.['snapshotPages'] === true;
    const maxFrameBytes = params.capabilities?.['maxFrameBytes'];
    this.#pageBytes = this.hub.settings.pageBytes;
    if (typeof maxFrameBytes === 'number' && maxFrameBytes >= 2 * MIN_PAGE_BYTES) this.#pageBytes = Math.min(this.#pageBytes, Math.floor(maxFrameBytes / 2));
    if (this.codec.join) {
      result.capabilities['batch'] = true;
      // From the answer on: it leaves alone (nothing is held yet), everything after may be batched.
      this.#batching = params.capabilities?.['batch'] === true;
    }
    return result;
  }

  async #subscribe(params: protocol.SubscribeParams): Promise<Answer> {
    const { stream } = params;
    const generation = this.#subscriptions.begin(stream);
    const place = this.#enterGate();
    let release: () => void;
    try {
      const turn = await place.gate.acquire();
      release = () => {
        turn();
        place.leave();
        this.#subscriptions.finish(stream);
      };
    } catch (error) {
      place.leave();
      this.#subscriptions.finish(stream);
      if (error instanceof LockstepError && error.code === 'RATE_LIMITED') this.close(error.message);
      throw error;
    }
    try {
      const answer = await this.#prepareSubscription(params, generation);
      return {
        result: answer.result,
        after: () => {
          release();
          answer.after?.();
        },
      };
    } catch (error) {
      release();
      throw error;
    }
  }

  async #prepareSubscription({ stream, since }: protocol.SubscribeParams, generation: number): Promise<Answer> {
    let grants = this.#grants;
    await this.hub.authorize(this.identity, stream, 'read');
    // Past the bound, or past the new streams this connection may load: refused before anything loads.
    const reservation = this.#subscriptions.reserve(stream);
    let subscription: Subscription;
    try {
      this.#admitStream(stream);
      const host = this.hub.stream(stream);
      await host.ready;
      // Grants were revoked while this subscribe was being authorized: the answer may be stale.
      while (grants !== this.#grants) {
        grants = this.#grants;
        await this.hub.authorize(this.identity, stream, 'read');
      }
      if (!this.#subscriptions.isCurrent(stream, generation)) throw new LockstepError('UNAVAILABLE', 'subscription superseded');
      subscription = new Subscription(this, host);
      this.#subscriptions.install(subscription, reservation);
    } finally {
      this.#subscriptions.release(reservation);
    }
    const { host } = subscription;

    const { oldestRetained } = await this.hub.store.info(stream);
    let events: Event[] | undefined;
    if (since !== undefined && since >= oldestRetained - 1 && since <= host.version) {
      const page = await host.readSince(since + 1, this.hub.settings.catchUpPage);
      // Compaction may have run meanwhile: a page that does not start right after `since` is useless.
      if (page.length === 0 || page[0]!.version === since + 1) events = this.#fitPage(page, (part) => ({ result: { events: part } })).events;
    }
    if (subscription.cancelled || this.#closed) throw subscription.refusal ?? new LockstepError('UNAVAILABLE', 'subscription superseded');

    // The subscription joins the broadcast only once its answer is on the wire (`after`): events
    // committed before that would otherwise reach the client ahead of the answer they follow.
    const after = () => this.#join(subscription);
    if (events === undefined) {
      subscription.cursor = host.version;
      const pages = this.#snapshotPagesOf(host.state);
      if (pages === undefined) return { result: { stream, version: host.version, head: host.version, oldestRetained, snapshot: host.state }, after };
      const version = host.version;
      const result: protocol.SubscribeResult = { stream, version, head: version, oldestRetained, snapshotPages: pages.length };
      return { result, after: () => void this.#sendSnapshot(subscription, version, pages) };
    }
    const version = events.length > 0 ? events[events.length - 1]!.version : since!;
    subscription.cursor = version;
    const result: protocol.SubscribeResult = { stream, version, head: host.version, oldestRetained, events };
    return { result, after };
  }

  /** Right after the subscribe answer: live at once when the stream has not moved since, else catch up first. */
  #join(subscription: Subscription): void {
    subscription.answered = true;
    if (this.#closed) return;
    if (subscription.cancelled) {
      // Revoked between the answer's preparation and its sending: the client hears it now.
      if (subscription.refusal) this.#sendUnsubscribed(subscription.host.name, subscription.refusal);
      return;
    }
    if (this.#overloaded) {
      // Still shedding: this stream is resynced with the others once the client reads again.
      const name = subscription.host.name;
      if (!this.#overloaded.includes(name)) this.#overloaded.push(name);
      this.#subscriptions.remove(subscription);
      return;
    }
    if (!this.hub.holds(subscription.host)) {
      // Unloaded while idle between the answer and now: the stream lives on in a new host.
      this.dropSubscription(subscription, 'reloaded');
      return;
    }
    subscription.host.subscribers.add(subscription);
    if (subscription.cursor === subscription.host.version) subscription.live = true;
    else void this.#catchUp(subscription);
  }

  /** Sends the rest of a large catch-up page by page, then joins the live broadcast. */
  async #catchUp(subscription: Subscription): Promise<void> {
    const { host } = subscription;
    try {
      while (subscription.cursor < host.version) {
        await nextTurn();
        // Pages go out only as fast as the client reads them.
        while ((this.transport.bufferedAmount ?? 0) > this.hub.settings.maxBufferedBytes / 4) {
          await new Promise<void>((resolve) => this.hub.clock.setTimeout(resolve, DRAIN_CHECK_MS));
          if (subscription.cancelled || this.#closed) return;
        }
        if (subscription.cancelled || this.#closed) return;
        const read = await host.readSince(subscription.cursor + 1, this.hub.settings.catchUpPage);
        if (subscription.cancelled || this.#closed) return;
        if (read.length === 0 || read[0]!.version !== subscription.cursor + 1) {
          this.dropSubscription(subscription, 'retention');
          return;
        }
        // `catchUp`: a command's events may be split between pages; they stand for no ack (eventAcks).
        const { events: page, frame } = this.#fitPage(read, (events) => ({
          jsonrpc: '2.0',
          method: protocol.Notifications.events,
          params: { stream: host.name, events, catchUp: true },
        }));
        subscription.cursor = page[page.length - 1]!.version;
        this.#write(frame);
      }
      subscription.live = true;
    } catch (error) {
      this.hub.reportError(error, `catching up ${host.name}`);
      this.dropSubscription(subscription, 'unavailable');
    }
  }

  /**
   * The longest head of `events` whose message (`wrap`) encodes within this client's page size — at
   * least one event — and that message's frame. Halves until it fits: a normal page is encoded once.
   */
  #fitPage(events: Event[], wrap: (events: Event[]) => unknown): { events: Event[]; frame: Frame } {
    let part = events;
    for (;;) {
      const frame = this.codec.encode(wrap(part));
      if (part.length <= 1 || frameSize(frame) <= this.#pageBytes) return { events: part, frame };
      part = part.slice(0, part.length >> 1);
    }
  }

  /**
   * A state too large for one page, as the pages of its JSON text (never cutting a surrogate pair,
   * which a binary codec could not carry); undefined when it fits in one, or the client takes no pages.
   */
  #snapshotPagesOf(state: unknown): string[] | undefined {
    if (!this.#snapshotPages) return undefined;
    const text = JSON.stringify(state) ?? 'null';
    // Room for the envelope and for escapes of the quotes and backslashes the text holds.
    const size = Math.max(MIN_PAGE_BYTES, Math.floor((this.#pageBytes - 256) / 2));
    if (text.length <= size) return undefined;
    const pages: string[] = [];
    for (let start = 0; start < text.length; ) {
      let end = Math.min(start + size, text.length);
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
      pages.push(text.slice(start, end));
      start = end;
    }
    return pages;
  }

  /** After a paged snapshot's answer: its pages, as fast as the client reads them, then the stream. */
  async #sendSnapshot(subscription: Subscription, version: number, pages: string[]): Promise<void> {
    subscription.answered = true;
    const stream = subscription.host.name;
    for (let page = 0; page < pages.length; page++) {
      if (page > 0 && !(await this.#drained(subscription))) return;
      if (subscription.cancelled || this.#closed) return;
      this.#send({ jsonrpc: '2.0', method: protocol.Notifications.snapshot, params: { stream, version, page, pages: pages.length, data: pages[page]! } });
    }
    this.#join(subscription);
  }

  /** Waits until the client has read most of what was sent; false if the subscription ended meanwhile. */
  async #drained(subscription: Subscription): Promise<boolean> {
    await nextTurn();
    while ((this.transport.bufferedAmount ?? 0) > this.hub.settings.maxBufferedBytes / 4) {
      if (subscription.cancelled || this.#closed) return false;
      await new Promise<void>((resolve) => this.hub.clock.setTimeout(resolve, DRAIN_CHECK_MS));
    }
    return !subscription.cancelled && !this.#closed;
  }

  /** Ends a subscription the hub can no longer serve in order; the client resubscribes. */
  dropSubscription(subscription: Subscription, reason: string): void {
    this.#subscriptions.remove(subscription);
    this.#send({ jsonrpc: '2.0', method: protocol.Notifications.resync, params: { stream: subscription.host.name, reason } });
  }

  /**
   * The application told the hub that grants changed (`Hub.reauthorize`): every subscription of this
   * connection — live, catching up, or prepared and not yet answered — is authorized again for
   * `read`, and those refused end with an `unsubscribed` notification (or, not yet answered, with the
   * refusal as their answer). Subscribes still being authorized ask again before they subscribe. The
   * services re-check what they give it. Resolves once every check is answered.
   */
  async reauthorize(): Promise<void> {
    if (this.#closed) return;
    this.#grants++;
    const checks: Array<Promise<void>> = [];
    for (const subscription of this.#subscriptions.subscriptions()) {
      checks.push(
        this.hub.authorize(this.identity, subscription.host.name, 'read').then(
          () => {},
          (error: unknown) => this.#revoke(subscription, LockstepError.from(error)),
        ),
      );
    }
    if (this.#peer) checks.push(this.hub.reauthorizePeer(this.#peer));
    await Promise.all(checks);
  }

  #revoke(subscription: Subscription, refusal: LockstepError): void {
    // Replaced or ended meanwhile: the one that replaced it was authorized on its own.
    if (this.#closed || !this.#subscriptions.remove(subscription)) return;
    if (subscription.answered) this.#sendUnsubscribed(subscription.host.name, refusal);
    else subscription.refusal = refusal;
  }

  #sendUnsubscribed(stream: string, refusal: LockstepError): void {
    const params: protocol.UnsubscribedParams = { stream, error: refusal.toJSON() };
    this.#send({ jsonrpc: '2.0', method: protocol.Notifications.unsubscribed, params });
  }

  #onClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = undefined;
    this.#stopHelloTimer();
    this.#subscribeGate?.close();
    this.#subscriptions.dropAll();
    if (this.#rx) for (const rx of this.#rx) rx.unsubscribe();
    else this.transport.listen?.(undefined);
    if (this.#peer) {
      this.#peer.onClosed();
      this.hub.peerClosed(this.#peer);
    }
    this.hub.connectionClosed(this);
  }
}

const NO_SERVICES: ReadonlyMap<string, string> = new Map();


function parse<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: unknown[] } } }, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidParams(result.error.issues);
  return result.data;
}

/** The answer to params that do not fit their method's schema, wherever they are checked. */
function invalidParams(issues: unknown[]): LockstepError {
  return new LockstepError('INVALID_PARAMS', 'invalid params', { issues });
}

function salvageId(message: unknown): RequestId | null {
  if (typeof message !== 'object' || message === null) return null;
  const id = (message as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : null;
}
