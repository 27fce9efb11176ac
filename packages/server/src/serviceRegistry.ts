import {
  LockstepError,
  isServiceMethod,
  protocol,
  serviceInfo,
  type AnyService,
  type AnyServiceMethod,
  type AnyServiceNotification,
  type ParamsOutput,
  type ServiceHandlers,
} from '@lockstep/core';
import type { AccessAction, Identity } from './identity.js';
import type { ConnectionPeer, Peer } from './peer.js';

/** What a hub-side handler knows of the call it answers. */
export interface ServiceContext {
  /** The connection the call came on (to notify it, call it back, read its identity). */
  readonly peer: Peer;
  readonly identity: Identity | undefined;
  readonly clientId: string;
  readonly sessionId: string;
  /**
   * The request's id. `@lockstep/client` gives each call an id unique for the client and keeps it when
   * it re-sends an idempotent call after a reconnect, so `(clientId, callId)` names one call.
   */
  readonly callId: protocol.RequestId;
  /** Aborted when the caller cancels (`$/cancelRequest`, its timeout) or its connection closes. */
  readonly signal: AbortSignal;
}

/** What a hub-side notification listener knows. */
export interface NotificationContext {
  readonly peer: Peer;
  readonly identity: Identity | undefined;
  readonly clientId: string;
  readonly sessionId: string;
}

export type NotificationListener<N extends AnyServiceNotification> = (params: ParamsOutput<N>, context: NotificationContext) => void;

/** How a hub serves one service. */
export interface ServeOptions {
  /**
   * Who may call the service's methods: answer false to refuse with FORBIDDEN (`{method, action: "call"}`).
   * Default: the hub's `authorize` hook, asked with the method's wire name and the action `call`
   * (`authorize(identity, "orchestrate.route", "call")`); without a hook, everyone greeted.
   * A service that checks each resource in its handlers (the terminal service) says `() => true`.
   */
  authorize?: (identity: Identity | undefined, method: string) => boolean | Promise<boolean>;
  /**
   * A connection that used services closed — one that called a method or sent a notification someone
   * listens to, or that the hub called, notified or looked up (`hub.peer`, `hub.peers`). Every
   * service's hook hears it: release what the service holds for `peer.sessionId`.
   */
  onPeerClosed?(peer: Peer): void;
  /** `hub.reauthorize()` was called for this connection: check again what the service gives it. */
  onReauthorize?(peer: Peer): void | Promise<void>;
  /** The hub is closing (before it stops taking commands): stop everything. */
  close?(): void | Promise<void>;
}

/** A service with its handlers, ready to be served (`HubOptions.services`, or `hub.serve`). */
export interface ServiceImplementation<S extends AnyService = AnyService> {
  readonly service: S;
  readonly handlers: ServiceHandlers<S, ServiceContext>;
  readonly options?: ServeOptions | undefined;
}

/** Pairs a service with its handlers (and options), typed: for `HubOptions.services`. */
export function implement<S extends AnyService>(service: S, handlers: ServiceHandlers<S, ServiceContext>, options?: ServeOptions): ServiceImplementation<S> {
  return { service, handlers, options };
}

/** What the registry needs of the hub while it answers a call (not exported from the package). */
export interface ServiceHost {
  authorize(identity: Identity | undefined, resource: string, action: AccessAction): Promise<void>;
  reportError(error: unknown, context: string): void;
}

interface Served {
  implementation: ServiceImplementation;
  member: AnyServiceMethod;
  handler: (params: unknown, context: ServiceContext) => unknown;
}

/** The services a hub serves and the notifications it listens to, by wire name (not exported from the package). */
export class ServiceRegistry {
  readonly #implementations: ServiceImplementation[] = [];
  readonly #methods = new Map<string, Served>();
  readonly #listeners = new Map<string, { notification: AnyServiceNotification; listeners: Set<NotificationListener<AnyServiceNotification>> }>();
  #announced: protocol.ServiceInfo[] | undefined;

  get implementations(): readonly ServiceImplementation[] {
    return this.#implementations;
  }

