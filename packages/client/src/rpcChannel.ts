import { FrameBatcher, LockstepError, TransportError, protocol, type Clock, type Codec, type Frame, type TimerHandle, type Transport } from '@lockstep/core';
import type { Subscription } from 'rxjs';

/** Who hears the answer to a request: its result, or the error (a LockstepError from the hub, a TransportError). */
export interface AnswerReceiver {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

interface PendingRequest {
  method: string;
  /** When the request times out, on the channel's clock. */
  deadline: number;
  receiver: AnswerReceiver;
}

export interface RpcChannelOptions {
  codec: Codec;
  clock: Clock;
  /** A request unanswered this long means the link is broken: the channel closes. */
  requestTimeoutMs: number;
  onNotification(method: string, params: unknown): void;
  /** A request from the hub (a call of a service the client serves): answer it with `respond`. */
  onRequest(id: protocol.RequestId, method: string, params: unknown): void;
  /** An answer to a request this channel does not await: one of the client's service calls (sent with `sendRequest`). */
  onResponse(id: protocol.RequestId, answer: { result?: unknown; error?: protocol.ErrorResponse['error'] | undefined }): void;
  onClose(reason: string): void;
  /** A frame from the hub that could not be understood (reported, never thrown). */
  onProtocolError(error: LockstepError): void;
  /** Code called while handling a message (a state listener) threw; the channel went on. */
  onListenerError(error: unknown): void;
}

/** `queueMicrotask` without assuming the host's typings (browsers, Node, workers all run it). */
const atNextMicrotask = (flush: () => void): void => void Promise.resolve().then(flush);

/** JSON-RPC requests and notifications over one transport, from the client's side. */
export class RpcChannel {
  /** Requests awaiting an answer, in the order sent — which is also the order of their deadlines. */
  readonly #pending = new Map<number, PendingRequest>();
  /**
   * One timer for every request, armed for the oldest one's deadline (not a timer per request:
   * a client pipelining thousands of commands would create and cancel a timer for each).
   */
  #timer: TimerHandle | undefined;
  readonly #rx: Subscription[] = [];
  #nextId = 1;
  #closed = false;
  /** Set once the hub agreed to batches (hello): requests of one burst leave in batch frames. */
  #batcher: FrameBatcher | undefined;

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

