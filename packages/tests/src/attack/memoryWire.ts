import { createMemoryLink, jsonCodec, type Codec, type Frame, type MemoryLink } from '@lockstep/core';
import type { Hub } from '@lockstep/server';

/** A decoded message from the hub. */
export interface HubMessage {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string; data?: any };
}

/**
 * A raw lockstep/1 peer on an in-memory link to a hub (the hub's own Connection on the other end):
 * for volume, where a socket per message would only add time. Every message from the hub is kept in
 * `received`; responses also settle the promise of their request.
 */
export class MemoryWire {
  readonly received: HubMessage[] = [];
  readonly link: MemoryLink;
  closed: string | undefined;
  readonly #pending = new Map<string | number, (message: HubMessage) => void>();
  #nextId = 1;

  constructor(
    hub: Hub,
    readonly codec: Codec = jsonCodec,
  ) {
    this.link = createMemoryLink();
    hub.accept(this.link.server, { codec });
    this.link.client.frames.subscribe((frame) => this.#receive(frame));
    this.link.client.state.subscribe((state) => {
      if (state.status !== 'closed') return;
      this.closed = state.reason;
      for (const resolve of this.#pending.values()) resolve({ jsonrpc: '2.0', error: { code: 0, message: `closed: ${state.reason}` } });
      this.#pending.clear();
    });
  }

  /** Sends a frame as it is. */
  sendFrame(frame: Frame): void {
    this.link.client.send(frame);
  }

  /** Sends a request; resolves with its response (or a code-0 error if the link closes first). */
  call(method: string, params?: unknown): Promise<HubMessage> {
    if (this.closed !== undefined) return Promise.resolve({ jsonrpc: '2.0', error: { code: 0, message: `closed: ${this.closed}` } });
    // String ids of their own: frames sent raw (a fuzzer's) never answer one of these calls.
    const id = `wire-${this.#nextId++}`;
    const answered = new Promise<HubMessage>((resolve) => this.#pending.set(id, resolve));
    this.sendFrame(this.codec.encode(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params }));
    return answered;
  }

  close(): void {
    this.link.client.close('client closed');
  }

  #receive(frame: Frame): void {
    // A batch (only to a wire that said capabilities.batch in hello) holds several messages.
    const decoded = this.codec.decode(frame) as HubMessage | HubMessage[];
    for (const message of Array.isArray(decoded) ? decoded : [decoded]) this.#receiveMessage(message);
  }

  #receiveMessage(message: HubMessage): void {
    this.received.push(message);
    if (message.method === undefined && (typeof message.id === 'string' || typeof message.id === 'number')) {
      const resolve = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      resolve?.(message);
    }
  }
}
