import { LockstepError, PROTOCOL_VERSION, protocol, randomId, type AnyDomain, type AnyServiceNotification, type Event } from '@lockstep/core';
import { filter, firstValueFrom, type Subscription } from 'rxjs';
import type { LockstepClient } from '../client.js';
import type { SyncedStream } from '../syncedStream.js';
import { RelayedCalls } from './tabCalls.js';

/**
 * The leader tab's side of one follower tab's link: it answers the follower's client as a hub
 * would, from the leader's own client — `hello` with the leader's hub epoch and services,
 * `subscribe` with the leader's confirmed state (then its events as they come), `command` by
 * dispatching it on the leader's client with the follower's command id (so the hub still
 * deduplicates it across tabs and hand-overs). A service call (`<service>.<method>`) is made on the
 * leader's client for the follower, its `$/cancelRequest` abandons it, and the hub's notifications
 * of the services the follower called are forwarded to it. Every message is parsed with the
 * protocol's schemas first: a malformed one is ignored (or answered INVALID_PARAMS).
 * @internal
 */
export class TabRelaySession {
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #sessionId = randomId(16);
  readonly #calls: RelayedCalls;
  #closed = false;

  constructor(
    private readonly client: LockstepClient,
    private readonly domains: ReadonlyMap<string, AnyDomain>,
    private readonly send: (frame: string) => void,
  ) {
    this.#calls = new RelayedCalls(client);
  }

  handle(frame: string): void {
    if (this.#closed) return;
    let decoded: unknown;
    try {
      decoded = JSON.parse(frame);
    } catch {
      return;
    }
    for (const raw of Array.isArray(decoded) ? decoded : [decoded]) {
      const parsed = protocol.parseMessage(raw);
      if (!parsed.success) continue;
      const { id, method, params } = parsed.data;
      if (method === undefined) continue; // an answer: the leader asks a follower nothing
      if (id === undefined) {
        this.#onNotification(method, params);
        continue;
      }
      if (id === null) continue;
      this.#answer(id, method, params).then(
        (result) => this.#reply({ jsonrpc: '2.0', id, result }),
        (error: unknown) => this.#reply({ jsonrpc: '2.0', id, error: LockstepError.from(error).toJSON() }),
      );
    }
  }

  /** A notification of the leader's hub: forwarded if it belongs to a service this follower called. */
  hubNotification(method: string, params: unknown): void {
    if (!this.#closed && this.#calls.wants(method)) this.#notify(method, params);
  }

  /** Service calls still awaiting the hub's answer. */
  get callsInFlight(): number {
    return this.#calls.size;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#calls.close();
    for (const subscription of this.#subscriptions.values()) subscription.unsubscribe();
    this.#subscriptions.clear();
  }

  #onNotification(method: string, params: unknown): void {
    if (method === protocol.CANCEL_REQUEST) {
      const cancel = protocol.cancelRequestParamsSchema.safeParse(params);
      if (cancel.success) this.#calls.cancel(cancel.data.id);
    } else if (isServiceMember(method)) {
      // `client.notify` of a follower: sent on the leader's connection (dropped without one, as in any tab).
      this.client.notify({ method } as AnyServiceNotification, params);
    }
  }

  async #answer(id: protocol.RequestId, method: string, params: unknown): Promise<unknown> {
    switch (method) {
      case protocol.Methods.hello:
        return this.#hello();
      case protocol.Methods.subscribe: {
        const parsed = protocol.subscribeParamsSchema.safeParse(params);
        if (!parsed.success) throw new LockstepError('INVALID_PARAMS', 'malformed subscribe');
        return this.#subscribe(parsed.data.stream);
      }
      case protocol.Methods.unsubscribe: {
        const parsed = protocol.unsubscribeParamsSchema.safeParse(params);
        if (parsed.success) {
          this.#subscriptions.get(parsed.data.stream)?.unsubscribe();
          this.#subscriptions.delete(parsed.data.stream);
        }
        return {};
      }
      case protocol.Methods.command:
        return this.#command(params);
      case protocol.Methods.ping:
        return { time: this.client.now() };
      default:
        if (isServiceMember(method)) return this.#calls.call(id, method, params);
        throw new LockstepError('METHOD_NOT_FOUND', `${method} is not relayed between tabs`);
    }
  }

