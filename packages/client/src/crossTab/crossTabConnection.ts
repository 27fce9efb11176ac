import { randomId, systemClock, type AnyDomain, type Clock, type Transport } from '@lockstep/core';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { LockstepClient } from '../client.js';
import { BEACON_DEFAULTS, BeaconElection } from './beaconElection.js';
import { LockElection, type ElectionHost, type LeaderElection } from './leaderElection.js';
import { TabRelaySession } from './tabRelay.js';
import {
  isTabMessage,
  platformChannel,
  platformLocks,
  type BroadcastChannelFactory,
  type BroadcastChannelLike,
  type LockManagerLike,
  type TabMessage,
} from './tabPlatform.js';
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
  /** Without Web Locks (the BroadcastChannel election): how often the leader says it is alive. Default 250 ms. */
  heartbeatMs?: number;
  /** Without Web Locks: a follower that heard no beat of the leader this long claims the lead. Default 1,000 ms. */
  leaderTimeoutMs?: number;
  /** Without Web Locks: how long a claim waits for an objection (a live leader, a smaller tab id). Default 100 ms. */
  claimMs?: number;
  /** A new leader whose client's storage is held by another tab tries to take it over this often while it leads. Default 1,000 ms. */
  storageRetryMs?: number;
  clock?: Clock;
  /** For tests: the platform's BroadcastChannel and Web Locks (`null`: none). Default: the globals. */
  platform?: { BroadcastChannel?: BroadcastChannelFactory | null; locks?: LockManagerLike | null };
}

export const CROSS_TAB_DEFAULTS = {
  name: 'lockstep',
  openTimeoutMs: 500,
  heartbeatMs: BEACON_DEFAULTS.heartbeatMs,
  leaderTimeoutMs: BEACON_DEFAULTS.leaderTimeoutMs,
  claimMs: BEACON_DEFAULTS.claimMs,
  storageRetryMs: 1_000,
} as const;

/** One connection for all tabs of an origin: pass `connect` to `createClient`, then `serve(client)`. */
export interface CrossTabConnection {
  /** `ClientOptions.connect`: the hub's connection in the leader tab, a link to the leader elsewhere. */
  readonly connect: () => Transport | Promise<Transport>;
  /** Serves the other tabs through this tab's client while it leads. Call once, right after `createClient`. */
  serve(client: LockstepClient): void;
  /** This tab holds the connection. */
  readonly isLeader: boolean;
  readonly leader$: Observable<boolean>;
  /** How this group elects its leader: `locks` (Web Locks), `beacon` (BroadcastChannel heartbeats), or `none` (every tab connects on its own). */
  readonly election: 'locks' | 'beacon' | 'none';
  /** Leaves the group: gives the lead up (another tab takes it) and closes the channel. */
  close(): void;
}

