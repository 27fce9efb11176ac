import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStreamOptions {
  /** A comment line is sent this often, so proxies and clients see the stream is alive. */
  heartbeatMs: number;
  /** Past this many unsent bytes the stream is "full": the writer pauses its source until it drains. */
  highWaterBytes: number;
  /** `retry:` sent first: how long EventSource waits before reconnecting. */
  retryMs: number;
}

/** One Server-Sent Event. */
export interface ServerSentEvent {
  id?: string | number;
  event?: string;
  data: unknown;
}

/**
 * A `text/event-stream` response: writes events, sends heartbeats, and says when the client is not
 * keeping up (`full`) so the source can pause instead of the server buffering without bound.
 */
export class EventStream {
  readonly #response: ServerResponse;
  readonly #options: EventStreamOptions;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #onClose = new Set<() => void>();
  #closed = false;

  constructor(request: IncomingMessage, response: ServerResponse, options: EventStreamOptions) {
    this.#response = response;
    this.#options = options;
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store, no-transform',
      Connection: 'keep-alive',
      // Tells buffering reverse proxies (nginx) to pass events through at once.
      'X-Accel-Buffering': 'no',
    });
    response.write(`retry: ${options.retryMs}\n\n`);
    this.#heartbeat = setInterval(() => this.#write(`: heartbeat ${Date.now()}\n\n`), options.heartbeatMs);
    this.#heartbeat.unref();
    const closed = () => this.close();
    request.once('close', closed);
    response.once('close', closed);
    response.once('error', closed);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes written but not yet taken by the socket. */
  get bufferedBytes(): number {
    return this.#response.writableLength;
  }

  /** The client is not keeping up: stop sending until `onDrain`. */
  get full(): boolean {
    return this.bufferedBytes > this.#options.highWaterBytes;
  }

  send(event: ServerSentEvent): void {
    let text = '';
    if (event.id !== undefined) text += `id: ${event.id}\n`;
    if (event.event !== undefined) text += `event: ${event.event}\n`;
    // JSON has no raw newlines, so the data is always one `data:` line.
    text += `data: ${JSON.stringify(event.data)}\n\n`;
    this.#write(text);
  }

  /** Calls `listener` once the socket has taken what was buffered. */
  onDrain(listener: () => void): void {
    this.#response.once('drain', listener);
  }

  /** Calls `listener` once when the stream closes (the client went away, or `close()`). */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#onClose.add(listener);
  }

  /** Ends the response (the client reconnects with `Last-Event-ID`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    if (!this.#response.writableEnded) this.#response.end();
    for (const listener of this.#onClose) listener();
    this.#onClose.clear();
  }

  #write(text: string): void {
    if (!this.#closed) this.#response.write(text);
  }
}
