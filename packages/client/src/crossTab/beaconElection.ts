import type { TimerHandle } from '@lockstep/core';
import type { ElectionHost, LeaderElection } from './leaderElection.js';
import type { TabMessage } from './tabPlatform.js';

export interface BeaconTimings {
  /** How often the leader says it is alive. */
  heartbeatMs: number;
  /** A follower that heard no beat this long claims the lead. */
  leaderTimeoutMs: number;
  /** How long a claim waits for a live leader or a smaller tab id to object before it leads. */
  claimMs: number;
}

export const BEACON_DEFAULTS: BeaconTimings = { heartbeatMs: 250, leaderTimeoutMs: 1_000, claimMs: 100 };

type Role = 'claiming' | 'waiting' | 'follower' | 'leader';

/**
 * The election over the BroadcastChannel alone, for browsers without Web Locks. The leader posts a
 * `beat` every `heartbeatMs`. A tab claims the lead (`claim`) when it starts, when the leader
 * resigns, or when it heard no beat for `leaderTimeoutMs`; a live leader answers a claim with a beat
 * at once, and of two claimers the smaller tab id goes on while the other waits. A claim nobody
 * objected to within `claimMs` leads. Should two tabs lead anyway (claims that crossed on a slow
 * channel), each hears the other's beats and the larger id steps down: the tie-break is
 * deterministic, so the group settles on one leader. Time comes from the injected clock only.
 * @internal
 */
export class BeaconElection implements LeaderElection {
  readonly decided: Promise<void>;
  #decide: () => void = () => {};
  #role: Role = 'claiming';
  #leader: string | undefined;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(
    private readonly host: ElectionHost,
    private readonly timings: BeaconTimings = BEACON_DEFAULTS,
  ) {
    this.decided = new Promise<void>((resolve) => (this.#decide = resolve));
    this.#claim();
  }

  /** The tab this one last heard leading (itself when it leads). */
  get leader(): string | undefined {
    return this.#leader;
  }

  get role(): Role {
    return this.#role;
  }

  receive(message: TabMessage): void {
    if (this.#closed || message.from === this.host.tabId) return;
    switch (message.kind) {
      case 'beat':
      case 'leader':
        if (this.#role !== 'leader') this.#follow(message.from);
        else if (message.from < this.host.tabId)
          this.#follow(message.from); // two leaders: the smaller id keeps the lead
        else this.#beat(); // …and tells the other at once
        return;
      case 'claim':
        if (this.#role === 'leader') this.#beat();
        else if (this.#role === 'claiming' && message.from < this.host.tabId) this.#wait();
        return;
      case 'resign':
        if (this.#role !== 'leader' && (this.#leader === undefined || this.#leader === message.from)) this.#claim();
        return;
      default:
        return;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clear();
    if (this.#role === 'leader') this.host.post({ kind: 'resign', from: this.host.tabId });
  }

  #claim(): void {
    this.#role = 'claiming';
    this.#leader = undefined;
    this.host.post({ kind: 'claim', from: this.host.tabId });
    this.#arm(this.timings.claimMs, () => {
      if (this.#role === 'claiming') this.#lead();
    });
  }

  /** A smaller id claims: let it lead; claim again if no beat comes. */
  #wait(): void {
    this.#role = 'waiting';
    this.#arm(this.timings.leaderTimeoutMs, () => this.#claim());
  }

  #lead(): void {
    this.#role = 'leader';
    this.#leader = this.host.tabId;
    this.#decide();
    this.host.lead();
    this.#beat();
  }

  #follow(leader: string): void {
    const demoted = this.#role === 'leader';
    this.#role = 'follower';
    this.#leader = leader;
    this.#arm(this.timings.leaderTimeoutMs, () => this.#claim());
    this.#decide();
    if (demoted) this.host.follow();
  }

  /** Posts a beat now and schedules the next. */
  #beat(): void {
    this.host.post({ kind: 'beat', from: this.host.tabId });
    this.#arm(this.timings.heartbeatMs, () => {
      if (this.#role === 'leader') this.#beat();
    });
  }

  #arm(ms: number, then: () => void): void {
    this.#clear();
    this.#timer = this.host.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) then();
    }, ms);
  }

  #clear(): void {
    if (this.#timer !== undefined) this.host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
