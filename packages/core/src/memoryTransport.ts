import { ReplaySubject, Subject, type Observable } from 'rxjs';
import { systemClock, type Clock } from './clock.js';
import type { Frame } from './codec.js';
import { createRandom, type Random } from './random.js';
import type { Transport, TransportState } from './transport.js';

/** Faults injected on a memory link, per frame and per direction. Probabilities are in [0, 1]. */
export interface LinkFaults {
  /** The frame is lost. */
  drop?: number;
  /** The frame is delivered twice. */
  duplicate?: number;
  /** The frame is held back by a random extra delay of up to `reorderWindowMs`, so later frames overtake it. */
  reorder?: number;
  reorderWindowMs?: number;
  /** Every frame waits this long (or a random time in the range). */
  delayMs?: number | readonly [number, number];
  /** The link is cut (both ends closed, frames in flight lost) instead of sending this frame. */
  disconnect?: number;
}

export interface MemoryLinkOptions {
  faults?: LinkFaults;
  /** Drives the faults; seed it to replay a run. Default: seeded from the clock. */
  random?: Random;
  /** Drives delays. Default: the system clock. */
  clock?: Clock;
}

/** Two linked transports, for tests and for embedding a hub in the same process. */
export interface MemoryLink {
  readonly client: Transport;
  readonly server: Transport;
  /** Changes the faults from now on (for example to heal the link at the end of a chaos run). */
  setFaults(faults: LinkFaults): void;
  /** Cuts the link abruptly: both ends close and frames in flight are lost. */
  disconnect(reason?: string): void;
}

interface MicrotaskHost {
  queueMicrotask(callback: () => void): void;
}
const queueMicrotask = (callback: () => void) => (globalThis as unknown as MicrotaskHost).queueMicrotask(callback);

class MemoryEnd implements Transport {
  readonly #frames = new Subject<Frame>();
  // A ReplaySubject, not a BehaviorSubject: once completed, a BehaviorSubject replays nothing, and a
  // late subscriber must still learn that the end is closed.
  readonly #state = new ReplaySubject<TransportState>(1);
  #open = true;
  readonly frames: Observable<Frame> = this.#frames.asObservable();
  readonly state: Observable<TransportState> = this.#state.asObservable();
  readonly info: Readonly<Record<string, unknown>>;
  peer!: MemoryEnd;

  constructor(
    private readonly link: Link,
    side: 'client' | 'server',
  ) {
    this.info = { transport: 'memory', side };
    this.#state.next({ status: 'open' });
  }

  get isOpen(): boolean {
    return this.#open;
  }

  send(frame: Frame): boolean {
    if (!this.isOpen) return false;
    this.link.carry(this.peer, frame);
    return true;
  }

  close(reason = 'closed'): void {
    if (!this.isOpen) return;
    this.shut(reason);
    // The peer sees the close after the frames already on their way, as over a real socket.
    this.link.carryClose(this.peer, reason);
  }

  receive(frame: Frame): void {
    if (this.isOpen) this.#frames.next(frame);
  }

  shut(reason: string): void {
    if (!this.isOpen) return;
    this.#open = false;
    this.#state.next({ status: 'closed', reason });
    this.#state.complete();
    this.#frames.complete();
  }
}

class Link implements MemoryLink {
  readonly client: MemoryEnd;
  readonly server: MemoryEnd;
  #faults: LinkFaults;
  readonly #random: Random;
  readonly #clock: Clock;
  #cut = false;
  /** Frames scheduled for delivery to each end and not delivered yet. */
  readonly #inFlight = new Map<MemoryEnd, number>();
  /** Closes that reached an end while frames sent before them were still in flight to it. */
  readonly #pendingClose = new Map<MemoryEnd, string>();

  constructor(options: MemoryLinkOptions) {
    this.#faults = options.faults ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? createRandom(this.#clock.now());
    this.client = new MemoryEnd(this, 'client');
    this.server = new MemoryEnd(this, 'server');
    this.client.peer = this.server;
    this.server.peer = this.client;
  }

  setFaults(faults: LinkFaults): void {
    this.#faults = faults;
  }

  disconnect(reason = 'link cut'): void {
    this.#cut = true;
    this.client.shut(reason);
    this.server.shut(reason);
  }

  carry(to: MemoryEnd, frame: Frame): void {
    const faults = this.#faults;
    const random = this.#random;
    if (faults.disconnect && random.chance(faults.disconnect)) {
      this.disconnect('injected disconnect');
      return;
    }
    if (faults.drop && random.chance(faults.drop)) return;
    const copies = faults.duplicate && random.chance(faults.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.#inFlight.set(to, (this.#inFlight.get(to) ?? 0) + 1);
      this.#schedule(() => {
        this.#inFlight.set(to, (this.#inFlight.get(to) ?? 1) - 1);
        to.receive(frame);
        this.#shutWhenDrained(to);
      }, this.#delay());
    }
  }

  carryClose(to: MemoryEnd, reason: string): void {
    this.#schedule(() => {
      this.#pendingClose.set(to, reason);
      this.#shutWhenDrained(to);
    }, this.#delay());
  }

  /** A close never overtakes the frames sent before it, whatever delays they drew. */
  #shutWhenDrained(to: MemoryEnd): void {
    const reason = this.#pendingClose.get(to);
    if (reason === undefined || (this.#inFlight.get(to) ?? 0) > 0) return;
    this.#pendingClose.delete(to);
    to.shut(reason);
  }

  #delay(): number {
    const { delayMs, reorder, reorderWindowMs = 20 } = this.#faults;
    let delay = 0;
    if (typeof delayMs === 'number') delay = delayMs;
    else if (delayMs) delay = delayMs[0] + this.#random.next() * (delayMs[1] - delayMs[0]);
    if (reorder && this.#random.chance(reorder)) delay += 1 + this.#random.next() * reorderWindowMs;
    return delay;
  }

  #schedule(deliver: () => void, delay: number): void {
    const run = () => {
      if (!this.#cut) deliver();
    };
    if (delay <= 0) queueMicrotask(run);
    else this.#clock.setTimeout(run, delay);
  }
}

/** Creates a linked pair of in-memory transports, with optional seeded fault injection. */
export function createMemoryLink(options: MemoryLinkOptions = {}): MemoryLink {
  return new Link(options);
}
