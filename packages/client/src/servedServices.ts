import {
  LockstepError,
  createAbortController,
  isServiceMethod,
  protocol,
  serviceInfo,
  type AbortControllerLike,
  type AbortSignalLike,
  type AnyService,
  type AnyServiceMethod,
  type AnyServiceNotification,
  type ParamsOutput,
  type ServiceHandlers,
} from '@lockstep/core';
import type { RpcChannel } from './rpcChannel.js';

/** What a client-side handler knows of the hub's call it answers. */
export interface ClientCallContext {
  /** The request's id (the hub counts them per connection). */
  readonly callId: protocol.RequestId;
  /** Aborted when the hub cancels the call (`$/cancelRequest`, its timeout) or the connection drops. A platform `AbortSignal`. */
  readonly signal: AbortSignalLike;
}

export type ClientNotificationListener<N extends AnyServiceNotification> = (params: ParamsOutput<N>) => void;

interface Served {
  service: AnyService;
  handlers: Record<string, (params: unknown, context: ClientCallContext) => unknown>;
}

/**
 * The services a client serves (answering the hub's requests) and the notifications it listens to.
 * Requests are answered on the channel they came on; a handler still running when that channel closes
 * has its signal aborted, and its answer goes nowhere.
 */
export class ServedServices {
  readonly #served = new Map<string, Served>();
  readonly #methods = new Map<string, { served: Served; member: AnyServiceMethod }>();
  readonly #listeners = new Map<string, { notification: AnyServiceNotification; listeners: Set<(params: unknown) => void> }>();
  /** Handlers running, by the channel their request came on and its id. */
  readonly #running = new Map<RpcChannel, Map<protocol.RequestId, AbortControllerLike>>();

  constructor(private readonly report: (error: unknown) => void) {}

  /** What `hello` announces. */
  announced(): protocol.ServiceInfo[] {
    return [...this.#served.values()].map(({ service }) => serviceInfo(service));
  }

  serve<S extends AnyService>(service: S, handlers: ServiceHandlers<S, ClientCallContext>): () => void {
    if (this.#served.has(service.name)) throw new RangeError(`service ${service.name} is already served by this client`);
    const served: Served = { service, handlers: handlers as Served['handlers'] };
    const methods: AnyServiceMethod[] = [];
    for (const member of service.members.values()) {
      if (!isServiceMethod(member)) continue;
      if (typeof served.handlers[member.name] !== 'function') throw new TypeError(`service ${service.name}: no handler for ${member.name}`);
      methods.push(member);
    }
    this.#served.set(service.name, served);
    for (const member of methods) this.#methods.set(member.method, { served, member });
    return () => {
      if (this.#served.get(service.name) !== served) return;
      this.#served.delete(service.name);
      for (const member of methods) this.#methods.delete(member.method);
    };
  }

  on<N extends AnyServiceNotification>(notification: N, listener: ClientNotificationListener<N>): () => void {
    let entry = this.#listeners.get(notification.method);
    if (!entry) this.#listeners.set(notification.method, (entry = { notification, listeners: new Set() }));
    const added = listener as (params: unknown) => void;
    entry.listeners.add(added);
    return () => {
      entry.listeners.delete(added);
      if (entry.listeners.size === 0 && this.#listeners.get(notification.method) === entry) this.#listeners.delete(notification.method);
    };
  }

  /** A notification of a service: validated, then given to each listener. False when nobody listens to it. */
  deliver(method: string, params: unknown): boolean {
    const entry = this.#listeners.get(method);
    if (!entry) return false;
    const parsed = entry.notification.params.safeParse(params);
    if (!parsed.success) {
      this.report(new LockstepError('INVALID_PARAMS', `invalid ${method} notification from the hub`, { issues: parsed.error.issues }));
      return true;
    }
    for (const listener of [...entry.listeners]) {
      try {
        listener(parsed.data);
      } catch (error) {
        this.report(error);
      }
    }
    return true;
  }

  /** A request from the hub, answered on `channel`. */
  handle(channel: RpcChannel, id: protocol.RequestId, method: string, params: unknown): void {
    const entry = this.#methods.get(method);
    if (!entry) {
      channel.respond(id, { error: new LockstepError('METHOD_NOT_FOUND', `this client serves no method ${JSON.stringify(method)}`).toJSON() });
      return;
    }
    const parsed = entry.member.params.safeParse(params);
    if (!parsed.success) {
      channel.respond(id, { error: new LockstepError('INVALID_PARAMS', 'invalid params', { issues: parsed.error.issues }).toJSON() });
      return;
    }
    const controller = createAbortController();
    let running = this.#running.get(channel);
    if (!running) this.#running.set(channel, (running = new Map<protocol.RequestId, AbortControllerLike>()));
    running.set(id, controller);
    const done = () => {
      const calls = this.#running.get(channel);
      if (calls?.get(id) !== controller) return;
      calls.delete(id);
      if (calls.size === 0) this.#running.delete(channel);
    };
    let answer: unknown;
    try {
      answer = entry.served.handlers[entry.member.name]!(parsed.data, { callId: id, signal: controller.signal });
    } catch (error) {
      done();
      this.#fail(channel, id, method, error, controller);
      return;
    }
    Promise.resolve(answer).then(
      (result) => {
        done();
        channel.respond(id, { result });
      },
      (error: unknown) => {
        done();
        this.#fail(channel, id, method, error, controller);
      },
    );
  }

  /** `$/cancelRequest` from the hub: aborts the handler of its call `id` on `channel`. */
  cancel(channel: RpcChannel, id: protocol.RequestId): void {
    this.#running.get(channel)?.get(id)?.abort(new LockstepError('CANCELLED', 'the hub cancelled the call'));
  }

  /** `channel` closed: the handlers still running for it are aborted (their answers have nowhere to go). */
  onDisconnected(channel: RpcChannel): void {
    const running = this.#running.get(channel);
    this.#running.delete(channel);
    for (const controller of running?.values() ?? [])
      controller.abort(new LockstepError('UNAVAILABLE', 'the connection closed', { reason: 'connectionClosed' }));
  }

  #fail(channel: RpcChannel, id: protocol.RequestId, method: string, error: unknown, controller: AbortControllerLike): void {
    let answer: LockstepError;
    if (error instanceof LockstepError) answer = error;
    else if (controller.signal.aborted) answer = new LockstepError('CANCELLED', `${method} was cancelled`);
    else {
      this.report(error);
      answer = LockstepError.from(error);
    }
    channel.respond(id, { error: answer.toJSON() });
  }
}
