import type { Frame, Transport, TransportListener, TransportState } from '@lockstep/core';
import { Observable, type Subscriber } from 'rxjs';
import WebSocket from 'ws';
import { CloseCodes, closeReason, truncateReason } from '../closeReason.js';
import { TickCork, type Corkable } from '../tickCork.js';

/** Frames sent in one tick (a batch's acks, a broadcast) leave in one write per socket, after the microtasks. */
const cork = new TickCork((flush) => process.nextTick(flush));

const OPEN_STATE: TransportState = { status: 'open' };

/**
 * The server end of one accepted WebSocket, as a {@link Transport}: open from the start, text frames
 * as strings, binary frames as `Uint8Array` (a view on ws's buffer, no copy).
 *
 * `frames` and `state` behave as a Subject and a ReplaySubject(1) would (the first multicasts and
 * completes on close; the second replays the current state to each new subscriber and completes
 * after `closed`), but keep their subscribers in exact-size arrays instead: a hub holds thousands
 * of idle connections, and the two subjects with their observer arrays were about 0.8 KB of each.
 * For the same reason each read of `frames` or `state` makes a new (equivalent) Observable rather
 * than the transport keeping two for its whole life, and the hub does not subscribe at all: it is the
 * transport's one {@link TransportListener} (`listen`), which costs a field.
 */
export class ServerSocketTransport implements Transport {
  get frames(): Observable<Frame> {
    return new Observable((subscriber) => {
      if (!this.#open) {
        subscriber.complete();
        return undefined;
      }
      this.#frameSubscribers = added(this.#frameSubscribers, subscriber);
      return () => {
        this.#frameSubscribers = removed(this.#frameSubscribers, subscriber);
      };
    });
  }

  get state(): Observable<TransportState> {
    return new Observable((subscriber) => {
      subscriber.next(this.#state);
      if (!this.#open) {
        subscriber.complete();
        return undefined;
      }
      this.#stateSubscribers = added(this.#stateSubscribers, subscriber);
      return () => {
        this.#stateSubscribers = removed(this.#stateSubscribers, subscriber);
      };
    });
  }

  readonly info: Readonly<Record<string, unknown>>;
  readonly socket: WebSocket;
  /** The TCP socket under `socket` (the upgrade request's), corked per tick. */
  readonly #stream: Corkable | undefined;
  #open = true;
  #state: TransportState = OPEN_STATE;
  /** Replaced, never changed in place: an emission goes on over the array it started with. */
  #frameSubscribers: readonly Subscriber<Frame>[] | undefined;
  #stateSubscribers: readonly Subscriber<TransportState>[] | undefined;
  #listener: TransportListener | undefined;
  #lastError: string | undefined;
  /** Heartbeat pings sent since the peer last showed a sign of life. */
  missedPongs = 0;

  /** `stream`: the upgrade request's `socket`, which `ws` writes the frames to (corked per tick). */
  constructor(socket: WebSocket, info: Readonly<Record<string, unknown>>, stream?: Corkable) {
    this.socket = socket;
    this.info = info;
    this.#stream = stream;
    socket.on('message', (data, isBinary) => {
      this.missedPongs = 0;
      const subscribers = this.#frameSubscribers;
      const listener = this.#listener;
      if (!this.#open || (!subscribers && !listener)) return;
      const frame = isBinary ? toBytes(data) : textOf(data);
      listener?.onFrame(frame);
      if (subscribers) for (const subscriber of subscribers) subscriber.next(frame);
    });
    socket.on('pong', () => {
      this.missedPongs = 0;
    });
    // Without a listener an 'error' would be thrown into the event loop; ws closes the socket itself.
    socket.on('error', (error) => {
      this.#lastError = error.message;
    });
    socket.on('close', (code, reason) => this.#shut(closeReason(code, reason.toString(), this.#lastError), code));
  }

  listen(listener: TransportListener | undefined): void {
    if (this.#open) this.#listener = listener;
    else if (listener && this.#state.status === 'closed') listener.onClose(this.#state);
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  send(frame: Frame): boolean {
    if (!this.#open || this.socket.readyState !== WebSocket.OPEN) return false;
    cork.hold(this.#stream);
    this.socket.send(frame);
    return true;
  }

  close(reason = 'closed'): void {
    this.closeWith(CloseCodes.normal, reason);
  }

  /** Closes with a WebSocket close code; frames already queued still go out first. */
  closeWith(code: number, reason: string): void {
    if (!this.#open) return;
    this.socket.close(code, truncateReason(reason));
    this.#shut(reason, code);
  }

  /** Drops the connection at once, without a closing handshake (a dead peer would never answer it). */
  terminate(reason: string): void {
    this.socket.terminate();
    this.#shut(reason, CloseCodes.abnormal);
  }

  #shut(reason: string, code: number): void {
    if (!this.#open) return;
    this.#open = false;
    const state = { status: 'closed', reason, code } as const;
    this.#state = state;
    const watchers = this.#stateSubscribers ?? [];
    const readers = this.#frameSubscribers ?? [];
    const listener = this.#listener;
    this.#stateSubscribers = undefined;
    this.#frameSubscribers = undefined;
    this.#listener = undefined;
    for (const subscriber of watchers) subscriber.next(state);
    listener?.onClose(state);
    for (const subscriber of watchers) subscriber.complete();
    for (const subscriber of readers) subscriber.complete();
  }
}

function added<T>(list: readonly T[] | undefined, item: T): readonly T[] {
  return list ? [...list, item] : [item];
}

function removed<T>(list: readonly T[] | undefined, item: T): readonly T[] | undefined {
  if (!list) return undefined;
  const rest = list.filter((candidate) => candidate !== item);
  return rest.length > 0 ? rest : undefined;
}

/** A text frame's string (ws hands over a Buffer with its default `binaryType`). */
function textOf(data: WebSocket.RawData): string {
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(toBytes(data)).toString('utf8');
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  const buffer = Array.isArray(data) ? Buffer.concat(data) : data;
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
