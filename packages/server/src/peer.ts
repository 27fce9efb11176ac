import {
  LockstepError,
  cancelledCall,
  isCompatibleVersion,
  notServedError,
  protocol,
  settleCall,
  type CallArguments,
  type AnyServiceMethod,
  type AnyServiceNotification,
  type AnyService,
  type Clock,
  type ParamsInput,
  type ResultOutput,
  type TimerHandle,
} from '@lockstep/core';
import type { AccessAction, Identity } from './identity.js';

/** Picks a connection: by its `sessionId`, or by the `clientId` it said `hello` with (the most recently opened of that client's connections). */
export type PeerTarget = { sessionId: string } | { clientId: string };

/** Options of one hub → client call. */
export interface HubCallOptions {
  /** Rejects with TIMEOUT (and sends `$/cancelRequest`) when no answer came within this. Default: the hub's `callTimeoutMs` (30 s). */
  timeoutMs?: number;
  /** Aborting it rejects the call with CANCELLED at once and sends `$/cancelRequest`. */
  signal?: AbortSignal;
}

/**
 * One client connection, as services see it: who is on the other end, what it serves, and the typed
 * ways to reach it. A handler gets the connection it was called on as `context.peer`; application
 * code finds one with `hub.peer({clientId})` or `hub.peers()`.
 */
export interface Peer {
  /** Unique per connection. */
  readonly sessionId: string;
  /** The client id from `hello`. */
  readonly clientId: string;
  readonly identity: Identity | undefined;
  /** The services the client announced in `hello` (name → version): the hub may call their methods. */
  readonly services: ReadonlyMap<string, string>;
  /** The client's application, when its `hello` named one. */
  readonly app: protocol.AppInfo | undefined;
  /** Bytes the connection holds unsent (0 when the transport cannot tell): pace what you send by it. */
  readonly bufferedAmount: number;
  readonly closed: boolean;
  /** True when the client announced a version of `service` compatible with this definition's. */
  serves(service: AnyService): boolean;
  /**
   * Calls a method the client serves and resolves with its result, validated with the method's result
   * schema. Rejects with a LockstepError: METHOD_NOT_FOUND at once (nothing sent) when the client did
   * not announce a compatible version of the service; UNAVAILABLE when the connection is closed or
   * closes before the answer; TIMEOUT; CANCELLED; or the client's own error.
   */
  call<M extends AnyServiceMethod>(method: M, ...args: CallArguments<M, HubCallOptions>): Promise<ResultOutput<M>>;
  /** Sends a notification; false (nothing sent) once the connection is closed. The receiver validates the params. */
  notify<N extends AnyServiceNotification>(notification: N, params: ParamsInput<N>): boolean;
  /** Throws FORBIDDEN unless the hub's `authorize` hook allows `action` on `resource` for this connection's identity. */
  authorize(resource: string, action: AccessAction): Promise<void>;
}

/** What a {@link ConnectionPeer} needs of its connection (not exported from the package). */
export interface PeerLink {
  readonly sessionId: string;
  readonly clientId: string | undefined;
  readonly identity: Identity | undefined;
  readonly peerServices: ReadonlyMap<string, string>;
  readonly peerApp: protocol.AppInfo | undefined;
  readonly bufferedAmount: number;
  readonly isClosed: boolean;
  sendMessage(message: protocol.Message): void;
  authorize(resource: string, action: AccessAction): Promise<void>;
}

interface PendingCall {
  method: AnyServiceMethod;
  resolve(result: unknown): void;
  reject(error: LockstepError): void;
  timer: TimerHandle;
  /** Removes the abort listener from the caller's signal. */
  unlisten: (() => void) | undefined;
}

/**
 * The {@link Peer} of one connection, made when a service first needs it (not exported from the
 * package). It keeps the hub's calls to the client awaiting their answers (ids counted from 1 per
 * connection) and the client's calls being handled, so `$/cancelRequest` can reach either.
 */
export class ConnectionPeer implements Peer {
  readonly #link: PeerLink;
  readonly #clock: Clock;
  readonly #defaultTimeoutMs: number;
  #nextId = 1;
  #calls: Map<number, PendingCall> | undefined;
  /** Client → hub calls being handled, by request id: what `$/cancelRequest` aborts. */
  #handling: Map<protocol.RequestId, AbortController> | undefined;

