import { LockstepError, PROTOCOL_VERSION, protocol, randomId, type AnyDomain, type Event } from '@lockstep/core';
import { filter, firstValueFrom, type Subscription } from 'rxjs';
import type { LockstepClient } from '../client.js';
import type { SyncedStream } from '../syncedStream.js';

interface RpcMessage {
  jsonrpc?: string;
  id?: number | string | null;
  method?: string;
  params?: unknown;
}

/**
 * The leader tab's side of one follower tab's link: it answers the follower's client as a hub
 * would, from the leader's own client — `hello` with the leader's hub epoch, `subscribe` with the
 * leader's confirmed state (then its events as they come), `command` by dispatching it on the
 * leader's client with the follower's command id (so the hub still deduplicates it across tabs and
 * hand-overs). Anything else (service calls) is METHOD_NOT_FOUND: they need the leader's connection.
 * @internal
 */
export class TabRelaySession {
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #sessionId = randomId(16);
  #closed = false;

  constructor(
    private readonly client: LockstepClient,
    private readonly domains: ReadonlyMap<string, AnyDomain>,
    private readonly send: (frame: string) => void,
  ) {}

  handle(frame: string): void {
    if (this.#closed) return;
    let decoded: unknown;
    try {
      decoded = JSON.parse(frame);
    } catch {
      return;
    }
    for (const message of Array.isArray(decoded) ? (decoded as RpcMessage[]) : [decoded as RpcMessage]) {
      if (typeof message?.method !== 'string' || message.id === undefined || message.id === null) continue;
      this.#answer(message.id, message.method, message.params).then(
        (result) => this.#reply({ jsonrpc: '2.0', id: message.id, result }),
        (error: unknown) => this.#reply({ jsonrpc: '2.0', id: message.id, error: LockstepError.from(error).toJSON() }),
      );
    }
  }

  close(): void {
    this.#closed = true;
    for (const subscription of this.#subscriptions.values()) subscription.unsubscribe();
    this.#subscriptions.clear();
  }

  async #answer(_id: number | string, method: string, params: unknown): Promise<unknown> {
    switch (method) {
      case protocol.Methods.hello:
        return this.#hello();
      case protocol.Methods.subscribe: {
        const parsed = protocol.subscribeParamsSchema.safeParse(params);
        if (!parsed.success) throw new LockstepError('INVALID_PARAMS', 'malformed subscribe');
        return this.#subscribe(parsed.data.stream);
      }
      case protocol.Methods.unsubscribe: {
        const stream = (params as { stream?: unknown } | undefined)?.stream;
        if (typeof stream === 'string') {
          this.#subscriptions.get(stream)?.unsubscribe();
          this.#subscriptions.delete(stream);
        }
        return {};
      }
      case protocol.Methods.command:
        return this.#command(params);
      case protocol.Methods.ping:
        return { time: this.client.now() };
      default:
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
    return {
      protocol: PROTOCOL_VERSION,
      serverId: `${hub.serverId} (via the leader tab)`,
      sessionId: this.#sessionId,
      epoch: hub.epoch,
      capabilities: {},
      heartbeatMs: 0,
      domains: [...this.domains.keys()],
    };
  }

  async #subscribe(name: string): Promise<protocol.SubscribeResult> {
    const slash = name.indexOf('/');
    const domain = this.domains.get(name.slice(0, slash));
    if (!domain) throw new LockstepError('UNKNOWN_STREAM', `the leader tab does not know the domain of ${name}`);
    const stream = this.client.stream(domain, name.slice(slash + 1));
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
    const { state, version } = stream.confirmed;
    return { stream: name, version, head: version, oldestRetained: version + 1, snapshot: state };
  }

  async #command(params: unknown): Promise<protocol.CommandResult> {
    const parsed = protocol.commandParamsSchema.safeParse(params);
    if (!parsed.success) throw new LockstepError('INVALID_PARAMS', 'malformed command');
    const { id, stream: name, type, payload, expectedVersion } = parsed.data;
    const slash = name.indexOf('/');
    const domain = this.domains.get(name.slice(0, slash));
    if (!domain) throw new LockstepError('UNKNOWN_STREAM', `the leader tab does not know the domain of ${name}`);
    const stream = this.client.stream(domain, name.slice(slash + 1));
    const options = expectedVersion === undefined ? { id } : { id, expectedVersion };
    return stream.dispatch({ type, payload } as never, options);
  }

  #notify(method: string, params: unknown): void {
    this.#reply({ jsonrpc: '2.0', method, params });
  }

  #reply(message: unknown): void {
    if (!this.#closed) this.send(JSON.stringify(message));
  }
}

async function firstState(stream: SyncedStream<AnyDomain>): Promise<void> {
  await firstValueFrom(stream.status$.pipe(filter(() => stream.synced || stream.version > 0)), { defaultValue: undefined });
}
