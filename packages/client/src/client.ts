import {
  LockstepError,
  PROTOCOL_VERSION,
  RETRYABLE_CODES,
  TransportError,
  createRandom,
  isCompatibleVersion,
  jsonCodec,
  protocol,
  incompatibleApp,
  randomId,
  streamName,
  systemClock,
  type AnyDomain,
  type AnyService,
  type AnyServiceMethod,
  type AnyServiceNotification,
  type CallArguments,
  type ParamsInput,
  type ResultOutput,
  type ServiceHandlers,
  type Clock,
  type Codec,
  type Event,
  type Random,
  type TimerHandle,
  type Transport,
} from '@lockstep/core';
import { BehaviorSubject, filter, firstValueFrom, type Observable, type Subscription } from 'rxjs';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { OutgoingCalls, type CallOptions } from './outgoingCalls.js';
import { RpcChannel, type AnswerReceiver } from './rpcChannel.js';
import { ServedServices, type ClientCallContext, type ClientNotificationListener } from './servedServices.js';
import { SyncedStream, type PendingCommand, type StreamOwner, type SyncStatus } from './syncedStream.js';
import type { ClientStorage } from './persistence/clientStorage.js';
import { PERSIST_DEFAULTS, Persister, type StorageStatus } from './persistence/persister.js';

export interface ClientOptions {
  /** Opens a new transport to the hub; called for the first connection and for every reconnect. */
  connect: () => Transport | Promise<Transport>;
  /** Stable identity of this client (lease holder). Default: a random id per client instance. */
  clientId?: string;
  /** Sent in `hello`; a function is called on every (re)connect, so tokens can be refreshed. */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** Must match the transport's codec. Default JSON. */
  codec?: Codec;
  clock?: Clock;
  /** Drives backoff jitter; seed it in tests. */
  random?: Random;
  backoff?: BackoffOptions;
  /** A request unanswered this long means the link is dead: reconnect. Default 10 s. */
  requestTimeoutMs?: number;
  /** Delay before re-sending a command the hub answered UNAVAILABLE or RATE_LIMITED. Default 1 s. */
  retryDelayMs?: number;
  /** How long `client.call` waits for an answer by default (across reconnects). Default 30 s. */
  callTimeoutMs?: number;
  /**
   * The application this client is, sent in `hello` (a hub with `app.accepts` refuses other names and
   * versions with INCOMPATIBLE_APP). With `accepts` (a semver range), the client refuses a hub whose
   * hello answer names another application, a version outside the range, or none: INCOMPATIBLE_APP in
   * `status.lastError`, and it tries again with backoff, as after any refused hello.
   */
  app?: protocol.AppRequirement;
  /**
   * Errors the client recovered from: undecodable frames from the hub (default: ignored), and errors
   * thrown by state listeners while the client applied what the hub sent (default: thrown again
   * outside, as an unhandled rejection, so they are not lost).
   */
  onError?: (error: unknown) => void;
  /**
   * Keeps the streams' confirmed states and pending commands across restarts (docs/offline.md):
   * `indexedDbStorage()` from `@lockstep/client/persist-indexeddb` in browsers, `fileStorage()` from
   * `@lockstep/client/persist-file` in Node, or `memoryStorage()`. The client shows what was stored
   * at once (`client.restored`), then catches up from the stored versions. Default: none.
   */
  persistence?: ClientStorage;
  /** Delay between a change and its write to `persistence`; the changes within it are written together. Default 50 ms. */
  persistDelayMs?: number;
}

export const CLIENT_DEFAULTS = { requestTimeoutMs: 10_000, retryDelayMs: 1_000, callTimeoutMs: 30_000 } as const;

export interface ClientStatus {
  /** connecting → online (→ resyncing → online)…, offline between attempts, closed at the end. */
  status: SyncStatus;
  /** Failed connection attempts since the last success. */
  attempt: number;
  lastError: Error | undefined;
  serverId: string | undefined;
  /** Where the streams are kept: `memory` (no `persistence`), `restoring`, `persistent`, or `failed` (see `lastError`; the client goes on in memory). */
  storage: StorageStatus;
}

