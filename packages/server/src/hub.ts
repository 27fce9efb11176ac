import { randomUUID } from 'node:crypto';
import {
  FailureWindow,
  LockstepError,
  commandSchema,
  fingerprint,
  jsonCodec,
  parseStreamName,
  systemClock,
  type AnyDomain,
  type Clock,
  type Codec,
  type TimerHandle,
  type Transport,
  protocol,
  type AnyService,
  type AnyServiceMethod,
  type AnyServiceNotification,
  type CallArguments,
  type ParamsInput,
  type ResultOutput,
  type ServiceHandlers,
} from '@lockstep/core';
import type { QueuedCommand } from './commandPipeline.js';
import { Connection } from './connection/connection.js';
import type { EventStore } from './eventStore.js';
import type { AccessAction, Identity } from './identity.js';
import { LeaseKeeper } from './leaseKeeper.js';
import { MemoryEventStore } from './memoryEventStore.js';
import type { HubCallOptions, Peer, PeerTarget } from './peer.js';
import { ServiceRegistry, implement, type NotificationListener, type ServeOptions, type ServiceContext } from './serviceRegistry.js';
import { StreamHost, type StreamHostOptions } from './streamHost.js';
import { HUB_DEFAULTS, type AcceptOptions, type ExecuteOptions, type HubOptions, type ReadOptions } from './hubOptions.js';

export { HUB_DEFAULTS, type AcceptOptions, type ExecuteOptions, type HubOptions, type ReadOptions } from './hubOptions.js';

/**
 * The hub: the only writer of its streams. It accepts connections over any Transport, runs commands
 * through validate → decide → append → evolve → broadcast → ack, and answers subscriptions with
 * exactly the missing events or a snapshot.
 */
export class Hub {
  readonly serverId: string;
  readonly store: EventStore;
  readonly clock: Clock;
  readonly codec: Codec;
  /** @internal Refused `hello` tokens per peer (see `authFailureLimit`). */
  readonly authFailures: FailureWindow | undefined;
  /** @internal The options that have defaults, with their defaults applied (what connections and streams read). */
  readonly settings: Required<
    Pick<
      HubOptions,
      | 'heartbeatMs'
      | 'leaseGraceMs'
      | 'snapshotEvery'
      | 'retainEvents'
      | 'catchUpPage'
      | 'pageBytes'
      | 'maxStateBytes'
      | 'helloTimeoutMs'
      | 'rateLimit'
      | 'maxBufferedBytes'
      | 'authFailureLimit'
      | 'unloadIdleStreamsMs'
      | 'maxLoadedStreams'
      | 'maxSubscriptionsPerConnection'
      | 'newStreamsPerMinute'
      | 'callTimeoutMs'
    >
  >;
  /** @internal The services served and the notifications listened to. */
  readonly services = new ServiceRegistry();
  /** The application named in `HubOptions.app`, if any. */
  readonly app: protocol.AppRequirement | undefined;
  readonly #domains: Map<string, AnyDomain>;
  /** Loaded streams, least recently used first (a use moves its stream to the end). */
  readonly #streams = new Map<string, StreamHost>();
  /** The key last (re)inserted in `#streams`: using it again needs no move. */
  #newestStream: string | undefined;
  /** What every StreamHost of this hub is given: one object, not a few closures per stream. */
  #hostOptions: StreamHostOptions | undefined;
  readonly #connections = new Set<Connection>();
  readonly #peerListeners = new Set<(peer: Peer) => void>();
  readonly #leases: LeaseKeeper;
  readonly #options: HubOptions;
  readonly #unwatch: (() => void) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #sweepTimer: TimerHandle | undefined;
  /** Set while streams in use hold the count above `maxLoadedStreams`: looks again for idle ones. */
  #trimTimer: TimerHandle | undefined;

