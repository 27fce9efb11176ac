import { afterEach, describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '@lockstep/core';
import { BeaconElection, type BeaconTimings } from './beaconElection.js';
import type { TabMessage } from './tabPlatform.js';

/**
 * The BroadcastChannel election (no Web Locks), over Node's real BroadcastChannel, with time driven
 * by a manual clock: every message posted is delivered before the clock moves on, so no assertion
 * depends on how fast this machine is.
 */

const TIMINGS: BeaconTimings = { heartbeatMs: 250, leaderTimeoutMs: 1_000, claimMs: 100 };

class ManualClock implements Clock {
  #now = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; run: () => void }>();
  now(): number {
    return this.#now;
  }
  setTimeout(run: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), run });
    return id;
  }
  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }
  /** The earliest timer due by `until`, removed. */
  take(until: number): (() => void) | undefined {
    let first: [number, { at: number; run: () => void }] | undefined;
    for (const entry of this.#timers) if (entry[1].at <= until && (!first || entry[1].at < first[1].at)) first = entry;
    if (!first) return undefined;
    this.#timers.delete(first[0]);
    this.#now = first[1].at;
    return first[1].run;
  }
  set(now: number): void {
    this.#now = now;
  }
}

interface Tab {
  id: string;
  election: BeaconElection;
  leads: boolean;
  demotions: number;
  alive: boolean;
  channel: BroadcastChannel;
}

let groups = 0;
const open: BroadcastChannel[] = [];
afterEach(() => {
  for (const channel of open.splice(0)) channel.close();
});

/** Tabs on one channel name; `partition` drops messages between two sides while set. */
function world() {
  const name = `beacon-test-${process.pid}-${groups++}`;
  const clock = new ManualClock();
  const tabs: Tab[] = [];
  let posted = 0;
  let handled = 0;
  let partition: ((from: string, to: string) => boolean) | undefined;

  const start = (id: string): Tab => {
    const channel = new BroadcastChannel(name);
    open.push(channel);
    const tab = { id, leads: false, demotions: 0, alive: true, channel } as Tab;
    channel.onmessage = (event: MessageEvent) => {
      if (!tab.alive) return; // a dead tab's channel: not counted when posting either
      handled++;
      const message = event.data as TabMessage;
      if (partition?.(message.from, id)) return;
      tab.election.receive(message);
    };
    tab.election = new BeaconElection(
      {
        tabId: id,
        clock,
        post: (message) => {
          if (!tab.alive) return;
          // Every other open channel of the group will handle it once.
          posted += tabs.filter((other) => other !== tab && other.alive).length;
          channel.postMessage(message);
        },
        lead: () => {
          tab.leads = true;
        },
        follow: () => {
          tab.leads = false;
          tab.demotions++;
        },
      },
      TIMINGS,
    );
    tabs.push(tab);
    return tab;
  };

  /** Until every message posted so far was handled by its receivers. */
  const settle = async () => {
    for (let turn = 0; turn < 10_000 && handled < posted; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(handled).toBe(posted);
  };

  /** Moves the clock `ms` on, firing timers in order, and delivering what each posts before the next. */
  const advance = async (ms: number) => {
    await settle();
    const until = clock.now() + ms;
    for (let run = clock.take(until); run; run = clock.take(until)) {
      run();
      await settle();
    }
    clock.set(until);
  };

  /** The tab dies without a word (a crashed renderer): nothing more goes out or comes in. */
  const kill = async (tab: Tab) => {
    await settle();
    tab.alive = false;
  };

  const leaders = () => tabs.filter((tab) => tab.alive && tab.leads).map((tab) => tab.id);
  const followedBy = (tab: Tab) => tab.election.leader;
  return {
    start,
    tabs,
    settle,
    advance,
    kill,
    leaders,
    followedBy,
    setPartition: (p: typeof partition) => (partition = p),
  };
}

describe('BroadcastChannel election (no Web Locks)', () => {
  it('three tabs started together elect one leader, the smallest id, and the others follow it', async () => {
    const w = world();
    const [a, b, c] = [w.start('tab-c'), w.start('tab-a'), w.start('tab-b')];
    await w.advance(TIMINGS.claimMs);
    expect(w.leaders()).toEqual(['tab-a']);
    await w.advance(TIMINGS.leaderTimeoutMs * 3);
    expect(w.leaders()).toEqual(['tab-a']);
    expect([a, b, c].map(w.followedBy)).toEqual(['tab-a', 'tab-a', 'tab-a']);
    for (const tab of [a, b, c]) expect(tab.demotions).toBe(0);
    await Promise.all([a, b, c].map((tab) => tab.election.decided));
  });

  it('a tab that starts while a leader lives follows it, even with a smaller id', async () => {
    const w = world();
    w.start('tab-m');
    await w.advance(TIMINGS.claimMs);
    expect(w.leaders()).toEqual(['tab-m']);
    const late = w.start('tab-0');
    await w.advance(TIMINGS.claimMs * 5);
    expect(w.leaders()).toEqual(['tab-m']);
    expect(w.followedBy(late)).toBe('tab-m');
    expect(late.leads).toBe(false);
  });

  it('the leader dies: nobody leads until the beats have been missed for leaderTimeoutMs, then exactly one tab does', async () => {
    const w = world();
    const [a, b, c] = [w.start('tab-a'), w.start('tab-b'), w.start('tab-c')];
    await w.advance(TIMINGS.claimMs + TIMINGS.heartbeatMs * 2);
    expect(w.leaders()).toEqual(['tab-a']);
    await w.kill(a);
    await w.advance(TIMINGS.leaderTimeoutMs - TIMINGS.heartbeatMs - 1);
    expect(w.leaders()).toEqual([]);
    await w.advance(TIMINGS.heartbeatMs + TIMINGS.claimMs + 1);
    expect(w.leaders()).toEqual(['tab-b']);
    expect(w.followedBy(c)).toBe('tab-b');
    await w.advance(TIMINGS.leaderTimeoutMs * 3);
    expect(w.leaders()).toEqual(['tab-b']);
    expect(b.demotions + c.demotions).toBe(0);
  });

  it('the leader closes: it resigns, and another tab leads after one claim window, without waiting for the timeout', async () => {
    const w = world();
    const [a, , c] = [w.start('tab-a'), w.start('tab-b'), w.start('tab-c')];
    await w.advance(TIMINGS.claimMs);
    a.election.close();
    await w.kill(a);
    await w.advance(TIMINGS.claimMs);
    expect(w.leaders()).toEqual(['tab-b']);
    expect(w.followedBy(c)).toBe('tab-b');
  });

  it('two leaders (a partition healed): the larger id steps down, and the group keeps one leader', async () => {
    const w = world();
    const left = new Set(['tab-a', 'tab-c']);
    w.setPartition((from, to) => left.has(from) !== left.has(to));
    const [a, b, c, d] = [w.start('tab-a'), w.start('tab-b'), w.start('tab-c'), w.start('tab-d')];
    await w.advance(TIMINGS.claimMs);
    expect(w.leaders()).toEqual(['tab-a', 'tab-b']);
    w.setPartition(undefined);
    await w.advance(TIMINGS.heartbeatMs);
    expect(w.leaders()).toEqual(['tab-a']);
    expect(b.demotions).toBe(1);
    expect(a.demotions).toBe(0);
    await w.advance(TIMINGS.leaderTimeoutMs * 2);
    expect([a, b, c, d].map(w.followedBy)).toEqual(['tab-a', 'tab-a', 'tab-a', 'tab-a']);
    expect(w.leaders()).toEqual(['tab-a']);
  });
});