const NO_SERVICES: ReadonlyMap<string, string> = new Map();

/**
 * The client store: keeps any number of streams in sync with a hub over a transport, reconnecting
 * with backoff, resubscribing from the last confirmed version and re-sending pending commands.
 */
export class LockstepClient implements StreamOwner {
  #clientId: string;
  /** Resolves once what `persistence` held is in the streams (at once without persistence). */
  readonly restored: Promise<void>;
  readonly #persister: Persister | undefined;
  #closing: Promise<void> | undefined;
  readonly #options: ClientOptions;
  readonly #clock: Clock;
  readonly #codec: Codec;
  readonly #random: Random;
  readonly #streams = new Map<string, SyncedStream<AnyDomain>>();
  readonly #streamWatch = new Map<string, Subscription>();
  readonly #status$: BehaviorSubject<ClientStatus>;
  /** The client's calls of hub services, and the services it serves the hub. */
  readonly #calls: OutgoingCalls;
  readonly #served: ServedServices;
  /** Listeners of every service notification from the hub (the cross-tab leader's relay). */
  readonly #notificationTaps = new Set<(method: string, params: unknown) => void>();
  /** The hub's last hello answer, and the services it announced in it. */
  #hello: protocol.HelloResult | undefined;
  #hubServices: ReadonlyMap<string, string> = NO_SERVICES;
  readonly #commandPrefix = randomId(12);
  #commandCounter = 0;
  #channel: RpcChannel | undefined;
  /**
   * With `eventAcks` agreed on the current channel: the commands in flight on it whose ack their
   * events stand for, by command id (see {@link LockstepClient.#settleImplied}).
   */
  #impliedAcks: Map<string, CommandRequest> | undefined;
  /** Hello done on the current channel. */
  #ready = false;
  #epoch: string | undefined;
  #attempt = 0;
  #closed = false;
  #reconnectTimer: TimerHandle | undefined;
  #heartbeatTimer: TimerHandle | undefined;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#codec = options.codec ?? jsonCodec;
    this.#random = options.random ?? createRandom(this.#clock.now());
    this.#clientId = options.clientId ?? `client-${randomId(16)}`;
    this.#status$ = new BehaviorSubject<ClientStatus>({ status: 'connecting', attempt: 0, lastError: undefined, serverId: undefined, storage: 'memory' });
    if (options.app !== undefined) {
      const app = protocol.appRequirementSchema.safeParse(options.app);
      if (!app.success) throw new RangeError(`ClientOptions.app: ${app.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
    }
    this.#calls = new OutgoingCalls(
      {
        channel: () => (this.#ready ? this.#channel : undefined),
        closed: () => this.#closed,
        hubServices: () => this.#hubServices,
      },
      this.#clock,
      options.callTimeoutMs ?? CLIENT_DEFAULTS.callTimeoutMs,
    );
    this.#served = new ServedServices((error) => this.#listenerError(error));
    if (options.persistence) {
      const persister = new Persister(options.persistence, {
        clock: this.#clock,
        flushDelayMs: options.persistDelayMs ?? PERSIST_DEFAULTS.flushDelayMs,
        storageStatus: (storage, error) => this.#setStatus(error ? { storage, lastError: error } : { storage }),
      });
      this.#persister = persister;
      // Connect once the stored versions are known, so every subscription asks for the delta only.
      this.restored = persister.load().then((storedId) => {
        if (options.clientId === undefined && storedId !== undefined) this.#clientId = storedId;
        persister.keepClientId(this.#clientId);
        void this.#connect();
      });
    } else {
      this.restored = Promise.resolve();
      void this.#connect();
    }
  }

  /** Stable identity of this client: `ClientOptions.clientId`, else the stored one, else a random id. */
  get clientId(): string {
    return this.#clientId;
  }

  /**
   * Resolves once every change so far is in `persistence` (at once without it). After `close()`,
   * once the last records are written and the storage closed.
   */
  flush(): Promise<void> {
    return this.#closing ?? this.#persister?.flush() ?? Promise.resolve();
  }

  get status$(): Observable<ClientStatus> {
    return this.#status$.asObservable();
  }

  get status(): ClientStatus {
    return this.#status$.value;
  }

  /**
   * Opens (or returns the already open) synced stream `<domain>/<key>`. A stream whose subscription
   * the hub refused or ended (`stream.refused`: FORBIDDEN, a grant revoked) is asked for again.
   */
  stream<D extends AnyDomain>(domain: D, key: string): SyncedStream<D> {
    const name = streamName(domain.name, key);
    const existing = this.#streams.get(name);
    if (existing) {
      if (existing.domain !== domain) throw new RangeError(`stream ${name} is already open with another domain definition`);
      if (existing.refused && this.#ready) this.#subscribe(existing);
      return existing as unknown as SyncedStream<D>;
    }
    const stream = new SyncedStream(domain, name, this);
    this.#streams.set(name, stream);
    this.#persister?.track(stream);
    this.#streamWatch.set(
      name,
      stream.status$.subscribe(() => this.#refreshStatus()),
    );
    if (this.#ready) this.#subscribe(stream);
    return stream;
  }

  get streams(): ReadonlyMap<string, SyncedStream<AnyDomain>> {
    return this.#streams;
  }

  // --- services (docs/rpc.md) -------------------------------------------------------------------

  /**
   * Calls a method of a service the hub serves, on the client's connection, and resolves with the
   * result, validated with the method's result schema. Rejects with a LockstepError, never hangs:
   *
   * - METHOD_NOT_FOUND at once (nothing sent) when the hub's hello did not announce a version of the
   *   service compatible with this definition's (`data.reason`: `notServed`, `incompatibleVersion`);
   * - UNAVAILABLE at once when there is no connection ready (`reason: "notConnected"`) or the client is
   *   closed (`closed`); and when the connection drops before the answer (`connectionLost`: it may have
   *   run) — unless the method is `idempotent`: then it is re-sent, with the same id, once connected again;
   * - TIMEOUT after `timeoutMs` (default `callTimeoutMs`, 30 s), CANCELLED when `signal` aborts — both
   *   also tell the hub (`$/cancelRequest`);
   * - the hub's own refusal: INVALID_PARAMS, FORBIDDEN, RATE_LIMITED, or what the handler threw.
   */
  call<M extends AnyServiceMethod>(method: M, ...[params, options]: CallArguments<M, CallOptions>): Promise<ResultOutput<M>> {
    return this.#calls.call(method, params, options) as Promise<ResultOutput<M>>;
  }

  /**
   * Serves a service to the hub: its methods are answered by `handlers` (validated params in, the
   * result out; a LockstepError thrown is the error answer, anything else INTERNAL_ERROR, reported to
   * `onError`). It is announced in `hello`: call it right after `createClient` to have it in the first
   * one; served later, the hub learns of it at the next connection. Returns the function that stops
   * serving it.
   */
  serve<S extends AnyService>(service: S, handlers: ServiceHandlers<S, ClientCallContext>): () => void {
    return this.#served.serve(service, handlers);
  }

  /** Listens to a notification of a service from the hub (validated first; invalid ones go to `onError`). Returns the function that stops. */
  on<N extends AnyServiceNotification>(notification: N, listener: ClientNotificationListener<N>): () => void {
    return this.#served.on(notification, listener);
  }

  /**
   * Hears every service notification the hub sends this client, unvalidated, before the listeners of
   * `on`: what the cross-tab leader forwards to its follower tabs. Returns the function that stops.
   * @internal
   */
  onServiceNotification(listener: (method: string, params: unknown) => void): () => void {
    this.#notificationTaps.add(listener);
    return () => this.#notificationTaps.delete(listener);
  }

  /**
   * Opens `persistence` again after it could not be opened at start because another tab held it
   * (`LOCKED`): the cross-tab leader taking the dead leader's storage over. The stored commands join
   * the open streams' pending ones (by id: one already pending is not added twice) and are sent; the
   * streams' live state stays; from now on this client writes to the storage. `locked`: still held
   * elsewhere (try later); `none`: nothing to open (no persistence, already open, closed, or it failed
   * for another reason).
   * @internal
   */
  async adoptStorage(): Promise<'opened' | 'locked' | 'none'> {
    const persister = this.#persister;
    if (!persister || this.#closed) return 'none';
    const outcome = await persister.reopen([...this.#streams.values()]);
    if (outcome !== 'opened' || this.#closed) return outcome;
    persister.keepClientId(this.#clientId);
    for (const stream of this.#streams.values()) {
      for (const command of stream.pendingCommands) if (!command.ack) this.send(stream, command);
    }
    return 'opened';
  }

  /** Sends a notification to the hub; false (nothing sent) without a connection ready. */
  notify<N extends AnyServiceNotification>(notification: N, params: ParamsInput<N>): boolean {
    const channel = this.#ready ? this.#channel : undefined;
    return channel?.notify(notification.method, params) ?? false;
  }

  /** True when the hub's last hello announced a version of `service` compatible with this definition's. */
  supports(service: AnyService): boolean {
    const served = this.#hubServices.get(service.name);
    return served !== undefined && isCompatibleVersion(served, service.version);
  }

  /** The hub's answer to the last `hello` (its services, its app, its capabilities); undefined before the first. */
  get serverInfo(): protocol.HelloResult | undefined {
    return this.#hello;
  }

  /** Resolves when online, every stream is in sync and no command is pending. */
  whenIdle(): Promise<void> {
    return firstValueFrom(this.#status$.pipe(filter(() => this.#isIdle()))).then(() => undefined);
  }

  #isIdle(): boolean {
    if (this.#status$.value.status !== 'online') return false;
    for (const stream of this.#streams.values()) {
      if (!stream.synced || stream.getStatus().pending > 0) return false;
    }
    return true;
  }

  /** Disconnects for good. Pending commands are rejected with a TransportError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The stored records keep the pending commands: rejected here, they are sent at the next start.
    this.#closing = this.#persister?.close();
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#stopHeartbeat();
    this.#channel?.close('client closed');
    this.#calls.close();
    const error = new TransportError('closed', 'client closed');
    for (const stream of this.#streams.values()) {
      for (const command of [...stream.pendingCommands]) stream.onCommandFailed(command, error);
    }
    this.#setStatus({ status: 'closed' });
    for (const watch of this.#streamWatch.values()) watch.unsubscribe();
    for (const stream of [...this.#streams.values()]) stream.close();
    this.#status$.complete();
  }

  /** Drops the current connection as if the network failed (reconnects with backoff). */
  disconnect(reason = 'disconnected by the application'): void {
    this.#channel?.close(reason);
  }

  // --- StreamOwner ------------------------------------------------------------------------------

  now(): number {
    return this.#clock.now();
  }

  newCommandId(): string {
    return `${this.#commandPrefix}-${(this.#commandCounter++).toString(36)}`;
  }

  connectionStatus(): SyncStatus {
    const status = this.#status$.value.status;
    return status === 'resyncing' ? 'online' : status;
  }

  send(stream: SyncedStream<AnyDomain>, command: PendingCommand): void {
    const channel = this.#channel;
    if (!channel || !this.#ready || command.sent) return;
    command.sent = true;
    const params: protocol.CommandParams = { id: command.id, stream: stream.name, type: command.type, payload: command.payload };
    if (command.expectedVersion !== undefined) params.expectedVersion = command.expectedVersion;
    const implied = this.#impliedAcks;
    if (implied && command.explicitAck) params.explicitAck = true;
    // One small object per command hears the answer: no promise, no closures.
    const request = new CommandRequest(this.#commandAnswers, channel, stream, command);
    const requestId = channel.send(protocol.Methods.command, params, request);
    if (implied && !command.explicitAck && requestId >= 0) request.awaitEvents(implied, requestId);
  }

  /**
   * A live `events` notification stands for the acks of this channel's commands whose events it
   * carries (`eventAcks`): the hub sends a live broadcast with every event of each command in it, the
   * events of one command one after the other, so a command's ack version is that of its last event.
   * Called once the stream has taken the events, so the ack finds them in its confirmed state.
   */
  #settleImplied(implied: Map<string, CommandRequest>, stream: string, events: readonly Event[]): void {
    for (let i = 0; i < events.length; i++) {
      const commandId = events[i]!.commandId;
      if (commandId === undefined || commandId === events[i + 1]?.commandId) continue;
      const request = implied.get(commandId);
      if (request === undefined) continue;
      // Each settlement reaches state listeners; one that throws must not cost the others (as with
      // acks, each of which was a message of its own).
      try {
        request.impliedBy(stream, events[i]!.version);
      } catch (error) {
        this.#listenerError(error);
      }
    }
  }

  /**
   * A frame from the hub this client could not read. One it refused for its size (PAYLOAD_TOO_LARGE)
   * may have held any stream's events, an answer or a page: the error is the client's `lastError` and
   * every stream's, which resync — a stream never waits without saying why. (The hub cuts pages below
   * the `maxFrameBytes` the client announced; only a single event larger than that is refused.)
   */
  #protocolError(error: LockstepError): void {
    this.#options.onError?.(error);
    if (error.code !== 'PAYLOAD_TOO_LARGE') return;
    this.#setStatus({ lastError: error });
    for (const stream of this.#streams.values()) stream.onFrameRefused(error);
  }

  /** Code called while handling a message (a state listener) threw: reported, and the client goes on. */
  #listenerError(error: unknown): void {
    if (this.#options.onError) this.#options.onError(error);
    else rethrowLater(error);
  }

  /** What a {@link CommandRequest} does with the hub's answer (one set per client). */
  readonly #commandAnswers: CommandAnswers = {
    acknowledged: (stream, command, result) => {
      const ack = protocol.parseCommandResult(result);
      if (ack.success) stream.onAck(command, ack.data);
      else this.#options.onError?.(new LockstepError('INVALID_REQUEST', 'malformed command answer from the hub'));
    },
    failed: (channel, stream, command, error) => {
      if (error instanceof TransportError) {
        // Re-sent after reconnecting — unless its stream was closed meanwhile and never will be.
        if (stream.closed) stream.onCommandFailed(command, error);
        return;
      }
      const failure = LockstepError.from(error);
      if (RETRYABLE_CODES.has(failure.code) && !stream.closed) {
        command.sent = false;
        this.#clock.setTimeout(() => {
          if (this.#channel === channel) this.send(stream, command);
        }, this.#options.retryDelayMs ?? CLIENT_DEFAULTS.retryDelayMs);
        return;
      }
      stream.onCommandFailed(command, failure);
    },
  };

  resubscribe(stream: SyncedStream<AnyDomain>): void {
    if (this.#ready && this.#streams.get(stream.name) === stream) this.#subscribe(stream);
  }

  release(stream: SyncedStream<AnyDomain>): void {
    if (this.#streams.get(stream.name) !== stream) return;
    this.#streams.delete(stream.name);
    this.#streamWatch.get(stream.name)?.unsubscribe();
    this.#streamWatch.delete(stream.name);
    // Commands in flight still get their answer; those never sent never will be.
    const unsent = new TransportError('closed', `stream ${stream.name} was closed before the command could be sent`);
    for (const command of [...stream.pendingCommands]) if (!command.sent) stream.onCommandFailed(command, unsent);
    this.#persister?.untrack(stream);
    if (this.#ready) this.#channel?.request(protocol.Methods.unsubscribe, { stream: stream.name }).catch(() => {});
  }

  // --- connection lifecycle -------------------------------------------------------------------

  async #connect(): Promise<void> {
    this.#reconnectTimer = undefined;
    if (this.#closed) return;
    this.#setStatus({ status: 'connecting' });
    let transport: Transport;
    try {
      transport = await this.#options.connect();
      const state = await firstValueFrom(transport.state.pipe(filter((s) => s.status !== 'connecting')));
      if (state.status === 'closed') throw new TransportError('closed', `could not connect: ${state.reason}`);
    } catch (error) {
      this.#retryLater(error);
      return;
    }
    if (this.#closed) {
      transport.close('client closed');
      return;
    }
    const channel: RpcChannel = new RpcChannel(transport, {
      codec: this.#codec,
      clock: this.#clock,
      requestTimeoutMs: this.#options.requestTimeoutMs ?? CLIENT_DEFAULTS.requestTimeoutMs,
      onNotification: (method, params) => this.#onNotification(method, params),
      onRequest: (id, method, params) => this.#served.handle(channel, id, method, params),
      onResponse: (id, answer) => this.#calls.onResponse(id, answer),
      onClose: (reason) => this.#onChannelClosed(channel, reason),
      onProtocolError: (error) => this.#protocolError(error),
      onListenerError: (error) => this.#listenerError(error),
    });
    this.#channel = channel;
    try {
      const token = typeof this.#options.token === 'function' ? await this.#options.token() : this.#options.token;
      const params: protocol.HelloParams = { protocol: PROTOCOL_VERSION, clientId: this.clientId, capabilities: { eventAcks: true, snapshotPages: true } };
      if (this.#codec.maxFrameBytes !== undefined) params.capabilities!['maxFrameBytes'] = this.#codec.maxFrameBytes;
      if (this.#codec.join) params.capabilities!['batch'] = true;
      if (token !== undefined) params.token = token;
      const services = this.#served.announced();
      if (services.length > 0) params.services = services;
      const { app } = this.#options;
      if (app) params.app = { name: app.name, version: app.version };
      const hello = protocol.helloResultSchema.parse(await channel.request(protocol.Methods.hello, params));
      if (channel.closed) return;
      const refusal = incompatibleApp(app, hello.app, 'client');
      if (refusal) throw refusal;
      this.#onHello(channel, hello);
    } catch (error) {
      // A refused hello (bad token, unsupported protocol) is retried with backoff: the token may be
      // refreshed and the hub upgraded; the error stays visible in the status meanwhile.
      // Forget the channel before closing it, so its close does not replace the refusal as lastError.
      if (this.#channel === channel) this.#channel = undefined;
      if (!channel.closed) channel.close('hello failed');
      this.#retryLater(error);
    }
  }

  #onHello(channel: RpcChannel, hello: protocol.HelloResult): void {
    if (this.#epoch !== undefined && hello.epoch !== this.#epoch) {
      // The hub's log is not the one our state came from: start over rather than keep stale state.
      for (const stream of this.#streams.values()) stream.reset();
    }
    this.#epoch = hello.epoch;
    this.#persister?.onHello(hello.epoch);
    this.#attempt = 0;
    this.#hello = hello;
    this.#hubServices = hello.services === undefined ? NO_SERVICES : new Map(hello.services.map(({ name, version }) => [name, version]));
    if (hello.capabilities['batch'] === true) channel.startBatching();
    this.#impliedAcks = hello.capabilities['eventAcks'] === true ? new Map() : undefined;
    this.#ready = true;
    // Subscribe first, so the status goes connecting → resyncing → online, never online while the
    // streams still hold what they had before the connection.
    for (const stream of this.#streams.values()) this.#subscribe(stream);
    const synced = [...this.#streams.values()].every((stream) => stream.synced);
    this.#setStatus({ status: synced ? 'online' : 'resyncing', attempt: 0, lastError: undefined, serverId: hello.serverId });
    for (const stream of this.#streams.values()) {
      for (const command of stream.pendingCommands) if (!command.ack) this.send(stream, command);
    }
    this.#calls.onReady(channel);
    this.#startHeartbeat(channel, hello.heartbeatMs);
  }

  #subscribe(stream: SyncedStream<AnyDomain>): void {
    const channel = this.#channel;
    if (!channel) return;
    const { params, epoch } = stream.beginSubscribe();
    channel.request<unknown>(protocol.Methods.subscribe, params).then(
      (result) => {
        const parsed = protocol.subscribeResultSchema.safeParse(result);
        if (parsed.success) stream.onSubscribed(epoch, parsed.data as protocol.SubscribeResult);
        else stream.onSubscribeFailed(epoch, new LockstepError('INVALID_REQUEST', 'malformed subscribe answer from the hub'));
      },
      (error: unknown) => {
        if (error instanceof TransportError) return;
        stream.onSubscribeFailed(epoch, LockstepError.from(error));
      },
    );
  }

  #onNotification(method: string, params: unknown): void {
    if (method === protocol.Notifications.events) {
      const parsed = protocol.parseEventsParams(params);
      if (!parsed.success) {
        this.#options.onError?.(new LockstepError('INVALID_PARAMS', 'malformed events notification from the hub'));
        return;
      }
      const { stream, events, catchUp } = parsed.data;
      const implied = this.#impliedAcks;
      try {
        this.#streams.get(stream)?.onEvents(events);
      } finally {
        // Even when a state listener threw: these commands get no other answer.
        if (catchUp !== true && implied !== undefined && implied.size > 0) this.#settleImplied(implied, stream, events);
      }
    } else if (method === protocol.Notifications.shutdown) {
      // The hub is going away on purpose: reconnect (with backoff) rather than wait for the close.
      this.#channel?.close('hub is shutting down');
    } else if (method === protocol.Notifications.unsubscribed) {
      // The hub ended the subscription for good (the grant was revoked): no resubscribe.
      const parsed = protocol.unsubscribedParamsSchema.safeParse(params);
      if (!parsed.success) {
        this.#options.onError?.(new LockstepError('INVALID_PARAMS', 'malformed unsubscribed notification from the hub'));
        return;
      }
      this.#streams.get(parsed.data.stream)?.onUnsubscribed(LockstepError.fromWire(parsed.data.error));
    } else if (method === protocol.Notifications.snapshot) {
      const parsed = protocol.snapshotParamsSchema.safeParse(params);
      if (!parsed.success) {
        this.#options.onError?.(new LockstepError('INVALID_PARAMS', 'malformed snapshot notification from the hub'));
        return;
      }
      this.#streams.get(parsed.data.stream)?.onSnapshotPage(parsed.data);
    } else if (method === protocol.Notifications.resync) {
      const parsed = protocol.resyncParamsSchema.safeParse(params);
      const stream = parsed.success ? this.#streams.get(parsed.data.stream) : undefined;
      if (stream) this.#subscribe(stream);
    } else if (method === protocol.CANCEL_REQUEST) {
      const cancel = protocol.cancelRequestParamsSchema.safeParse(params);
      if (cancel.success && this.#channel) this.#served.cancel(this.#channel, cancel.data.id);
    } else {
      for (const tap of this.#notificationTaps) {
        try {
          tap(method, params);
        } catch (error) {
          this.#listenerError(error);
        }
      }
      this.#served.deliver(method, params);
    }
  }

  #onChannelClosed(channel: RpcChannel, reason: string): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    this.#impliedAcks = undefined;
    this.#ready = false;
    this.#stopHeartbeat();
    this.#calls.onDisconnected(channel);
    this.#served.onDisconnected(channel);
    for (const stream of this.#streams.values()) stream.onDisconnected();
    if (!this.#closed) this.#retryLater(new TransportError('closed', reason));
  }

  #retryLater(error: unknown): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return;
    const lastError = error instanceof Error ? error : new Error(String(error));
    this.#setStatus({ status: 'offline', attempt: this.#attempt, lastError });
    const delay = backoffDelay(this.#attempt++, this.#options.backoff ?? {}, this.#random);
    this.#reconnectTimer = this.#clock.setTimeout(() => void this.#connect(), delay);
  }

  #startHeartbeat(channel: RpcChannel, heartbeatMs: number): void {
    this.#stopHeartbeat();
    if (heartbeatMs <= 0) return;
    const beat = () => {
      this.#heartbeatTimer = this.#clock.setTimeout(() => {
        if (this.#channel !== channel) return;
        // No answer within the request timeout closes the channel: dead-peer detection.
        channel.request(protocol.Methods.ping, {}).catch(() => {});
        beat();
      }, heartbeatMs);
    };
    beat();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #setStatus(change: Partial<ClientStatus>): void {
    if (this.#status$.closed) return;
    const next = { ...this.#status$.value, ...change };
    this.#status$.next(next);
    for (const stream of this.#streams.values()) stream.notifyConnectionStatus();
  }

  #refreshStatus(): void {
    const current = this.#status$.value;
    // Without a ready channel the status belongs to the connection lifecycle (a lost link is
    // offline, not resyncing).
    if (!this.#ready || (current.status !== 'online' && current.status !== 'resyncing')) return;
    let synced = true;
    for (const stream of this.#streams.values()) if (!stream.synced) synced = false;
    const status: SyncStatus = synced ? 'online' : 'resyncing';
    if (status !== current.status || this.#isIdle()) this.#status$.next({ ...current, status });
  }
}

/** Creates a client and starts connecting. */
export function createClient(options: ClientOptions): LockstepClient {
  return new LockstepClient(options);
}

interface CommandAnswers {
  acknowledged(stream: SyncedStream<AnyDomain>, command: PendingCommand, result: unknown): void;
  failed(channel: RpcChannel, stream: SyncedStream<AnyDomain>, command: PendingCommand, error: Error): void;
}

/** The receiver of one command's answer, handed to the channel (see `RpcChannel.send`). */
class CommandRequest implements AnswerReceiver {
  /** With `eventAcks`: the channel's commands awaiting their events, which this one is in, and its request id. */
  #implied: Map<string, CommandRequest> | undefined;
  #requestId = -1;

  constructor(
    private readonly answers: CommandAnswers,
    private readonly channel: RpcChannel,
    private readonly stream: SyncedStream<AnyDomain>,
    private readonly command: PendingCommand,
  ) {}

  /** Its events, arriving live on this channel, will stand for its ack. */
  awaitEvents(implied: Map<string, CommandRequest>, requestId: number): void {
    this.#implied = implied;
    this.#requestId = requestId;
    implied.set(this.command.id, this);
  }

  /** A live notification of `stream` carried its events, the last at `version`: that is its ack. */
  impliedBy(stream: string, version: number): void {
    if (stream !== this.stream.name || !this.channel.forget(this.#requestId)) return;
    this.#leave();
    this.stream.onAck(this.command, { id: this.command.id, stream, version });
  }

  resolve(result: unknown): void {
    this.#leave();
    this.answers.acknowledged(this.stream, this.command, result);
  }

  reject(error: Error): void {
    this.#leave();
    this.answers.failed(this.channel, this.stream, this.command, error);
  }

  #leave(): void {
    if (this.#implied?.get(this.command.id) === this) this.#implied.delete(this.command.id);
    this.#implied = undefined;
  }
}

/** Throws `error` outside the current call, where it surfaces as an unhandled rejection. */
function rethrowLater(error: unknown): void {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what a listener threw, as it threw it
  void Promise.reject(error);
}
