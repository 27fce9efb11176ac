/** The part of a Node stream that holds writes back and lets them out together. */
export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly writableCorked: number;
}

/**
 * Frames sent within one tick leave in one write per socket: the first send of a tick corks the
 * socket, and every socket corked in the tick is uncorked together at its end. Every frame is still
 * its own WebSocket frame (one message per frame); only the system calls are shared. A hub that
 * answers a batch of 500 commands, or broadcasts a batch, makes one `writev` per connection instead
 * of one per frame (PERFORMANCE.md measured batching writes per tick as a 4–6× lever on raw `ws`).
 *
 * One instance serves every socket of a kind, so a connection costs nothing but a cork count on its
 * socket. The transports hand it the TCP socket under their WebSocket, reached through public API
 * (the upgrade request's `socket` on a server, the upgrade response's on a client; `ws` corks
 * around each frame itself, and corks nest); without one (a browser's WebSocket) it does nothing.
 */
export class TickCork {
  readonly #defer: (flush: () => void) => void;
  #corked: Corkable[] = [];

  /** `defer` runs the flush at the end of the tick: `process.nextTick` in Node, `queueMicrotask` elsewhere. */
  constructor(defer: (flush: () => void) => void) {
    this.#defer = defer;
  }

  /** Call before sending a frame on a WebSocket, with the stream it writes to (if known). */
  hold(stream: Corkable | undefined): void {
    if (stream === undefined) return;
    // Already corked in this tick (ws's own cork around a frame is always undone at once).
    if ((stream.writableCorked ?? 0) > 0) return;
    stream.cork();
    if (this.#corked.push(stream) === 1) this.#defer(this.#flush);
  }

  readonly #flush = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    for (const stream of corked) stream.uncork();
  };
}
