import { ReplaySubject, Subject, type Observable } from 'rxjs';
import type { Clock, Frame, LinkFaults, Random, Transport, TransportState } from '@lockstep/core';

type Closed = Extract<TransportState, { status: 'closed' }>;

/** A transport with faults injected, and the controls a chaos run needs (what a memory link has). */
export interface FaultyTransport extends Transport {
  /** Changes the faults from now on (to heal the connection at the end of a run). */
  setFaults(faults: LinkFaults): void;
  /** Cuts the connection abruptly: frames held back are lost, and the inner transport is closed. */
  disconnect(reason?: string): void;
}

export interface FaultyTransportOptions {
  faults: LinkFaults;
  /** Drives the faults: seed it to replay a run. */
  random: Random;
  /** Drives delays and reordering. */
  clock: Clock;
}

/**
 * Wraps any transport — a real WebSocket, a stdio pipe — in the faults of a memory link
 * ({@link LinkFaults}), per frame and in both directions: frames dropped, duplicated, delayed or
 * held back so later ones overtake them, and the connection cut. The inner transport still carries
 * every frame the decorator lets through, so a chaos run over real sockets sees both the sockets'
 * own behaviour and the injected faults. A close from the inner transport is passed on after the
 * frames held back before it, as a socket's would be.
 */
export function faultyTransport(inner: Transport, options: FaultyTransportOptions): FaultyTransport {
  return new Faulty(inner, options);
}

class Faulty implements FaultyTransport {
  readonly #frames = new Subject<Frame>();
  readonly #state = new ReplaySubject<TransportState>(1);
  readonly frames: Observable<Frame> = this.#frames.asObservable();
  readonly state: Observable<TransportState> = this.#state.asObservable();
  readonly info: Readonly<Record<string, unknown>>;
  #faults: LinkFaults;
  #closed = false;
  #cut = false;
  /** Incoming frames held back and not delivered yet. */
  #heldIn = 0;
  #pendingClose: Closed | undefined;

  constructor(
    private readonly inner: Transport,
    private readonly options: FaultyTransportOptions,
  ) {
    this.#faults = options.faults;
    this.info = { ...inner.info, faulty: true };
    inner.state.subscribe((state) => {
      if (state.status !== 'closed') {
        if (!this.#closed) this.#state.next(state);
        return;
      }
      this.#pendingClose = state;
      this.#closeWhenDrained();
    });
    inner.frames.subscribe((frame) =>
      this.#carry(frame, true, (copy) => {
        if (!this.#closed) this.#frames.next(copy);
      }),
    );
  }

  get bufferedAmount(): number {
    return this.inner.bufferedAmount ?? 0;
  }

  setFaults(faults: LinkFaults): void {
    this.#faults = faults;
  }

  send(frame: Frame): boolean {
    if (this.#closed) return false;
    this.#carry(frame, false, (copy) => void this.inner.send(copy));
    return true;
  }

  close(reason = 'closed'): void {
    this.inner.close(reason);
  }

  disconnect(reason = 'link cut'): void {
    this.#cut = true;
    this.#shut({ status: 'closed', reason });
    this.inner.close(reason);
  }

  #carry(frame: Frame, incoming: boolean, deliver: (frame: Frame) => void): void {
    const faults = this.#faults;
    const { random } = this.options;
    if (faults.disconnect && random.chance(faults.disconnect)) {
      this.disconnect('injected disconnect');
      return;
    }
    if (faults.drop && random.chance(faults.drop)) return;
    const copies = faults.duplicate && random.chance(faults.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.#delay();
      if (delay <= 0) {
        deliver(frame);
        continue;
      }
      if (incoming) this.#heldIn++;
      this.options.clock.setTimeout(() => {
        if (incoming) this.#heldIn--;
        if (!this.#cut) deliver(frame);
        if (incoming) this.#closeWhenDrained();
      }, delay);
    }
  }

  #delay(): number {
    const { delayMs, reorder, reorderWindowMs = 20 } = this.#faults;
    const { random } = this.options;
    let delay = 0;
    if (typeof delayMs === 'number') delay = delayMs;
    else if (delayMs) delay = delayMs[0] + random.next() * (delayMs[1] - delayMs[0]);
    if (reorder && random.chance(reorder)) delay += 1 + random.next() * reorderWindowMs;
    return delay;
  }

  #closeWhenDrained(): void {
    if (this.#pendingClose === undefined || this.#heldIn > 0) return;
    this.#shut(this.#pendingClose);
  }

  #shut(state: Closed): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state.next(state);
    this.#state.complete();
    this.#frames.complete();
  }
}
