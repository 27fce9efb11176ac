import type { Frame, Transport, TransportState } from '@lockstep/core';
import { ReplaySubject, Subject, type Observable } from 'rxjs';
import WebSocket from 'ws';
import { CloseCodes, closeReason, truncateReason } from '../closeReason.js';
import { TickCork } from '../tickCork.js';

/** Frames sent in one tick (a batch's acks, a broadcast) leave in one write per socket, after the microtasks. */
const cork = new TickCork((flush) => process.nextTick(flush));

/**
 * The server end of one accepted WebSocket, as a {@link Transport}: open from the start, text frames
 * as strings, binary frames as `Uint8Array` (a view on ws's buffer, no copy).
 */
export class ServerSocketTransport implements Transport {
  readonly #frames = new Subject<Frame>();
  readonly #state = new ReplaySubject<TransportState>(1);
  readonly frames: Observable<Frame> = this.#frames.asObservable();
  readonly state: Observable<TransportState> = this.#state.asObservable();
  readonly info: Readonly<Record<string, unknown>>;
  readonly socket: WebSocket;
  #open = true;
  #lastError: string | undefined;
  /** Heartbeat pings sent since the peer last showed a sign of life. */
  missedPongs = 0;

  constructor(socket: WebSocket, info: Readonly<Record<string, unknown>>) {
    this.socket = socket;
    this.info = info;
    this.#state.next({ status: 'open' });
    socket.on('message', (data, isBinary) => {
      this.missedPongs = 0;
      if (!this.#open) return;
      this.#frames.next(isBinary ? toBytes(data) : data.toString());
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

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  send(frame: Frame): boolean {
    if (!this.#open || this.socket.readyState !== WebSocket.OPEN) return false;
    cork.hold(this.socket);
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
    this.#state.next({ status: 'closed', reason, code });
    this.#state.complete();
    this.#frames.complete();
  }
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  const buffer = Array.isArray(data) ? Buffer.concat(data) : data;
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