  /**
   * From now on, the requests made in one burst of synchronous code leave together, as batch frames,
   * at the next microtask. Only once the hub has said it takes batches (its hello answer).
   */
  startBatching(): void {
    const { join } = this.options.codec;
    if (this.#batcher || !join) return;
    this.#batcher = new FrameBatcher({ join, write: (frame) => this.transport.send(frame), defer: atNextMicrotask });
  }

  request<T>(method: string, params: unknown): Promise<T> {
    if (this.#closed) return Promise.reject(new TransportError('closed', 'connection closed'));
    return new Promise<T>((resolve, reject) => this.send(method, params, { resolve: resolve, reject }));
  }

  /**
   * `request` without a promise: `receiver` hears the answer, synchronously as it arrives (or the
   * channel's close). What a client pipelining thousands of commands uses: a promise, its executor
   * and two handlers per command were a good part of the garbage it made.
   */
  send(method: string, params: unknown, receiver: AnswerReceiver): number {
    if (this.#closed) {
      // Never synchronously: the caller is still in the middle of sending.
      void Promise.resolve().then(() => receiver.reject(new TransportError('closed', 'connection closed')));
      return -1;
    }
    const id = this.#nextId++;
    const deadline = this.options.clock.now() + this.options.requestTimeoutMs;
    this.#pending.set(id, { method, deadline, receiver });
    if (this.#timer === undefined) this.#armTimer(deadline);
    const frame = this.options.codec.encode({ jsonrpc: '2.0', id, method, params });
    if (this.#batcher) this.#batcher.push(frame);
    else this.transport.send(frame);
    return id;
  }

  /**
   * Sends a request whose answer goes to `onResponse`, with no deadline of the channel's: a service
   * call, which has its own timeout and may outlive the channel (an idempotent call is re-sent on the
   * next one). False when the channel is closed (nothing sent).
   */
  sendRequest(id: protocol.RequestId, method: string, params: unknown): boolean {
    return this.#write(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
  }

  /** Sends a notification; false when the channel is closed. */
  notify(method: string, params: unknown): boolean {
    return this.#write(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  /** Answers a request of the hub; false when the channel is closed. */
  respond(id: protocol.RequestId, answer: { result: unknown } | { error: protocol.ErrorResponse['error'] }): boolean {
    return this.#write('error' in answer ? { jsonrpc: '2.0', id, error: answer.error } : { jsonrpc: '2.0', id, result: answer.result });
  }

  #write(message: protocol.Message): boolean {
    if (this.#closed) return false;
    let frame: Frame;
    try {
      frame = this.options.codec.encode(message);
    } catch (error) {
      // A result or params the codec cannot carry (a cycle, a function): the caller's bug, not the link's.
      this.options.onListenerError(error);
      return false;
    }
    if (this.#batcher) this.#batcher.push(frame);
    else this.transport.send(frame);
    return true;
  }

  /**
   * Stops waiting for the answer to request `id` (its receiver is not called): the answer came
   * another way — a command's ack implied by its events (`eventAcks`). An answer that still comes
   * is ignored, as a late one is. False when the request was not waiting.
   */
  forget(id: number): boolean {
    if (!this.#pending.delete(id)) return false;
    if (this.#pending.size === 0) this.#stopTimer();
    return true;
  }

  #armTimer(deadline: number): void {
    this.#timer = this.options.clock.setTimeout(() => this.#checkTimeout(), Math.max(0, deadline - this.options.clock.now()));
  }

  /** The oldest request unanswered past its deadline means the link is broken; else wait for its deadline. */
  #checkTimeout(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    const oldest: PendingRequest | undefined = this.#pending.values().next().value;
    if (!oldest) return;
    if (this.options.clock.now() >= oldest.deadline) {
      this.close(`no answer to ${oldest.method} within ${this.options.requestTimeoutMs} ms`);
      return;
    }
    this.#armTimer(oldest.deadline);
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    this.options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  close(reason: string): void {
    this.transport.close(reason);
    this.#shut(reason);
  }

  #onFrame(frame: Frame): void {
    let decoded: unknown;
    try {
      decoded = this.options.codec.decode(frame);
    } catch (error) {
      this.options.onProtocolError(LockstepError.from(error));
      return;
    }
    // A batch (sent only to a client that asked for batches): each message as if it came alone.
    if (!Array.isArray(decoded)) {
      this.#deliver(decoded);
      return;
    }
    for (let i = 0; i < decoded.length && !this.#closed; i++) this.#deliver(decoded[i]);
  }

  /**
   * Handles one message. Answers and notifications reach application code synchronously (state
   * listeners); one that throws must not cost the messages behind it in a batch, so its error goes to
   * `onListenerError` and the next message is handled.
   */
  #deliver(message: unknown): void {
    try {
      this.#onMessage(message);
    } catch (error) {
      this.options.onListenerError(error);
    }
  }

  #onMessage(decoded: unknown): void {
    const parsed = protocol.parseMessage(decoded);
    if (!parsed.success) {
      this.options.onProtocolError(new LockstepError('INVALID_REQUEST', 'the hub sent a message that is not JSON-RPC 2.0'));
      return;
    }
    const message = parsed.data;
    const { id } = message;
    if (message.method !== undefined) {
      if (id === undefined) this.options.onNotification(message.method, message.params);
      else if (id !== null) this.options.onRequest(id, message.method, message.params);
      else this.options.onProtocolError(new LockstepError('INVALID_REQUEST', 'the hub sent a request with id null'));
      return;
    }
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (!pending) {
      // A service call's answer, or a duplicate or late one; an error without id is the hub refusing a frame of ours.
      if (id !== null && id !== undefined) this.options.onResponse(id, message);
      else if (message.error) this.options.onProtocolError(LockstepError.fromWire(message.error));
      return;
    }
    this.#pending.delete(id as number);
    // Nothing left to time out: no timer keeps the process (or a fake clock) busy.
    if (this.#pending.size === 0) this.#stopTimer();
    if (message.error) pending.receiver.reject(LockstepError.fromWire(message.error));
    else pending.receiver.resolve(message.result);
  }

  #shut(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#batcher?.clear();
    for (const rx of this.#rx) rx.unsubscribe();
    const error = new TransportError('closed', `connection closed: ${reason}`);
    this.#stopTimer();
    for (const pending of this.#pending.values()) pending.receiver.reject(error);
    this.#pending.clear();
    this.options.onClose(reason);
  }
}