/**
 * Shares one hub connection between the tabs of an origin (docs/offline.md). One tab leads — the
 * holder of a Web Lock, or without Web Locks the winner of a heartbeat election on the channel — its
 * client connects to the hub and answers the others, whose clients talk to it over a
 * BroadcastChannel with the same protocol: same API, their command ids go to the hub unchanged (the
 * hub's dedup keeps every command exactly-once across hand-overs), and their service calls are made
 * on the leader's connection. When the leader closes or dies, another tab takes the lead, connects
 * and announces itself; the others reconnect to it and re-send what was unacknowledged, and the new
 * leader takes the dead one's storage over (its stored commands are sent again, with their ids).
 *
 * Without BroadcastChannel (Node, an old browser), every tab simply connects on its own.
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
  readonly #locks: LockManagerLike | undefined;
  readonly #election: LeaderElection | undefined;
  readonly #decided: Promise<void>;
  readonly #name: string;
  readonly election: 'locks' | 'beacon' | 'none';
  #client: LockstepClient | undefined;
  #untap: (() => void) | undefined;
  #transport: TabTransport | undefined;
  /** The hub connection this tab's client holds while it leads. */
  #hub: Transport | undefined;
  #release: () => void = () => {};
  #takingStorage = false;
  #closed = false;

  constructor(options: CrossTabOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#name = options.name ?? CROSS_TAB_DEFAULTS.name;
    this.#domains = new Map(options.domains.map((domain) => [domain.name, domain]));
    const platform = options.platform ?? {};
    const Channel = platform.BroadcastChannel === undefined ? platformChannel() : (platform.BroadcastChannel ?? undefined);
    const locks = platform.locks === undefined ? platformLocks() : (platform.locks ?? undefined);
    if (!Channel) {
      this.election = 'none';
      this.#leader$.next(true);
      this.#decided = Promise.resolve();
      return;
    }
    const channel = new Channel(`lockstep-tabs:${this.#name}`);
    this.#channel = channel;
    this.#locks = locks;
    channel.onmessage = (event: { data: unknown }) => {
      if (isTabMessage(event.data)) this.#receive(event.data);
    };
    const host: ElectionHost = {
      tabId: this.#tabId,
      clock: this.#clock,
      post: (message) => this.#post(message),
      lead: () => this.#lead(),
      follow: () => this.#follow(),
    };
    if (locks) {
      this.election = 'locks';
      // Held while this tab lives: a leader learns that a follower is gone when it can take this lock.
      const alive = new Promise<void>((resolve) => (this.#release = resolve));
      void locks.request(this.#tabLock(this.#tabId), () => alive);
      this.#election = new LockElection(locks, `lockstep-leader:${this.#name}`, host);
    } else {
      this.election = 'beacon';
      this.#election = new BeaconElection(host, {
        heartbeatMs: options.heartbeatMs ?? CROSS_TAB_DEFAULTS.heartbeatMs,
        leaderTimeoutMs: options.leaderTimeoutMs ?? CROSS_TAB_DEFAULTS.leaderTimeoutMs,
        claimMs: options.claimMs ?? CROSS_TAB_DEFAULTS.claimMs,
      });
    }
    this.#decided = this.#election.decided;
  }

  readonly connect = async (): Promise<Transport> => {
    await this.#decided;
    if (this.#leader$.value) {
      const hub = await this.#options.connect();
      if (!this.#leader$.value) {
        // Demoted while connecting (the BroadcastChannel election's tie-break): go through the leader.
        hub.close('another tab leads');
        throw new Error('another tab took the lead');
      }
      this.#hub = hub;
      return hub;
    }
    const transport = new TabTransport(
      this.#tabId,
      (message) => this.#post(message),
      this.#clock,
      this.#options.openTimeoutMs ?? CROSS_TAB_DEFAULTS.openTimeoutMs,
      (closed) => {
        if (this.#transport === closed) this.#transport = undefined;
      },
    );
    this.#transport = transport;
    return transport;
  };

  serve(client: LockstepClient): void {
    this.#untap?.();
    this.#client = client;
    // The hub's service notifications reach the followers that called those services.
    this.#untap = client.onServiceNotification((method, params) => {
      for (const session of this.#sessions.values()) session.hubNotification(method, params);
    });
    if (this.#leader$.value) void this.#takeStorage();
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
    this.#closeSessions('the leader tab left the group');
    this.#transport?.close('tab left the group');
    this.#untap?.();
    this.#election?.close();
    this.#release();
    this.#channel?.close();
    this.#leader$.complete();
  }

  #lead(): void {
    if (this.#closed || this.#leader$.value) return;
    this.#leader$.next(true);
    this.#post({ kind: 'leader', from: this.#tabId });
    // This tab's client was linked to the old leader: it reconnects, to the hub this time.
    this.#transport?.close('this tab leads now');
    void this.#takeStorage();
  }

  /** Another tab leads (BroadcastChannel election, two leaders met): hand the followers and the hub connection over. */
  #follow(): void {
    if (this.#closed || !this.#leader$.value) return;
    this.#leader$.next(false);
    this.#closeSessions('another tab leads');
    const hub = this.#hub;
    this.#hub = undefined;
    hub?.close('another tab leads');
  }

  /**
   * The storage the dead leader held (its pending commands, its streams) comes to the new leader: its
   * client, working in memory because that storage was held, opens it, merges the stored commands by
   * id and sends them. Tried again every `storageRetryMs` while another tab still holds it.
   */
  async #takeStorage(): Promise<void> {
    const client = this.#client;
    if (!client || this.#takingStorage) return;
    this.#takingStorage = true;
    try {
      while (!this.#closed && this.#leader$.value && this.#client === client) {
        if ((await client.adoptStorage()) !== 'locked') return;
        await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, this.#options.storageRetryMs ?? CROSS_TAB_DEFAULTS.storageRetryMs));
      }
    } finally {
      this.#takingStorage = false;
    }
  }

  #receive(message: TabMessage): void {
    if (this.#closed) return;
    if (message.kind === 'beat' || message.kind === 'claim' || message.kind === 'resign') {
      this.#election?.receive(message);
      return;
    }
    if (message.kind === 'leader') {
      this.#election?.receive(message);
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
      const session = new TabRelaySession(client, this.#domains, (frame) => this.#post({ kind: 'frame', from: this.#tabId, to: from, frame }));
      this.#sessions.set(from, session);
      this.#watch(from, session);
      this.#post({ kind: 'opened', from: this.#tabId, to: from });
    } else if (message.kind === 'frame') {
      this.#sessions.get(from)?.handle(message.frame);
    } else if (message.kind === 'close') {
      this.#sessions.get(from)?.close();
      this.#sessions.delete(from);
    }
  }

  /** With Web Locks: the session ends when its tab dies (its liveness lock is released), calls and subscriptions with it. */
  #watch(tab: string, session: TabRelaySession): void {
    void this.#locks?.request(this.#tabLock(tab), () => {
      if (this.#sessions.get(tab) === session) {
        session.close();
        this.#sessions.delete(tab);
      }
      return Promise.resolve();
    });
  }

  #closeSessions(reason: string): void {
    for (const [tab, session] of this.#sessions) {
      session.close();
      this.#post({ kind: 'close', from: this.#tabId, to: tab, reason });
    }
    this.#sessions.clear();
  }

  #tabLock(tab: string): string {
    return `lockstep-tab:${this.#name}:${tab}`;
  }

  #post(message: TabMessage): void {
    if (!this.#closed || message.kind === 'close' || message.kind === 'resign') this.#channel?.postMessage(message);
  }
}
