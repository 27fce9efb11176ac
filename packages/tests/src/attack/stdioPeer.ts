import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { FrameReader, encodeFrame } from '@lockstep/stdio';

/**
 * A lockstep/1 peer over stdio framing (LSP base protocol) on a real kernel byte stream (a Unix
 * socket), with no Lockstep client code: it writes frames or raw bytes by hand and reads every byte
 * it gets back through a FrameReader, so a stray byte that is not a frame shows up in `problems`.
 */
export class StdioPeer {
  readonly problems: string[] = [];
  readonly closed: Promise<{ reason: string }>;
  readonly #inbox: unknown[] = [];
  readonly #waiting: Array<(message: unknown) => void> = [];
  #nextId = 1;

  private constructor(readonly socket: Socket) {
    const reader = new FrameReader({
      onMessage: (body) => {
        const message: unknown = JSON.parse(body);
        const waiter = this.#waiting.shift();
        if (waiter) waiter(message);
        else this.#inbox.push(message);
      },
      onError: (error) => this.problems.push(error.message),
      onFatal: (error) => this.problems.push(`fatal: ${error.message}`),
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve({ reason: 'socket closed' })));
  }

  static connect(path: string): Promise<StdioPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new StdioPeer(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes bytes as they are, framing or not. */
  writeRaw(bytes: string | Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Sends one frame: a Content-Length header and the body (text as UTF-8, bytes as they are). */
  sendFrame(body: string | Uint8Array): void {
    if (typeof body === 'string') {
      this.writeRaw(encodeFrame(body));
      return;
    }
    this.writeRaw(Buffer.concat([Buffer.from(`Content-Length: ${body.byteLength}\r\n\r\n`, 'latin1'), body]));
  }

  send(message: unknown): void {
    this.sendFrame(JSON.stringify(message));
  }

  request(method: string, params?: unknown): number {
    const id = this.#nextId++;
    this.send(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
    return id;
  }

  async next(): Promise<any> {
    if (this.#inbox.length > 0) return this.#inbox.shift();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  get unread(): number {
    return this.#inbox.length;
  }

  async response(id: number | string | null): Promise<{ response: any; before: any[] }> {
    const before: any[] = [];
    for (;;) {
      const message = await this.next();
      if (typeof message === 'object' && message !== null && 'id' in message && message.id === id && !('method' in message))
        return { response: message, before };
      before.push(message);
    }
  }

  async call(method: string, params?: unknown): Promise<any> {
    return (await this.response(this.request(method, params))).response;
  }

  close(): Promise<{ reason: string }> {
    this.socket.end();
    return this.closed;
  }

  terminate(): void {
    this.socket.destroy();
  }
}