  /** Adds a service; throws when its name is served already or a method has no handler. */
  add(implementation: ServiceImplementation): void {
    const { service, handlers } = implementation;
    if (this.#implementations.some((served) => served.service.name === service.name)) throw new RangeError(`service ${service.name} is already served`);
    const methods: Served[] = [];
    for (const member of service.members.values()) {
      if (!isServiceMethod(member)) continue;
      const handler = (handlers as Record<string, unknown>)[member.name];
      if (typeof handler !== 'function') throw new TypeError(`service ${service.name}: no handler for ${member.name}`);
      methods.push({ implementation, member, handler: handler as Served['handler'] });
    }
    this.#implementations.push(implementation);
    for (const served of methods) this.#methods.set(served.member.method, served);
    this.#announced = undefined;
  }

  /** What `hello` announces. */
  announced(): protocol.ServiceInfo[] {
    return (this.#announced ??= this.#implementations.map(({ service }) => serviceInfo(service)));
  }

  has(method: string): boolean {
    return this.#methods.has(method);
  }

  on<N extends AnyServiceNotification>(notification: N, listener: NotificationListener<N>): () => void {
    let entry = this.#listeners.get(notification.method);
    if (!entry) this.#listeners.set(notification.method, (entry = { notification, listeners: new Set() }));
    const added = listener as unknown as NotificationListener<AnyServiceNotification>;
    entry.listeners.add(added);
    return () => {
      entry.listeners.delete(added);
      if (entry.listeners.size === 0 && this.#listeners.get(notification.method) === entry) this.#listeners.delete(notification.method);
    };
  }

  /** True when someone listens to `method` (a notification): only then is it parsed. */
  listens(method: string): boolean {
    return this.#listeners.has(method);
  }

  /**
   * A notification from a client: validated, then given to each listener. Invalid params and what a
   * listener throws are reported, never answered (a notification has no answer).
   */
  deliver(method: string, params: unknown, peer: Peer, report: (error: unknown, context: string) => void): void {
    const entry = this.#listeners.get(method);
    if (!entry) return;
    const parsed = entry.notification.params.safeParse(params);
    if (!parsed.success) {
      report(
        new LockstepError('INVALID_PARAMS', `invalid ${method} notification from ${peer.sessionId}`, { issues: parsed.error.issues }),
        `receiving ${method}`,
      );
      return;
    }
    const context: NotificationContext = { peer, identity: peer.identity, clientId: peer.clientId, sessionId: peer.sessionId };
    for (const listener of [...entry.listeners]) {
      try {
        listener(parsed.data, context);
      } catch (error) {
        report(error, `a listener of ${method}`);
      }
    }
  }

  /**
   * Answers client → hub call `id` of `method`: authorized (the service's rule, else the hub's hook
   * with `call`), params validated, then the handler, with a signal `$/cancelRequest` aborts. A handler
   * that throws after its call was cancelled answers CANCELLED.
   */
  async handle(method: string, id: protocol.RequestId, params: unknown, peer: ConnectionPeer, hub: ServiceHost): Promise<unknown> {
    const served = this.#methods.get(method);
    if (!served) throw new LockstepError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(method)}`);
    const rule = served.implementation.options?.authorize;
    if (rule) {
      let allowed = false;
      try {
        allowed = await rule(peer.identity, method);
      } catch (error) {
        hub.reportError(error, `authorizing a call of ${method}`);
      }
      if (!allowed) throw new LockstepError('FORBIDDEN', `not allowed to call ${method}`, { method, action: 'call' });
    } else {
      await hub.authorize(peer.identity, method, 'call');
    }
    const parsed = served.member.params.safeParse(params);
    if (!parsed.success) throw new LockstepError('INVALID_PARAMS', 'invalid params', { issues: parsed.error.issues });
    const signal = peer.beginHandling(id);
    try {
      return await served.handler(parsed.data, { peer, identity: peer.identity, clientId: peer.clientId, sessionId: peer.sessionId, callId: id, signal });
    } catch (error) {
      if (signal.aborted && !(error instanceof LockstepError)) throw new LockstepError('CANCELLED', `${method} was cancelled`);
      throw error;
    } finally {
      peer.endHandling(id, signal);
    }
  }
}
