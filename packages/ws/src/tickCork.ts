/** The part of a Node stream that holds writes back and lets them out together. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Frames sent within one tick leave in one write: the first send corks the socket, and the uncork
 * is deferred to the end of the tick. Every frame is still its own WebSocket frame (one message per
 * frame); only the system calls are shared. A hub that answers a batch of 500 commands and
 * broadcasts their events makes one `writev` per connection instead of 500 (PERFORMANCE.md measured
 * batching writes per tick as a 4–6× lever on raw `ws`).
 *
 * Works on `ws` sockets in Node, whose TCP socket sits in `_socket` (`ws` corks around each frame
 * itself, and corks nest); anywhere else (a browser's WebSocket) it does nothing.
 */
export class TickCork {
  readonly #socket: { readonly _socket?: unknown };
  readonly #defer: (release: () => void) => void;
  #corked: Corkable | undefined;

  constructor(socket: object, defer: (release: () => void) => void) {
    this.#socket = socket as { readonly _socket?: unknown };
    this.#defer = defer;
  }

  /** Call before sending a frame. */
  hold(): void {
    if (this.#corked) return;
    const stream = this.#socket._socket as Partial<Corkable> | null | undefined;
    if (!stream || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return;
    stream.cork();
    this.#corked = stream as Corkable;
    this.#defer(this.#release);
  }

  readonly #release = (): void => {
    const stream = this.#corked;
    this.#corked = undefined;
    stream?.uncork();
  };
}
