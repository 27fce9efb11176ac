import type { Observable } from 'rxjs';
import type { Frame } from './codec.js';

export type TransportState =
  { readonly status: 'connecting' } | { readonly status: 'open' } | { readonly status: 'closed'; readonly reason: string; readonly code?: number };

/** What {@link Transport.listen} calls: the frames from the peer, in order, then the close, once. */
export interface TransportListener {
  onFrame(frame: Frame): void;
  onClose(state: Extract<TransportState, { status: 'closed' }>): void;
}

/**
 * The seam every transport implements: it carries frames, never domain objects.
 *
 * Lifecycle: `state` starts at `connecting` or `open`, reaches `open` at most once, and ends with
 * exactly one `closed`, after which `frames` completes and `send` is a no-op that answers false.
 */
export interface Transport {
  /** Incoming frames, in the order the peer sent them (for ordered transports). Completes on close. */
  readonly frames: Observable<Frame>;
  /** Replays the current state to each new subscriber. */
  readonly state: Observable<TransportState>;
  /** Queues a frame for the peer. False when the transport is closed (the frame is dropped). */
  send(frame: Frame): boolean;
  /** Closes both directions. Idempotent. */
  close(reason?: string): void;
  /** Bytes queued but not yet handed to the peer, when the transport can tell (slow-consumer policy). */
  readonly bufferedAmount?: number;
  /** Free-form facts about the peer (remote address, subprotocol) for auth hooks and logs. */
  readonly info?: Readonly<Record<string, unknown>>;
  /**
   * Optional: what `frames` and the close of `state` carry, handed to one listener object instead
   * of two rxjs subscriptions — the hub uses it when a transport has it, since it keeps thousands of
   * idle connections and the two subscriptions cost about 1.3 KB of each. One listener at a time;
   * `listen(undefined)` stops. On a closed transport `onClose` is called at once.
   */
  listen?(listener: TransportListener | undefined): void;
}
