import { jsonCodec, type Codec, type Frame, type Transport, type TransportState } from '@lockstep/core';
import WebSocket from 'isomorphic-ws';
import { ReplaySubject, Subject, type Observable } from 'rxjs';
import { closeReason, truncateReason } from './closeReason.js';
import { bearerSubprotocol, subprotocolForCodec } from './subprotocols.js';
import { TickCork, type Corkable } from './tickCork.js';

export interface WebSocketTransportOptions {
  /** Must match the client's codec. Its name picks the subprotocol (`json` → `lockstep.v1.json`). Default JSON. */
  codec?: Codec;
  /**
   * A bearer token for the server's upgrade-time `authenticate` hook, sent as the subprotocol entry
   * `lockstep.bearer.<base64url token>` (browsers cannot set headers). To authenticate at `hello`
   * instead, give the token to `createClient`.
   */
  token?: string;
  /** Extra HTTP headers of the upgrade request, e.g. `Authorization`. Node only: browsers ignore them. */
  headers?: Record<string, string>;
}

/** The part of the WebSocket API this transport uses: what browsers and `ws` both offer. */
interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly protocol: string;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: { message?: unknown }) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only (Node): its 'upgrade' event carries the HTTP response, whose `socket` the frames go to. */
  once?(event: 'upgrade', listener: (response: { socket?: Partial<Corkable> | null }) => void): unknown;
}
/** `queueMicrotask`, present in browsers and Node (this file compiles without either's types). */
const queueMicrotask = (globalThis as unknown as { queueMicrotask: (task: () => void) => void }).queueMicrotask;
/** Frames sent in one synchronous run (a burst of dispatches) leave in one write (Node only). */
const cork = new TickCork((flush) => queueMicrotask(flush));

type WebSocketConstructor = new (url: string, protocols: string[], options?: { headers: Record<string, string> }) => WebSocketLike;

/** `ws` in Node, the browser's own WebSocket in bundles (isomorphic-ws's `browser` entry). */
const WebSocketImpl = WebSocket as unknown as WebSocketConstructor;
const OPEN = 1;

/**
 * A client transport over a WebSocket, for Node and browsers. Its state starts `connecting`, then
 * becomes `open` (once the server has selected the codec's subprotocol) or `closed` with the close
 * code and reason. Text frames arrive as strings, binary frames as `Uint8Array`. Frames sent while
 * connecting are queued and go out once open.
 */
export function webSocketTransport(url: string, options: WebSocketTransportOptions = {}): Transport {
  return new WebSocketClientTransport(url, options);
}

/** A `connect` function for `createClient`: each call opens a new WebSocket transport. */
export function webSocketConnector(
  url: string,
  options: WebSocketTransportOptions | (() => WebSocketTransportOptions | Promise<WebSocketTransportOptions>) = {},
): () => Transport | Promise<Transport> {
  if (typeof options !== 'function') return () => webSocketTransport(url, options);
  return async () => webSocketTransport(url, await options());
}

class WebSocketClientTransport implements Transport {
  readonly #frames = new Subject<Frame>();
  readonly #state = new ReplaySubject<TransportState>(1);
  readonly frames: Observable<Frame> = this.#frames.asObservable();
  readonly state: Observable<TransportState> = this.#state.asObservable();
  readonly info: Readonly<Record<string, unknown>>;
  readonly #socket: WebSocketLike;
  readonly #subprotocol: string;
  #status: TransportState['status'] = 'connecting';
  /** Frames sent while connecting. */
  #queue: Frame[] = [];
  /** The last error the socket reported (Node says why a handshake failed; browsers do not). */
  #lastError: string | undefined;
  /** In Node, the TCP socket under the WebSocket (the upgrade response's), corked per tick. */
  #stream: Corkable | undefined;

  constructor(url: string, options: WebSocketTransportOptions) {
    this.#subprotocol = subprotocolForCodec(options.codec ?? jsonCodec);
    this.info = { transport: 'ws', url, subprotocol: this.#subprotocol };
    const protocols = [this.#subprotocol];
    if (options.token !== undefined) protocols.push(bearerSubprotocol(options.token));
    this.#state.next({ status: 'connecting' });
    const socket = options.headers ? new WebSocketImpl(url, protocols, { headers: options.headers }) : new WebSocketImpl(url, protocols);
    this.#socket = socket;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => this.#onOpen();
    socket.onmessage = (event) => this.#onMessage(event.data);
    socket.onerror = (event) => {
      if (typeof event.message === 'string' && event.message !== '') this.#lastError = event.message;
    };
    socket.onclose = (event) => this.#shut(closeReason(event.code, event.reason, this.#lastError), event.code);
    // `ws` (Node) says which TCP socket it got with the upgrade response; a browser's WebSocket has no `once`.
    socket.once?.('upgrade', (response) => {
      const stream = response.socket;
      if (stream && typeof stream.cork === 'function' && typeof stream.uncork === 'function') this.#stream = stream as Corkable;
    });
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  send(frame: Frame): boolean {
    if (this.#status === 'connecting') {
      this.#queue.push(frame);
      return true;
    }
    if (this.#status === 'closed' || this.#socket.readyState !== OPEN) return false;
    cork.hold(this.#stream);
    this.#socket.send(frame);
    return true;
  }

  close(reason = 'closed'): void {
    if (this.#status === 'closed') return;
    try {
      this.#socket.close(1000, truncateReason(reason));
    } catch {
      // Closing a socket that is still connecting may throw in some runtimes; it is closed either way.
    }
    this.#shut(reason, 1000);
  }

  #onOpen(): void {
    if (this.#status !== 'connecting') return;
    if (this.#socket.protocol !== this.#subprotocol) {
      // The server did not agree on the codec: nothing it would send could be read.
      const reason = `the server selected the subprotocol ${JSON.stringify(this.#socket.protocol)}, not ${this.#subprotocol}`;
      this.#socket.close(1002, truncateReason(reason));
      this.#shut(reason, 1002);
      return;
    }
    this.#status = 'open';
    this.#state.next({ status: 'open' });
    const queued = this.#queue;
    this.#queue = [];
    for (const frame of queued) {
      if (this.#status !== 'open') break;
      cork.hold(this.#stream);
      this.#socket.send(frame);
    }
  }

  #onMessage(data: unknown): void {
    if (this.#status !== 'open') return;
    if (typeof data === 'string') this.#frames.next(data);
    else if (data instanceof ArrayBuffer) this.#frames.next(new Uint8Array(data));
    else if (ArrayBuffer.isView(data)) this.#frames.next(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  #shut(reason: string, code: number): void {
    if (this.#status === 'closed') return;
    this.#status = 'closed';
    this.#queue = [];
    this.#state.next({ status: 'closed', reason, code });
    this.#state.complete();
    this.#frames.complete();
  }
}