  async #hello(): Promise<protocol.HelloResult> {
    // The follower's state must come from the leader's hub log: wait for the leader's first hello.
    if (this.client.serverInfo === undefined) {
      await firstValueFrom(this.client.status$.pipe(filter(() => this.client.serverInfo !== undefined)), { defaultValue: undefined });
    }
    const hub = this.client.serverInfo;
    if (hub === undefined) throw new LockstepError('UNAVAILABLE', 'the leader tab closed its client');
    const hello: protocol.HelloResult = {
      protocol: PROTOCOL_VERSION,
      serverId: `${hub.serverId} (via the leader tab)`,
      sessionId: this.#sessionId,
      epoch: hub.epoch,
      capabilities: {},
      heartbeatMs: 0,
      domains: [...this.domains.keys()],
    };
    // The follower's client checks its calls against the hub's services, and its app against the hub's.
    if (hub.services !== undefined) hello.services = hub.services;
    if (hub.app !== undefined) hello.app = hub.app;
    return hello;
  }

  async #subscribe(name: string): Promise<protocol.SubscribeResult> {
    const stream = this.#stream(name);
    if (!stream.synced && stream.version === 0) await firstState(stream);
    this.#subscriptions.get(name)?.unsubscribe();
    // From now on, every change of the leader's confirmed state goes to the follower, after the answer.
    this.#subscriptions.set(
      name,
      stream.changes$.subscribe((change) => {
        if (change.kind === 'events') this.#notify(protocol.Notifications.events, { stream: name, events: change.events as Event[] });
        else this.#notify(protocol.Notifications.resync, { stream: name });
      }),
    );
    const { confirmed } = stream;
    const { version } = confirmed;
    return { stream: name, version, head: version, oldestRetained: version + 1, snapshot: confirmed.state };
  }

  async #command(params: unknown): Promise<protocol.CommandResult> {
    const parsed = protocol.commandParamsSchema.safeParse(params);
    if (!parsed.success) throw new LockstepError('INVALID_PARAMS', 'malformed command');
    const { id, stream: name, type, payload, expectedVersion } = parsed.data;
    const stream = this.#stream(name);
    // Already pending here (sent before a reconnect, or taken over from a dead leader's storage): the
    // follower waits for that one's outcome; a second copy would show its effect twice until acked.
    const pending = stream.pendingCommands.find((command) => command.id === id);
    if (pending) {
      return new Promise((resolve, reject) => {
        const { resolve: resolved, reject: rejected } = pending;
        pending.resolve = (result) => {
          resolved(result);
          resolve(result);
        };
        pending.reject = (error) => {
          rejected(error);
          reject(error);
        };
      });
    }
    const options = expectedVersion === undefined ? { id } : { id, expectedVersion };
    return stream.dispatch({ type, payload }, options);
  }

  #stream(name: string): SyncedStream<AnyDomain> {
    const slash = name.indexOf('/');
    const domain = this.domains.get(name.slice(0, slash));
    if (!domain) throw new LockstepError('UNKNOWN_STREAM', `the leader tab does not know the domain of ${name}`);
    return this.client.stream(domain, name.slice(slash + 1));
  }

  #notify(method: string, params: unknown): void {
    this.#reply({ jsonrpc: '2.0', method, params });
  }

  #reply(message: unknown): void {
    if (!this.#closed) this.send(JSON.stringify(message));
  }
}

/** `<service>.<member>`: core lockstep/1 methods have no `.`, and `$/` names belong to the protocol. */
function isServiceMember(method: string): boolean {
  return method.indexOf('.') > 0 && !method.startsWith('$/');
}

async function firstState(stream: SyncedStream<AnyDomain>): Promise<void> {
  await firstValueFrom(stream.status$.pipe(filter(() => stream.synced || stream.version > 0)), { defaultValue: undefined });
}
