import { randomUUID } from 'node:crypto';
import { LockstepError, PROTOCOL_VERSION, createMemoryLink, jsonCodec, type MemoryLink, type WireError } from '@lockstep/core';
import type { Hub, Identity } from '@lockstep/server';

/** The identity of the server's own in-process connections (SSE feeds, the terminal reconciler). */
export const REFERENCE_SERVER_IDENTITY: Identity = { id: 'reference-server', internal: true };

export interface HubPeerOptions {
  /**
   * Whom the connection reads for: the identity of the request it serves, which the hub's `authorize`
   * hook then sees (and `hub.reauthorize` re-checks). Given but undefined: an anonymous request, for
   * which the hub's `authenticate` hook is asked as for a `hello` without a token. Omitted: the server
   * itself ({@link REFERENCE_SERVER_IDENTITY}), for its own background work only.
   */
  identity?: Identity | undefined;
  /** Every notification of the connection (`events`, `resync`, `shutdown`, `unsubscribed`). */
  onNotification(method: string, params: unknown): void;
  /** The connection closed (the hub shut down, or `close()`). */
  onClose?(reason: string): void;
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: LockstepError): void;
}

/**
 * A lockstep/1 connection to a hub in the same process, over a memory link: the REST layer reads
 * streams the way every other client does — the same `subscribe` catch-up (events or a snapshot,
 * paging, `resync`), the same ordering of events and answers — instead of reaching into the hub.
 */
export class HubPeer {
  readonly #link: MemoryLink;
  readonly #pending = new Map<number, Pending>();
  readonly #options: HubPeerOptions;
  #nextId = 0;
  #closed = false;

  private constructor(hub: Hub, options: HubPeerOptions) {
    this.#options = options;
    this.#link = createMemoryLink();
    const identity = Object.hasOwn(options, 'identity') ? options.identity : REFERENCE_SERVER_IDENTITY;
    hub.accept(this.#link.server, identity === undefined ? { codec: jsonCodec } : { codec: jsonCodec, identity });
    this.#link.client.frames.subscribe((frame) => this.#onFrame(frame));
    this.#link.client.state.subscribe((state) => {
      if (state.status === 'closed') this.#onClosed(state.reason);
    });
  }

  /** Opens a connection and says `hello`; rejects with the hub's error (UNAVAILABLE when it is closing). */
  static async open(hub: Hub, options: HubPeerOptions): Promise<HubPeer> {
    const peer = new HubPeer(hub, options);
    try {
      await peer.request('hello', { protocol: PROTOCOL_VERSION, clientId: `reference-server-${randomUUID()}` });
    } catch (error) {
      peer.close();
      throw error;
    }
    return peer;
  }

  get closed(): boolean {
    return this.#closed;
  }

  request(method: string, params: unknown): Promise<unknown> {
    if (this.#closed) return Promise.reject(new LockstepError('UNAVAILABLE', 'the connection to the hub is closed'));
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#link.client.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  close(): void {
    this.#link.client.close('done');
    this.#onClosed('done');
  }

  #onFrame(frame: unknown): void {
    // Frames from the hub in this process: no size or depth limit applies (a catch-up page of large
    // events can be megabytes), unlike frames from a peer on the network.
    const message = JSON.parse(frame as string) as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: WireError };
    if (typeof message.id === 'number') {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) pending?.reject(LockstepError.fromWire(message.error));
      else pending?.resolve(message.result);
    } else if (typeof message.method === 'string') {
      this.#options.onNotification(message.method, message.params);
    }
  }

  #onClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.reject(new LockstepError('UNAVAILABLE', `the connection to the hub closed: ${reason}`));
    this.#pending.clear();
    this.#options.onClose?.(reason);
  }
}
