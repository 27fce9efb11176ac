import { createMemoryLink, jsonCodec, TransportError, type Codec, type MemoryLink } from '@lockstep/core';
import { TestPeer, type PeerMessage } from '@lockstep/core/testing';
import type { Hub } from '@lockstep/server';

/** A decoded message from the hub. */
export type HubMessage = PeerMessage;

/**
 * A raw lockstep/1 peer on an in-memory link to a hub (the hub's own Connection on the other end):
 * for volume, where a socket per message would only add time. A {@link TestPeer} — every message
 * from the hub is kept in `received` — whose `call` never rejects: a call the link closes under
 * answers a code-0 error, so that a fuzzer's loop reads every outcome the same way.
 */
export class MemoryWire extends TestPeer {
  readonly link: MemoryLink;

  constructor(hub: Hub, codec: Codec = jsonCodec) {
    const link = createMemoryLink();
    // No timeout of its own: the volume tests wait as long as their runner allows, as before.
    super(link.client, { codec, timeoutMs: false });
    this.link = link;
    hub.accept(link.server, { codec });
  }

  /** The reason the link closed, once it has. */
  get closedReason(): string | undefined {
    return this.closedState?.reason;
  }

  /** Sends a request; resolves with its response (or a code-0 error if the link closes first). */
  override async call(method: string, params?: unknown): Promise<HubMessage> {
    const closed = (): HubMessage => ({ jsonrpc: '2.0', error: { code: 0, message: `closed: ${this.closedReason}` } });
    if (this.closedReason !== undefined) return closed();
    // String ids of their own: frames sent raw (a fuzzer's) never answer one of these calls.
    const id = `wire-${++this.#calls}`;
    try {
      return await this.response(this.sendRequest(method, params, id));
    } catch (error) {
      if (error instanceof TransportError && error.kind === 'closed') return closed();
      throw error;
    }
  }

  #calls = 0;

  override close(): void {
    super.close('client closed');
  }
}
