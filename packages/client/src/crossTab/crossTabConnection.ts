import { randomId, systemClock, type AnyDomain, type Clock, type Transport } from '@lockstep/core';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { LockstepClient } from '../client.js';
import { TabRelaySession } from './tabRelay.js';
import { isTabMessage, platformChannel, platformLocks, type BroadcastChannelLike, type TabMessage } from './tabPlatform.js';
import { TabTransport } from './tabTransport.js';

export interface CrossTabOptions {
  /** Opens the connection to the hub; only the leader tab calls it. */
  connect: () => Transport | Promise<Transport>;
  /** The domains of the streams the tabs open (the leader opens them for its followers). */
  domains: readonly AnyDomain[];
  /** Names the group of tabs that share one connection (the Web Lock's and the channel's names). Default `lockstep`. */
  name?: string;
  /** How long a follower waits for a leader to answer before it tries again. Default 500 ms. */
  openTimeoutMs?: number;
  clock?: Clock;
}

export const CROSS_TAB_DEFAULTS = { name: 'lockstep', openTimeoutMs: 500 } as const;

/** One connection for all tabs of an origin: pass `connect` to `createClient`, then `serve(client)`. */
export interface CrossTabConnection {
  /** `ClientOptions.connect`: the hub's connection in the leader tab, a link to the leader elsewhere. */
  readonly connect: () => Transport | Promise<Transport>;
  /** Serves the other tabs through this tab's client while it leads. Call once, right after `createClient`. */
  serve(client: LockstepClient): void;
  /** This tab holds the connection. */
  readonly isLeader: boolean;
  readonly leader$: Observable<boolean>;
  /** Leaves the group: gives the lead up (another tab takes it) and closes the channel. */
  close(): void;
}

/**
 * Shares one hub connection between the tabs of an origin (docs/offline.md). The tab holding a Web
 * Lock leads: its client connects to the hub and answers the others, whose clients talk to it over
 * a BroadcastChannel with the same protocol — same API, and their command ids go to the hub
 * unchanged, so the hub's dedup keeps every command exactly-once across hand-overs. When the
 * leader closes or dies, its lock passes to a waiting tab, which connects and announces itself; the
 * others reconnect to it and re-send what was unacknowledged.
 *
 * Without Web Locks or BroadcastChannel (an old browser, Node), every tab simply connects on its own.
 */
export function crossTabConnection(options: CrossTabOptions): CrossTabConnection {
  return new TabGroup(options);
}

class TabGroup implements CrossTabConnection {
  readonly #options: CrossTabOptions;
  readonly #clock: Clock;
  readonly #tabId = `tab-${randomId(12)}`;
  readonly #leader$ = new BehaviorSubject(false);
  readonly #domains: ReadonlyMap<string, AnyDomain>;
  readonly #sessions = new Map<string, TabRelaySession>();
  readonly #channel: BroadcastChannelLike | undefined;
  readonly #decided: Promise<void>;
  #client: LockstepClient | undefined;
  #transport: TabTransport | undefined;
  #release: () => void = () => {};
  #closed = false;

  constructor(options: CrossTabOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#domains = new Map(options.domains.map((domain) => [domain.name, domain]));
    const Channel = platformChannel();
    const locks = platformLocks();
    if (!Channel || !locks) {
      this.#leader$.next(true);
      this.#decided = Promise.resolve();
      return;
    }
    const name = options.name ?? CROSS_TAB_DEFAULTS.name;
    const channel = new Channel(`lockstep-tabs:${name}`);
    this.#channel = channel;
    channel.onmessage = (event) => {
      if (isTabMessage(event.data)) this.#receive(event.data);
    };
    const held = new Promise<void>((resolve) => (this.#release = resolve));
    const lockName = `lockstep-leader:${name}`;
    // Lead at once if no tab does; otherwise follow, and queue for the lead.
    this.#decided = new Promise<void>((decided) => {
      void locks.request(lockName, { ifAvailable: true }, (lock) => {
        decided();
        if (lock) {
          this.#lead();
          return held;
        }
        if (!this.#closed) {
          void locks.request(lockName, () => {
            if (this.#closed) return Promise.resolve();
            this.#lead();
            return held;
          });
        }
        return Promise.resolve();
      });
    });
  }

  readonly connect = async (): Promise<Transport> => {
    await this.#decided;
    if (this.#leader$.value) return this.#options.connect();
    const transport = new TabTransport(this.#tabId, (message) => this.#post(message), this.#clock, this.#options.openTimeoutMs ?? CROSS_TAB_DEFAULTS.openTimeoutMs, (closed) => {
      if (this.#transport === closed) this.#transport = undefined;
    });
    this.#transport = transport;
    return transport;
  };

  serve(client: LockstepClient): void {
    this.#client = client;
  }

  get isLeader(): boolean {
    return this.#leader$.value;
  }

  get leader$(): Observable<boolean> {
    return this.#leader$.asObservable();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const session of this.#sessions.values()) session.close();
    this.#sessions.clear();
    this.#transport?.close('tab left the group');
    this.#release();
    this.#channel?.close();
    this.#leader$.complete();
  }

  #lead(): void {
    if (this.#closed) return;
    this.#leader$.next(true);
    this.#post({ kind: 'leader', from: this.#tabId });
    // This tab's client was linked to the old leader: it reconnects, to the hub this time.
    this.#transport?.close('this tab leads now');
  }

  #receive(message: TabMessage): void {
    if (message.kind === 'leader') {
      this.#transport?.receive(message);
      return;
    }
    if (message.to !== this.#tabId && !(message.to === 'leader' && this.#leader$.value)) return;
    if (!this.#leader$.value || message.kind === 'opened') {
      this.#transport?.receive(message);
      return;
    }
    const from = message.from;
    if (message.kind === 'open') {
      const client = this.#client;
      if (!client) return; // not serving yet: the follower times out and asks again
      this.#sessions.get(from)?.close();
      this.#sessions.set(from, new TabRelaySession(client, this.#domains, (frame) => this.#post({ kind: 'frame', from: this.#tabId, to: from, frame })));
      this.#post({ kind: 'opened', from: this.#tabId, to: from });
    } else if (message.kind === 'frame') {
      this.#sessions.get(from)?.handle(message.frame);
    } else if (message.kind === 'close') {
      this.#sessions.get(from)?.close();
      this.#sessions.delete(from);
    }
  }

  #post(message: TabMessage): void {
    if (!this.#closed) this.#channel?.postMessage(message);
  }
}