  constructor(options: HubOptions) {
    this.#options = options;
    this.store = options.store ?? new MemoryEventStore();
    this.clock = options.clock ?? systemClock;
    this.codec = options.codec ?? jsonCodec;
    this.serverId = options.serverId ?? randomUUID();
    this.settings = {
      heartbeatMs: options.heartbeatMs ?? HUB_DEFAULTS.heartbeatMs,
      leaseGraceMs: options.leaseGraceMs ?? HUB_DEFAULTS.leaseGraceMs,
      snapshotEvery: options.snapshotEvery ?? HUB_DEFAULTS.snapshotEvery,
      retainEvents: options.retainEvents ?? HUB_DEFAULTS.retainEvents,
      catchUpPage: options.catchUpPage ?? HUB_DEFAULTS.catchUpPage,
      pageBytes: options.pageBytes ?? HUB_DEFAULTS.pageBytes,
      maxStateBytes: options.maxStateBytes ?? HUB_DEFAULTS.maxStateBytes,
      helloTimeoutMs: options.helloTimeoutMs ?? HUB_DEFAULTS.helloTimeoutMs,
      rateLimit: options.rateLimit ?? HUB_DEFAULTS.rateLimit,
      maxBufferedBytes: options.maxBufferedBytes ?? HUB_DEFAULTS.maxBufferedBytes,
      authFailureLimit: options.authFailureLimit ?? HUB_DEFAULTS.authFailureLimit,
      unloadIdleStreamsMs: options.unloadIdleStreamsMs ?? HUB_DEFAULTS.unloadIdleStreamsMs,
      maxLoadedStreams: options.maxLoadedStreams ?? HUB_DEFAULTS.maxLoadedStreams,
      maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection ?? HUB_DEFAULTS.maxSubscriptionsPerConnection,
      newStreamsPerMinute: options.newStreamsPerMinute ?? HUB_DEFAULTS.newStreamsPerMinute,
      callTimeoutMs: options.callTimeoutMs ?? HUB_DEFAULTS.callTimeoutMs,
    };
    const { authFailureLimit, maxLoadedStreams } = this.settings;
    if (maxLoadedStreams !== false && !(Number.isInteger(maxLoadedStreams) && maxLoadedStreams >= 1)) {
      throw new RangeError(`HubOptions.maxLoadedStreams must be a whole number of at least 1, or false; got ${maxLoadedStreams}`);
    }
    this.authFailures = authFailureLimit ? new FailureWindow(this.clock, authFailureLimit) : undefined;
    this.#domains = new Map(options.domains.map((domain) => [domain.name, domain]));
    if (options.app !== undefined) {
      const app = protocol.appRequirementSchema.safeParse(options.app);
      if (!app.success) throw new RangeError(`HubOptions.app: ${app.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
    }
    this.app = options.app;
    for (const implementation of options.services ?? []) this.services.add(implementation);
    // With several hubs on the store, a holder absent here may be connected to another hub. A hub
    // that stops heartbeating (a crash) stops counting after one grace period.
    const presence = this.store.presence;
    this.#leases = new LeaseKeeper(
      this.clock,
      this.settings.leaseGraceMs,
      (holder) => this.#expireLeases(holder),
      presence && {
        registry: presence,
        hubId: this.serverId,
        ttlMs: this.settings.leaseGraceMs,
        onError: (error, context) => this.reportError(error, context),
      },
    );
    // Other hubs on the same store: catch up with (and broadcast) what they append.
    this.#unwatch = this.store.watch?.((stream, head) => this.#streams.get(stream)?.refresh(head));
    void this.#loadLeasedStreams();
  }

  /**
   * Loads every stored stream of a domain with leases, so the grace period of a holder that was
   * gone before this hub started runs from now, not from whenever someone first reads the stream
   * (which would show its ghost entries until then).
   */
  async #loadLeasedStreams(): Promise<void> {
    const leased = new Set([...this.#domains.values()].filter((domain) => domain.leases).map((domain) => domain.name));
    if (leased.size === 0) return;
    try {
      for (const name of await this.store.streams()) {
        if (this.#closed) return;
        const domain = parseStreamName(name)?.domain;
        if (domain !== undefined && leased.has(domain)) this.stream(name);
      }
    } catch (error) {
      this.reportError(error, 'loading the streams that hold leases');
    }
  }

  get domainNames(): string[] {
    return [...this.#domains.keys()];
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Serves lockstep/1 over a transport until either side closes it. */
  accept(transport: Transport, options: AcceptOptions = {}): void {
    if (this.#closed) {
      transport.close('hub is shutting down');
      return;
    }
    const connection = new Connection(this, transport, options.codec ?? this.codec, options.identity);
    this.#connections.add(connection);
    connection.start();
  }

  /**
   * @internal True when `name` is a stream of a served domain that is not loaded: asking for it
   * would load it (what `newStreamsPerMinute` counts).
   */
  wouldLoad(name: string): boolean {
    if (this.#streams.has(name)) return false;
    const domain = parseStreamName(name)?.domain;
    return domain !== undefined && this.#domains.has(domain);
  }

  /** Loads (once) and returns the host of a stream, or throws UNKNOWN_STREAM. */
  stream(name: string): StreamHost {
    let host = this.#streams.get(name);
    if (host) {
      host.lastUsed = this.clock.now();
      if (this.#newestStream !== name) this.#moveToEnd(name, host);
      return host;
    }
    const parsed = parseStreamName(name);
    const domain = parsed && this.#domains.get(parsed.domain);
    if (!parsed || !domain) {
      throw new LockstepError('UNKNOWN_STREAM', `unknown stream ${JSON.stringify(name)}: no domain ${JSON.stringify(parsed?.domain ?? name)}`, {
        domains: this.domainNames,
      });
    }
    this.#hostOptions ??= {
      store: this.store,
      now: () => this.clock.now(),
      snapshotEvery: this.settings.snapshotEvery,
      retainEvents: this.settings.retainEvents,
      pageBytes: this.settings.pageBytes,
      maxStateBytes: this.settings.maxStateBytes,
      onError: (error, context) => this.reportError(error, context),
      onCommitted: (committed) => this.#leases.watch(committed),
      ...(this.#options.checkCommand && { check: this.#options.checkCommand }),
    };
    host = new StreamHost(name, parsed.key, domain, this.#hostOptions);
    host.lastUsed = this.clock.now();
    this.#streams.set(name, host);
    this.#newestStream = name;
    this.#unloadOverCap();
    this.#scheduleIdleSweep();
    host.ready.then(
      () => this.#leases.watch(host),
      () => {},
    );
    return host;
  }

  /**
   * Current state and version of a stream, as the hub holds it. With `identity`, the read is
   * authorized first (FORBIDDEN when the hook refuses).
   */
  async read(name: string, options: ReadOptions = {}): Promise<{ state: unknown; version: number }> {
    if (Object.hasOwn(options, 'identity')) await this.authorize(options.identity, name, 'read');
    const host = this.stream(name);
    await host.ready;
    return { state: host.state, version: host.version };
  }

  /**
   * Runs one command through the pipeline, as a connection would: for in-process callers such as a
   * REST API. Throws a LockstepError when the command is invalid, conflicts, is rejected, or (with
   * `options.identity`) is not authorized.
   */
  execute(params: unknown, options: ExecuteOptions = {}): Promise<protocol.CommandResult> {
    const parsed = commandSchema.safeParse(params);
    if (!parsed.success) {
      return Promise.reject(new LockstepError('INVALID_PARAMS', 'invalid command envelope', { issues: parsed.error.issues }));
    }
    const fromOutside = Object.hasOwn(options, 'identity');
    // A client id another identity holds is not this caller's to act as (its leases included).
    if (fromOutside && options.clientId !== undefined && !this.#leases.mayActAs(options.clientId, options.identity?.id)) {
      return Promise.reject(clientIdTaken(options.clientId));
    }
    if (!fromOutside || !this.checksAccess) return this.submit(parsed.data, options);
    return this.authorize(options.identity, parsed.data.stream, 'write').then(() => this.submit(parsed.data, options));
  }

  /**
   * @internal Runs a command whose envelope the caller has already validated (the pipeline does not
   * parse it twice). Authorization is the caller's business. Users call {@link Hub.execute}.
   */
  submit(command: protocol.CommandParams, options: ExecuteOptions = {}): Promise<protocol.CommandResult> {
    const { id, stream, type, payload, expectedVersion } = command;
    return new Promise((resolve, reject) => this.enqueue(stream, { id, type, payload, expectedVersion, clientId: options.clientId, resolve, reject }));
  }

  /**
   * @internal `submit` without a promise, for a caller that brings the queued command and hears the
   * answer on it (a connection's reply object): refusals before the pipeline are told to
   * `queued.reject` at once. The depth check of every payload is here, before the stream's pipeline.
   */
  enqueue(stream: string, queued: QueuedCommand): void {
    if (this.#closed) {
      queued.reject(new LockstepError('UNAVAILABLE', 'hub is shutting down'));
      return;
    }
    if (exceedsDepth(queued.payload, MAX_PAYLOAD_DEPTH)) {
      queued.reject(new LockstepError('INVALID_PARAMS', `payload nested deeper than ${MAX_PAYLOAD_DEPTH} levels`, { maxDepth: MAX_PAYLOAD_DEPTH }));
      return;
    }
    let host: StreamHost;
    try {
      host = this.stream(stream);
    } catch (error) {
      queued.reject(LockstepError.from(error));
      return;
    }
    host.enqueue(queued);
  }

  async authenticate(token: string | undefined, clientId: string | undefined, info: Readonly<Record<string, unknown>>) {
    const hook = this.#options.authenticate;
    if (!hook) return undefined;
    let identity: Identity | undefined;
    try {
      identity = await hook({ token, clientId, info });
    } catch {
      identity = undefined;
    }
    if (!identity) throw new LockstepError('UNAUTHORIZED', 'authentication failed');
    return identity;
  }

  /** @internal True when an `authorize` hook was given: without one, everything is allowed and nothing needs awaiting. */
  get checksAccess(): boolean {
    return this.#options.authorize !== undefined;
  }

  /** Throws FORBIDDEN unless the `authorize` hook allows it (`{stream, action}`, or `{method, action: "call"}`). */
  async authorize(identity: Identity | undefined, resource: string, action: AccessAction): Promise<void> {
    const hook = this.#options.authorize;
    if (!hook) return;
    let allowed = false;
    try {
      allowed = await hook(identity, resource, action);
    } catch (error) {
      this.reportError(error, `authorizing ${action} on ${resource}`);
    }
    if (allowed) return;
    if (action === 'call') throw new LockstepError('FORBIDDEN', `not allowed to call ${resource}`, { method: resource, action });
    throw new LockstepError('FORBIDDEN', `not allowed to ${action} ${resource}`, { stream: resource, action });
  }

  // --- services -------------------------------------------------------------------------------

  /**
   * Serves a service: its methods are answered by `handlers` (validated params in, the result out; a
   * `LockstepError` thrown is the error answer, anything else INTERNAL_ERROR and reported), and it is
   * announced in the `hello` answers from now on — connections greeted before see it from their next
   * `hello`. Throws when a service of that name is served already. See docs/rpc.md.
   */
  serve<S extends AnyService>(service: S, handlers: ServiceHandlers<S, ServiceContext>, options?: ServeOptions): void {
    this.services.add(implement(service, handlers, options));
  }

  /**
   * Listens to a notification clients send (validated first; invalid ones are reported through
   * `onError`). The `authorize` hook is not asked: a listener checks `context.identity` itself.
   * Returns the function that stops listening.
   */
  on<N extends AnyServiceNotification>(notification: N, listener: NotificationListener<N>): () => void {
    return this.services.on(notification, listener);
  }

  /**
   * The greeted connection `target` names: by `sessionId`, or the most recently opened one of a
   * `clientId` (a client may have several connections open, e.g. during a reconnect). Found by a scan of
   * the connections.
   */
  peer(target: PeerTarget): Peer | undefined {
    let found: Connection | undefined;
    for (const connection of this.#connections) {
      if (!connection.greeted) continue;
      if ('sessionId' in target ? connection.sessionId === target.sessionId : connection.clientId === target.clientId) found = connection;
    }
    return found?.peer();
  }

  /** Every greeted connection, as a {@link Peer}. */
  peers(): Peer[] {
    const peers: Peer[] = [];
    for (const connection of this.#connections) if (connection.greeted) peers.push(connection.peer());
    return peers;
  }

  /**
   * Calls `listener` with every connection once its `hello` has been answered — when a client that
   * serves something the hub needs is there to be called (`peer.serves(manager)`). What it throws is
   * reported through `onError`. Returns the function that stops listening.
   */
  onPeer(listener: (peer: Peer) => void): () => void {
    this.#peerListeners.add(listener);
    return () => void this.#peerListeners.delete(listener);
  }

  /** @internal A connection's hello was answered. */
  greeted(connection: Connection): void {
    if (this.#peerListeners.size === 0 || !connection.greeted || connection.isClosed) return;
    const peer = connection.peer();
    for (const listener of [...this.#peerListeners]) {
      try {
        listener(peer);
      } catch (error) {
        this.reportError(error, 'a hub.onPeer listener');
      }
    }
  }

  /**
   * Calls a method a client serves, on the connection `target` names (see {@link Hub.peer}): UNAVAILABLE
   * (`reason: "notConnected"`) when there is none; otherwise as {@link Peer.call}.
   */
  call<M extends AnyServiceMethod>(target: PeerTarget, method: M, ...args: CallArguments<M, HubCallOptions>): Promise<ResultOutput<M>> {
    const peer = this.peer(target);
    if (!peer)
      return Promise.reject(
        new LockstepError('UNAVAILABLE', `${method.method}: no connection of ${JSON.stringify(target)}`, { reason: 'notConnected', target }),
      );
    return peer.call(method, ...args);
  }

  /** Sends a notification to the connection `target` names; false when there is none. */
  notify<N extends AnyServiceNotification>(target: PeerTarget, notification: N, params: ParamsInput<N>): boolean {
    return this.peer(target)?.notify(notification, params) ?? false;
  }

  /**
   * Tells the hub that what the `authorize` hook answers may have changed — a grant was revoked — for
   * the connections whose identity `filter` accepts (every connection without one). Each of their
   * subscriptions, live, catching up or not yet answered, is authorized again for `read`; a refused
   * one is dropped at once, and its client gets an `unsubscribed` notification `{stream, error}` with
   * the FORBIDDEN error (a subscribe not yet answered gets it as its answer). No further event of the
   * stream reaches that connection, and clients do not resubscribe by themselves. Services re-check
   * what they give each of those connections (`ServeOptions.onReauthorize`: the terminal service
   * detaches refused viewers). Resolves once every check has been answered and every refusal sent.
   * Without an `authorize` hook everything is allowed, and nothing is done.
   *
   * Commands are authorized one by one as they arrive, so they need nothing: a command already
   * authorized when the grant changed may still run.
   */
  async reauthorize(filter?: (identity: Identity | undefined) => boolean): Promise<void> {
    if (!this.checksAccess) return;
    const checks: Array<Promise<void>> = [];
    for (const connection of this.#connections) {
      if (filter === undefined || filter(connection.identity)) checks.push(connection.reauthorize());
    }
    await Promise.all(checks);
  }

  /** @internal The services re-check what they give one connection (see {@link Hub.reauthorize}). */
  async reauthorizePeer(peer: Peer): Promise<void> {
    await Promise.all(
      this.services.implementations.map(async ({ service, options }) => {
        try {
          await options?.onReauthorize?.(peer);
        } catch (error) {
          this.reportError(error, `service ${service.name} re-authorizing session ${peer.sessionId}`);
        }
      }),
    );
  }

  /** @internal A connection that had a {@link Peer} closed. */
  peerClosed(peer: Peer): void {
    for (const { service, options } of this.services.implementations) {
      try {
        options?.onPeerClosed?.(peer);
      } catch (error) {
        this.reportError(error, `service ${service.name} releasing session ${peer.sessionId}`);
      }
    }
  }

  isConnected(clientId: string): boolean {
    return this.#leases.isPresent(clientId);
  }

  /**
   * @internal A connection said hello as `clientId`, for `identity`. A client id belongs to the identity that
   * presented it first (anonymous connections are one identity), for as long as one of its connections
   * is open and then the lease grace period: presented by another identity meanwhile, the hello is
   * refused with FORBIDDEN, so it can neither keep that client's leases alive nor act as their holder.
   */
  clientPresent(clientId: string, identity: Identity | undefined): void {
    if (!this.#leases.present(clientId, identity?.id)) throw clientIdTaken(clientId);
  }

  /** @internal A connection of `clientId` closed. */
  connectionClosed(connection: Connection): void {
    this.#connections.delete(connection);
    if (connection.clientId !== undefined) this.#leases.absent(connection.clientId);
  }

  #expireLeases(holder: string): void {
    for (const host of this.#streams.values()) {
      const leases = host.domain.leases;
      if (!leases) continue;
      for (const lease of leases.holders(host.state)) {
        if (lease.holder !== holder) continue;
        const command = leases.expire(lease.key, holder) as { type: string; payload: unknown };
        const id = `lease:${fingerprint([host.name, lease.key, holder, host.version])}`;
        this.execute({ id, stream: host.name, type: command.type, payload: command.payload }).catch((error) =>
          this.reportError(error, `expiring the lease of ${holder} on ${host.name}/${lease.key}`),
        );
      }
    }
  }

  /** @internal Whether `host` is the one this hub serves its stream with (not one unloaded since). */
  holds(host: StreamHost): boolean {
    return this.#streams.get(host.name) === host;
  }

  /** While streams are loaded, looks for idle ones every half idle period. */
  #scheduleIdleSweep(): void {
    const idleMs = this.settings.unloadIdleStreamsMs;
    if (idleMs === false || this.#sweepTimer !== undefined || this.#closed) return;
    this.#sweepTimer = this.clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#unloadIdleStreams(idleMs);
      if (this.#streams.size > 0) this.#scheduleIdleSweep();
    }, idleMs / 2);
  }

  #unloadIdleStreams(idleMs: number): void {
    const now = this.clock.now();
    for (const [name, host] of this.#streams) {
      if (now - host.lastUsed >= idleMs && this.#mayUnload(host)) this.#streams.delete(name);
    }
  }

  /** Streams loaded in memory right now (see `unloadIdleStreamsMs` and `maxLoadedStreams`). */
  get loadedStreamCount(): number {
    return this.#streams.size;
  }

  /**
   * Whether a stream may be dropped from memory: nobody subscribed, no command queued or running, not
   * loading, and no lease in its state (expiring leases needs the state and its grace timers).
   */
  #mayUnload(host: StreamHost): boolean {
    if (host.subscribers.size > 0 || host.busy) return false;
    const leases = host.domain.leases;
    return !leases || leases.holders(host.state)[Symbol.iterator]().next().done === true;
  }

  /** Makes `name` the most recently used stream (a Map keeps insertion order: O(1)). */
  #moveToEnd(name: string, host: StreamHost): void {
    this.#streams.delete(name);
    this.#streams.set(name, host);
    this.#newestStream = name;
  }

  /**
   * Past `maxLoadedStreams`: unloads the least recently used streams that may be unloaded, until the
   * count is back at the cap. A load looks at {@link MAX_UNLOAD_SCAN} streams at most; a stream in use
   * is moved to the end, so the next look starts with others. Still above the cap (streams in use), it
   * looks at all of them again {@link OVER_CAP_RETRY_MS} later, so a burst does not stay loaded until
   * the idle timeout when no load follows it.
   */
  #unloadOverCap(scanLimit = MAX_UNLOAD_SCAN): void {
    const max = this.settings.maxLoadedStreams;
    if (max === false || this.#streams.size <= max) return;
    let looked = 0;
    for (const [name, host] of this.#streams) {
      if (this.#streams.size <= max || looked++ >= scanLimit) break;
      if (this.#mayUnload(host)) this.#streams.delete(name);
      else this.#moveToEnd(name, host);
    }
    if (this.#streams.size > max && this.#trimTimer === undefined && !this.#closed) {
      this.#trimTimer = this.clock.setTimeout(() => {
        this.#trimTimer = undefined;
        this.#unloadOverCap(this.#streams.size);
      }, OVER_CAP_RETRY_MS);
    }
  }

  reportError(error: unknown, context: string): void {
    const handler = this.#options.onError ?? ((e, c) => console.error(`[lockstep hub] ${c}:`, e));
    handler(error, context);
  }

  /**
   * Closes the services (which may still record their last events), then stops accepting, tells
   * every connection the hub is shutting down, waits for commands in flight and cancels lease timers.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    // Services first, while the hub still takes commands: what they record on the way out (a
    // terminal's exit in the tasks stream) is not lost.
    for (const { service, options } of this.services.implementations) {
      try {
        await options?.close?.();
      } catch (error) {
        this.reportError(error, `closing service ${service.name}`);
      }
    }
    this.#closed = true;
    this.#unwatch?.();
    if (this.#sweepTimer !== undefined) this.clock.clearTimeout(this.#sweepTimer);
    if (this.#trimTimer !== undefined) this.clock.clearTimeout(this.#trimTimer);
    const leasesStopped = this.#leases.stop();
    for (const connection of [...this.#connections]) connection.shutdown('hub is shutting down');
    await Promise.all([...this.#streams.values()].map((host) => host.settled()));
    await leasesStopped;
  }
}

function clientIdTaken(clientId: string): LockstepError {
  return new LockstepError('FORBIDDEN', `client id ${clientId} is in use by another identity`, { clientId });
}

/** Streams a load past `maxLoadedStreams` looks at, at most, for one to unload (the cap is soft). */
const MAX_UNLOAD_SCAN = 32;
/** How soon a hub held above `maxLoadedStreams` by streams in use looks again for idle ones. */
const OVER_CAP_RETRY_MS = 1_000;

/** Payloads nested deeper than this are refused before any recursive work (hashing, encoding) sees them. */
export const MAX_PAYLOAD_DEPTH = 64;

/**
 * True when an array or object sits deeper than `limit` levels. Recursive, but never more than
 * `limit + 1` calls deep (it answers as soon as the limit is passed), and it allocates nothing: the
 * hub checks every command's payload.
 */
function exceedsDepth(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (exceedsDepth(child, limit - 1)) return true;
    return false;
  }
  for (const key in value) {
    if (Object.hasOwn(value, key) && exceedsDepth((value as Record<string, unknown>)[key], limit - 1)) return true;
  }
  return false;
}
