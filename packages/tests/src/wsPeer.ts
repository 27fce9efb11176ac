import WebSocket from 'ws';

export type Direction = '>>' | '<<';

/** How a peer writes and reads messages: JSON text by default, as a peer in any language would. */
export interface PeerCodec {
  encode(message: unknown): string | Uint8Array;
  decode(frame: string | Uint8Array): unknown;
}

const jsonByHand: PeerCodec = {
  encode: (message) => JSON.stringify(message),
  decode: (frame) => JSON.parse(typeof frame === 'string' ? frame : Buffer.from(frame).toString('utf8')),
};

/**
 * A lockstep/1 peer with no Lockstep code: a plain `ws` socket, JSON written and read by hand, as a
 * Python or Rust client would. It records every frame in both directions.
 */
export class RawPeer {
  readonly log: Array<{ direction: Direction; frame: string | Uint8Array }> = [];
  readonly #inbox: Array<string | Uint8Array> = [];
  readonly #waiting: Array<(frame: string | Uint8Array) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #nextId = 1;

  private constructor(
    readonly socket: WebSocket,
    readonly codec: PeerCodec,
  ) {
    socket.on('message', (data, isBinary) => {
      const frame = isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString();
      this.log.push({ direction: '<<', frame });
      const waiter = this.#waiting.shift();
      if (waiter) waiter(frame);
      else this.#inbox.push(frame);
    });
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Opens a socket; resolves once open, rejects with the HTTP refusal or the network error. */
  static connect(
    url: string,
    protocols: string[] = ['lockstep.v1.json'],
    options: WebSocket.ClientOptions = {},
    codec: PeerCodec = jsonByHand,
  ): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, protocols, options);
      socket.once('open', () => resolve(new RawPeer(socket, codec)));
      socket.once('error', reject);
      socket.on('error', () => {});
    });
  }

  /** Sends a frame as is (a string is a text frame, bytes a binary frame). */
  sendRaw(frame: string | Uint8Array): void {
    this.log.push({ direction: '>>', frame });
    this.socket.send(frame);
  }

  /** Sends one message in the peer's codec. */
  send(message: unknown): void {
    this.sendRaw(this.codec.encode(message));
  }

  /** Sends one JSON-RPC request with the next numeric id; returns the id. */
  request(method: string, params?: unknown): number {
    const id = this.#nextId++;
    this.send(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
    return id;
  }

  /** The next message from the server, decoded. */
  async next(): Promise<any> {
    const frame = this.#inbox.shift() ?? (await new Promise<string | Uint8Array>((resolve) => this.#waiting.push(resolve)));
    return this.codec.decode(frame);
  }

  /** Frames received so far and not read with `next` (no waiting). */
  get unread(): number {
    return this.#inbox.length;
  }

  /** Reads frames until the response to `id` (notifications met on the way are returned too). */
  async response(id: number | string | null): Promise<{ response: any; before: any[] }> {
    const before: any[] = [];
    for (;;) {
      const message = await this.next();
      if ('id' in message && message.id === id && !('method' in message)) return { response: message, before };
      before.push(message);
    }
  }

  /** Sends a request and reads until its response. */
  async call(method: string, params?: unknown): Promise<any> {
    return (await this.response(this.request(method, params))).response;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close(1000, 'bye');
    return this.closed;
  }
}
