import {
  LockstepError,
  cancelledCall,
  isCompatibleVersion,
  notServedError,
  protocol,
  randomId,
  settleCall,
  type AbortSignalLike,
  type AnyServiceMethod,
  type Clock,
  type TimerHandle,
} from '@lockstep/core';
import type { RpcChannel } from './rpcChannel.js';

/** Options of one call from the client. */
export interface CallOptions {
  /**
   * Rejects with TIMEOUT (and sends `$/cancelRequest`) when no answer came within this many ms —
   * counted from the call, across reconnects. Default: the client's `callTimeoutMs` (30 s).
   */
  timeoutMs?: number;
  /** Aborting it rejects the call with CANCELLED at once and sends `$/cancelRequest` to the hub. */
  signal?: AbortSignalLike;
}

/** What the calls need of the client: its connection, and what the hub said it serves. */
export interface CallLink {
  /** The channel ready for calls (hello answered), if any. */
  readonly channel: () => RpcChannel | undefined;
  /** The client is closed for good. */
  readonly closed: () => boolean;
  /** What the hub announced in its last hello answer (name → version). */
  readonly hubServices: () => ReadonlyMap<string, string>;
}

interface PendingCall {
  readonly id: string;
  readonly method: AnyServiceMethod;
  readonly params: unknown;
  resolve(result: unknown): void;
  reject(error: LockstepError): void;
  timer: TimerHandle;
  unlisten: (() => void) | undefined;
  /** The channel it was last sent on; undefined while it waits for the next one (idempotent, after a drop). */
  channel: RpcChannel | undefined;
}

/**
 * The client's calls of hub services, from the call to the answer. Each has an id unique to this
 * client (`call-<random>-<n>`), kept when it is re-sent: a call in flight when the connection drops is
 * re-sent on the next one if its method is idempotent, and fails with UNAVAILABLE
 * (`reason: "connectionLost"`: it may or may not have run) otherwise. Timeouts run from the call, not
 * from the send, so a call never waits for ever.
 */
export class OutgoingCalls {
  readonly #pending = new Map<string, PendingCall>();
  readonly #prefix = `call-${randomId(8)}-`;
  #counter = 0;

  constructor(
    private readonly link: CallLink,
    private readonly clock: Clock,
    private readonly defaultTimeoutMs: number,
  ) {}

  get size(): number {
    return this.#pending.size;
  }

  call(method: AnyServiceMethod, params: unknown, options: CallOptions = {}): Promise<unknown> {
    if (this.link.closed()) return Promise.reject(new LockstepError('UNAVAILABLE', `${method.method}: the client is closed`, { reason: 'closed' }));
    const channel = this.link.channel();
    if (!channel) return Promise.reject(new LockstepError('UNAVAILABLE', `${method.method}: not connected to the hub`, { reason: 'notConnected' }));
    const served = this.link.hubServices().get(method.service);
    if (served === undefined || !isCompatibleVersion(served, method.version)) return Promise.reject(notServedError(method, served));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(cancelledCall(method));
    const id = `${this.#prefix}${(this.#counter++).toString(36)}`;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      const pending: PendingCall = {
        id,
        method,
        params,
        resolve,
        reject,
        timer: this.clock.setTimeout(
          () =>
            this.#abandon(pending, new LockstepError('TIMEOUT', `${method.method}: no answer within ${timeoutMs} ms`, { method: method.method, timeoutMs })),
          timeoutMs,
        ),
        unlisten: undefined,
        channel,
      };
      if (signal) {
        const onAbort = () => this.#abandon(pending, cancelledCall(method));
        signal.addEventListener('abort', onAbort, { once: true });
        pending.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.#pending.set(id, pending);
      channel.sendRequest(id, method.method, params);
    });
  }

  /** An answer from the hub; one to no call awaiting it (cancelled, timed out, a duplicate) is ignored. */
  onResponse(id: protocol.RequestId, answer: { result?: unknown; error?: protocol.ErrorResponse['error'] | undefined }): void {
    if (typeof id !== 'string') return;
    const pending = this.#take(id);
    if (pending) settleCall(pending, answer, 'hub');
  }

  /** `channel` closed: its idempotent calls wait for the next one, the others fail. */
  onDisconnected(channel: RpcChannel): void {
    for (const pending of [...this.#pending.values()]) {
      if (pending.channel !== channel) continue;
      pending.channel = undefined;
      if (pending.method.idempotent) continue;
      this.#take(pending.id);
      pending.reject(
        new LockstepError('UNAVAILABLE', `${pending.method.method}: the connection was lost before the answer (the call may have run)`, {
          reason: 'connectionLost',
        }),
      );
    }
  }

  /** A new channel is ready: the idempotent calls that lost theirs are sent again, with their ids. */
  onReady(channel: RpcChannel): void {
    for (const pending of [...this.#pending.values()]) {
      if (pending.channel !== undefined) continue;
      const served = this.link.hubServices().get(pending.method.service);
      if (served === undefined || !isCompatibleVersion(served, pending.method.version)) {
        this.#take(pending.id);
        pending.reject(notServedError(pending.method, served));
        continue;
      }
      pending.channel = channel;
      channel.sendRequest(pending.id, pending.method.method, pending.params);
    }
  }

  /** The client closed: every call fails with UNAVAILABLE. */
  close(): void {
    for (const pending of [...this.#pending.values()]) {
      this.#take(pending.id);
      pending.reject(new LockstepError('UNAVAILABLE', `${pending.method.method}: the client was closed`, { reason: 'closed' }));
    }
  }

  /** Gives up on a call (timeout, abort): the hub is told with `$/cancelRequest` if it has it. */
  #abandon(pending: PendingCall, error: LockstepError): void {
    if (this.#take(pending.id) !== pending) return;
    pending.channel?.notify(protocol.CANCEL_REQUEST, { id: pending.id });
    pending.reject(error);
  }

  #take(id: string): PendingCall | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    this.clock.clearTimeout(pending.timer);
    pending.unlisten?.();
    return pending;
  }
}
