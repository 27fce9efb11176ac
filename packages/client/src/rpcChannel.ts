import {
  LockstepError,
  TransportError,
  protocol,
  type Clock,
  type Codec,
  type Frame,
  type TimerHandle,
  type Transport,
} from '@lockstep/core';
import type { Subscription } from 'rxjs';

interface PendingRequest {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: TimerHandle;
}

export interface RpcChannelOptions {
  codec: Codec;
  clock: Clock;
  /** A request unanswered this long means the link is broken: the channel closes. */
  requestTimeoutMs: number;
  onNotification(method: string, params: unknown): void;
  onClose(reason: string): void;
  /** A frame from the hub that could not be understood (reported, never thrown). */
  onProtocolError(error: LockstepError): void;
}

/** JSON-RPC requests and notifications over one transport, from the client's side. */
export class RpcChannel {
  readonly #pending = new Map<number, PendingRequest>();
  readonly #rx: Subscription[] = [];
  #nextId = 1;
  #closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly options: RpcChannelOptions,
  ) {
    this.#rx.push(
      transport.frames.subscribe({ next: (frame) => this.#onFrame(frame) }),
      transport.state.subscribe((state) => {
        if (state.status === 'closed') this.#shut(state.reason);
      }),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  request<T>(method: string, params: unknown): Promise<T> {
    if (this.#closed) return Promise.reject(new TransportError('closed', 'connection closed'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = this.options.clock.setTimeout(() => {
        this.close(`no answer to ${method} within ${this.options.requestTimeoutMs} ms`);
      }, this.options.requestTimeoutMs);
      this.#pending.set(id, { resolve: resolve as (result: unknown) => void, reject, timer });
      this.transport.send(this.options.codec.encode({ jsonrpc: '2.0', id, method, params }));
    });
  }

  close(reason: string): void {
    this.transport.close(reason);
    this.#shut(reason);
  }

  #onFrame(frame: Frame): void {
    let message: protocol.Message;
    try {
      const parsed = protocol.messageSchema.safeParse(this.options.codec.decode(frame));
      if (!parsed.success) throw new LockstepError('INVALID_REQUEST', 'the hub sent a message that is not JSON-RPC 2.0');
      message = parsed.data as protocol.Message;
    } catch (error) {
      this.options.onProtocolError(LockstepError.from(error));
      return;
    }
    if ('method' in message && message.method !== undefined) {
      this.options.onNotification(message.method, message.params);
      return;
    }
    const id = (message as protocol.ResponseMessage).id;
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (!pending) {
      // A duplicate or late answer; an error without id is the hub refusing a frame of ours.
      if ('error' in message && message.error && id === null) this.options.onProtocolError(LockstepError.fromWire(message.error));
      return;
    }
    this.#pending.delete(id as number);
    this.options.clock.clearTimeout(pending.timer);
    if ('error' in message && message.error) pending.reject(LockstepError.fromWire(message.error));
    else pending.resolve((message as protocol.SuccessResponse).result);
  }

  #shut(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const rx of this.#rx) rx.unsubscribe();
    const error = new TransportError('closed', `connection closed: ${reason}`);
    for (const pending of this.#pending.values()) {
      this.options.clock.clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.options.onClose(reason);
  }
}