  constructor(link: PeerLink, clock: Clock, defaultTimeoutMs: number) {
    this.#link = link;
    this.#clock = clock;
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  get sessionId(): string {
    return this.#link.sessionId;
  }
  get clientId(): string {
    return this.#link.clientId ?? '';
  }
  get identity(): Identity | undefined {
    return this.#link.identity;
  }
  get services(): ReadonlyMap<string, string> {
    return this.#link.peerServices;
  }
  get app(): protocol.AppInfo | undefined {
    return this.#link.peerApp;
  }
  get bufferedAmount(): number {
    return this.#link.bufferedAmount;
  }
  get closed(): boolean {
    return this.#link.isClosed;
  }

  serves(service: AnyService): boolean {
    const served = this.services.get(service.name);
    return served !== undefined && isCompatibleVersion(served, service.version);
  }

  authorize(resource: string, action: AccessAction): Promise<void> {
    return this.#link.authorize(resource, action);
  }

  notify<N extends AnyServiceNotification>(notification: N, params: ParamsInput<N>): boolean {
    if (this.#link.isClosed) return false;
    this.#link.sendMessage(params === undefined ? { jsonrpc: '2.0', method: notification.method } : { jsonrpc: '2.0', method: notification.method, params });
    return true;
  }

  call<M extends AnyServiceMethod>(method: M, ...[params, options = {}]: CallArguments<M, HubCallOptions>): Promise<ResultOutput<M>> {
    if (this.#link.isClosed)
      return Promise.reject(new LockstepError('UNAVAILABLE', `${method.method}: the connection is closed`, { reason: 'connectionClosed' }));
    const served = this.services.get(method.service);
    if (served === undefined || !isCompatibleVersion(served, method.version)) return Promise.reject(notServedError(method, served));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(cancelledCall(method));
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    return new Promise<ResultOutput<M>>((resolve, reject) => {
      const pending: PendingCall = {
        method,
        resolve: resolve,
        reject,
        timer: this.#clock.setTimeout(
          () => this.#abandon(id, new LockstepError('TIMEOUT', `${method.method}: no answer within ${timeoutMs} ms`, { method: method.method, timeoutMs })),
          timeoutMs,
        ),
        unlisten: undefined,
      };
      if (signal) {
        const onAbort = () => this.#abandon(id, cancelledCall(method));
        signal.addEventListener('abort', onAbort, { once: true });
        pending.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      (this.#calls ??= new Map()).set(id, pending);
      this.#link.sendMessage(params === undefined ? { jsonrpc: '2.0', id, method: method.method } : { jsonrpc: '2.0', id, method: method.method, params });
    });
  }

  /** True when `id` is a hub → client call awaiting its answer. */
  awaits(id: protocol.RequestId): boolean {
    return typeof id === 'number' && this.#calls?.has(id) === true;
  }

  /** The client answered call `id` (a response: `result` or `error`). An answer to nothing pending is ignored. */
  settle(id: protocol.RequestId, answer: { result?: unknown; error?: protocol.ErrorResponse['error'] | undefined }): void {
    const pending = this.#take(id);
    if (pending) settleCall(pending, answer, 'client');
  }

  /** Call `id` got a message that is not an answer: it fails (the client has a bug), and nothing is sent back. */
  fail(id: protocol.RequestId, error: LockstepError): void {
    this.#take(id)?.reject(error);
  }

  /** A client → hub call starts being handled: the signal its handler gets. */
  beginHandling(id: protocol.RequestId): AbortSignal {
    const controller = new AbortController();
    (this.#handling ??= new Map()).set(id, controller);
    return controller.signal;
  }

  endHandling(id: protocol.RequestId, signal: AbortSignal): void {
    if (this.#handling?.get(id)?.signal === signal) this.#handling.delete(id);
  }

  /** `$/cancelRequest` from the client: aborts the handler of its call `id`, if one runs. */
  cancelHandling(id: protocol.RequestId): void {
    this.#handling?.get(id)?.abort(new LockstepError('CANCELLED', 'the caller cancelled the call'));
  }

  /** The connection closed: every hub → client call fails with UNAVAILABLE, every handler's signal aborts. */
  onClosed(): void {
    const calls = this.#calls;
    this.#calls = undefined;
    for (const pending of calls?.values() ?? []) {
      this.#release(pending);
      pending.reject(new LockstepError('UNAVAILABLE', `${pending.method.method}: the connection closed before the answer`, { reason: 'connectionClosed' }));
    }
    const handling = this.#handling;
    this.#handling = undefined;
    for (const controller of handling?.values() ?? [])
      controller.abort(new LockstepError('UNAVAILABLE', 'the connection closed', { reason: 'connectionClosed' }));
  }

  /** Gives up on call `id` (timeout, abort): tells the client with `$/cancelRequest`, rejects it. */
  #abandon(id: number, error: LockstepError): void {
    const pending = this.#take(id);
    if (!pending) return;
    if (!this.#link.isClosed) this.#link.sendMessage({ jsonrpc: '2.0', method: protocol.CANCEL_REQUEST, params: { id } });
    pending.reject(error);
  }

  #take(id: protocol.RequestId): PendingCall | undefined {
    if (typeof id !== 'number') return undefined;
    const pending = this.#calls?.get(id);
    if (!pending) return undefined;
    this.#calls!.delete(id);
    this.#release(pending);
    return pending;
  }

  #release(pending: PendingCall): void {
    this.#clock.clearTimeout(pending.timer);
    pending.unlisten?.();
  }
}
