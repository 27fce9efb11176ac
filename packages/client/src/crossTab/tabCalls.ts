import { createAbortController, type AbortControllerLike, type AnyServiceMethod, type protocol } from '@lockstep/core';
import type { LockstepClient } from '../client.js';

/**
 * How long the leader waits for the hub's answer to a follower's call. The follower's own timeout
 * (`callTimeoutMs`, `timeoutMs`) is what the application sees: when it runs out, the follower sends
 * `$/cancelRequest` and the leader gives up at once. This bound only keeps the call of a tab that
 * died without a word from staying in the leader for ever.
 */
export const RELAYED_CALL_TIMEOUT_MS = 10 * 60_000;

/** The leader checks nothing of a relayed call's params or result: the follower's client does. */
const unchecked = { safeParse: (value: unknown) => ({ success: true, data: value }) } as unknown as AnyServiceMethod['result'];

/**
 * The service calls of one follower tab, made for it on the leader's client — so on the leader's
 * hub connection, with the leader's token: a follower has no path to the hub of its own. Each keeps
 * an abort controller under the follower's request id, for its `$/cancelRequest`. The services the
 * follower called are remembered: the hub's notifications of those services (a terminal's output
 * after `terminal.attach`) are forwarded to it.
 * @internal
 */
export class RelayedCalls {
  readonly #running = new Map<protocol.RequestId, AbortControllerLike>();
  readonly #services = new Set<string>();

  constructor(private readonly client: LockstepClient) {}

  /** The follower called a method of the service that `method` (a notification's wire name) belongs to. */
  wants(method: string): boolean {
    const dot = method.indexOf('.');
    return dot > 0 && this.#services.has(method.slice(0, dot));
  }

  /**
   * Calls `method` on the hub for the follower. Rejects as the leader's own call would (UNAVAILABLE
   * without a hub connection or when it drops before the answer — never re-sent by the leader, which
   * cannot know whether the method is idempotent — TIMEOUT, the hub's refusal), or CANCELLED.
   */
  call(id: protocol.RequestId, method: string, params: unknown): Promise<unknown> {
    const service = method.slice(0, method.indexOf('.'));
    this.#services.add(service);
    this.#running.get(id)?.abort();
    const controller = createAbortController();
    this.#running.set(id, controller);
    const served = this.client.serverInfo?.services?.find((info) => info.name === service)?.version ?? '0.0.0';
    const relayed: AnyServiceMethod = {
      kind: 'method',
      service,
      version: served,
      name: method.slice(service.length + 1),
      method,
      idempotent: false,
      params: unchecked,
      result: unchecked,
    };
    const done = () => {
      if (this.#running.get(id) === controller) this.#running.delete(id);
    };
    const call = this.client.call(relayed, params, { timeoutMs: RELAYED_CALL_TIMEOUT_MS, signal: controller.signal });
    call.then(done, done);
    return call;
  }

  /** The follower's `$/cancelRequest`: the leader's call is abandoned, and the hub told. */
  cancel(id: protocol.RequestId): void {
    this.#running.get(id)?.abort();
  }

  /** The follower is gone: its calls are abandoned (the hub is told to cancel them). */
  close(): void {
    const running = [...this.#running.values()];
    this.#running.clear();
    for (const controller of running) controller.abort();
  }

  get size(): number {
    return this.#running.size;
  }
}
