import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { jsonCodec, type Codec, type Frame } from '../codec.js';
import { LockstepError, TransportError } from '../errors.js';
import type { Transport, TransportState } from '../transport.js';

/** A decoded JSON-RPC message as the other side sent it (not validated: a test reads what came). */
export interface PeerMessage {
  jsonrpc?: string;
  id?: string | number | null;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string; data?: any };
}

export interface TestPeerOptions {
  /** How messages become frames and back. Default: JSON (`jsonCodec`); pass `msgpackCodec` for binary. */
  codec?: Codec;
  /**
   * How long a wait (`waitFor`, `response`, `request`, `next`) lasts before it fails; `false`: as long
   * as it takes (the test runner's timeout decides). Default 5,000 ms.
   */
  timeoutMs?: number | false;
  /** The clock of those timeouts. Default: the system clock (a fake one never times out unless advanced). */
  clock?: Clock;
}

/** Default of {@link TestPeerOptions.timeoutMs}. */
export const TEST_PEER_TIMEOUT_MS = 5_000;

type Closed = Extract<TransportState, { status: 'closed' }>;

interface Waiter {
  check(): boolean;
  fail(reason: string): void;
}

/**
 * A raw lockstep/1 peer over any {@link Transport}: it sends requests, notifications or frames as
 * they are, and records every message it receives (JSON-RPC batches flattened), so a test can speak
 * to a hub, or be the hub a client speaks to, with no Lockstep client in between. Waits are driven by
 * arrivals, and fail when the transport closes or after `timeoutMs`.
 *
 * Two ways to read, to mix as a test likes: `received` (everything, in order) with `waitFor`, or
 * `next()`, which hands out each message once, in order.
 */
export class TestPeer {
  /** Every message received, in order, batches flattened. */
  readonly received: PeerMessage[] = [];
  /** Every frame sent, as sent. */
  readonly sent: Frame[] = [];
  /** How many frames carried `received`, and how many of those were batches. */
  frames = 0;
  batches = 0;
  /** Frames that did not decode: the error of each. */
  readonly problems: Error[] = [];
  readonly codec: Codec;
  readonly closed: Promise<Closed>;
  #closedState: Closed | undefined;
  #read = 0;
  #nextId = 1;
  readonly #waiters = new Set<Waiter>();
  readonly #timeoutMs: number | false;
  readonly #clock: Clock;

  constructor(
    readonly transport: Transport,
    options: TestPeerOptions = {},
  ) {
    this.codec = options.codec ?? jsonCodec;
    this.#timeoutMs = options.timeoutMs ?? TEST_PEER_TIMEOUT_MS;
    this.#clock = options.clock ?? systemClock;
    let onClosed!: (state: Closed) => void;
    this.closed = new Promise((resolve) => (onClosed = resolve));
    transport.frames.subscribe((frame) => this.#receive(frame));
    transport.state.subscribe((state) => {
      if (state.status !== 'closed' || this.#closedState) return;
      this.#closedState = state;
      onClosed(state);
      for (const waiter of [...this.#waiters]) {
        if (!waiter.check()) waiter.fail(state.reason);
      }
    });
  }

  /** The close of the transport, once it has closed. */
  get closedState(): Closed | undefined {
    return this.#closedState;
  }

  /** Messages received and not yet handed out by `next()`. */
  get unread(): number {
    return this.received.length - this.#read;
  }

  /** Sends a frame as it is (text or bytes), encoded or not. */
  sendFrame(frame: Frame): boolean {
    this.sent.push(frame);
    return this.transport.send(frame);
  }

  /** Sends one message in the peer's codec. */
  send(message: unknown): boolean {
    return this.sendFrame(this.codec.encode(message));
  }

  /** Sends a notification (a message without id). */
  notify(method: string, params?: unknown): void {
    this.send(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  /** Sends a request without waiting; returns its id (the next number unless `id` is given). */
  sendRequest(method: string, params?: unknown, id: string | number = this.#nextId++): string | number {
    this.send(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
    return id;
  }

  /** Sends a request and waits for its whole response message (a result or an error). */
  call(method: string, params?: unknown): Promise<PeerMessage> {
    return this.response(this.sendRequest(method, params));
  }

  /** Sends a request: its result, or a rejection with the `LockstepError` it was answered with. */
  async request(method: string, params?: unknown): Promise<any> {
    const answer = await this.call(method, params);
    if (answer.error) throw LockstepError.fromWire(answer.error);
    return answer.result;
  }

  /** The response to request `id` (an error without id when `id` is null). */
  response(id: string | number | null): Promise<PeerMessage> {
    return this.waitFor((message) => message.method === undefined && message.id === id, { what: `the response to ${JSON.stringify(id)}` });
  }

  /** The first notification or request of the other side with this method, from `after` on. */
  incoming(method: string, after = 0): Promise<PeerMessage> {
    return this.waitFor((message) => message.method === method, { after, what: `a ${method}` });
  }

  /** Every notification with this method received so far. */
  notifications(method: string): PeerMessage[] {
    return this.received.filter((message) => message.method === method);
  }

  /**
   * The first received message (from index `after`) for which `predicate` holds: at once when it is
   * already there, otherwise when it arrives.
   */
  waitFor(predicate: (message: PeerMessage) => boolean, options: { after?: number; what?: string } = {}): Promise<PeerMessage> {
    const { after = 0, what = 'a matching message' } = options;
    let found: PeerMessage | undefined;
    return this.#wait(() => {
      found = this.received.slice(after).find(predicate);
      return found !== undefined;
    }, what).then(() => found!);
  }

  /** Waits until `condition` (over what was received) holds. */
  until(condition: () => boolean, what = 'the condition'): Promise<void> {
    return this.#wait(condition, what);
  }

  /** The next message not yet handed out, in arrival order. */
  async next(): Promise<PeerMessage> {
    await this.#wait(() => this.#read < this.received.length, 'the next message');
    return this.received[this.#read++]!;
  }

  close(reason = 'test peer closed'): void {
    this.transport.close(reason);
  }

  #receive(frame: Frame): void {
    let decoded: unknown;
    try {
      decoded = this.codec.decode(frame);
    } catch (error) {
      this.problems.push(error as Error);
      for (const waiter of [...this.#waiters]) waiter.check();
      return;
    }
    this.frames++;
    if (Array.isArray(decoded)) {
      this.batches++;
      this.received.push(...(decoded as PeerMessage[]));
    } else {
      this.received.push(decoded as PeerMessage);
    }
    for (const waiter of [...this.#waiters]) waiter.check();
  }

  #wait(condition: () => boolean, what: string): Promise<void> {
    if (condition()) return Promise.resolve();
    if (this.#closedState) return Promise.reject(new TransportError('closed', `closed (${this.#closedState.reason}) before ${what} arrived`));
    return new Promise((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const waiter: Waiter = {
        check: () => {
          if (!condition()) return false;
          done();
          resolve();
          return true;
        },
        fail: (reason) => {
          done();
          reject(new TransportError('closed', `closed (${reason}) before ${what} arrived`));
        },
      };
      const done = () => {
        this.#waiters.delete(waiter);
        if (timer !== undefined) this.#clock.clearTimeout(timer);
      };
      this.#waiters.add(waiter);
      if (this.#timeoutMs === false) return;
      const timeoutMs = this.#timeoutMs;
      timer = this.#clock.setTimeout(() => {
        done();
        reject(new TransportError('timeout', `${what} did not arrive within ${timeoutMs} ms (${this.received.length} messages received)`));
      }, timeoutMs);
    });
  }
}
