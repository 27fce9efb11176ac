import { LockstepError, createMemoryLink, defineService, method, notification, type MemoryLink } from '@lockstep/core';
import { PersistenceError, createClient, memoryStorage, type ClientStorage, type LockstepClient } from '@lockstep/client';
import { crossTabConnection, type CrossTabConnection } from '@lockstep/client/cross-tab';
import { Hub, MemoryEventStore, type ServiceContext } from '@lockstep/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { taggedCounter } from './offline/counterDomain.js';

/**
 * `@lockstep/client/cross-tab` in Node, where there are no Web Locks: the tabs elect their leader
 * over Node's BroadcastChannel (heartbeats), and one hub counts one connection. A follower's service
 * calls go through the leader's client (results, errors, cancellation, the notifications of the
 * services it called); when the leader dies, a call in flight rejects UNAVAILABLE (an idempotent one
 * is re-sent to the next leader), commands stay exactly-once, and the new leader takes the dead
 * one's storage over. The browser run (Web Locks, Chromium) is crossTabBrowser.test.ts.
 */

const echo = defineService('echo', '1.0.0', {
  say: method({ params: z.object({ text: z.string().min(1) }), result: z.object({ text: z.string() }) }),
  /** Answers, then sends the caller's connection `count` ticks. */
  watch: method({ params: z.object({ key: z.string(), count: z.number().int() }), result: z.object({ watching: z.string() }) }),
  /** Answers once the test releases `key`. */
  hold: method({ params: z.object({ key: z.string() }), result: z.object({ key: z.string() }) }),
  holdIdempotent: method({ params: z.object({ key: z.string() }), result: z.object({ key: z.string() }), idempotent: true }),
  tick: notification({ params: z.object({ key: z.string(), n: z.number() }) }),
});

const TIMINGS = { heartbeatMs: 20, leaderTimeoutMs: 150, claimMs: 20, openTimeoutMs: 200, storageRetryMs: 20 };

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A BroadcastChannel a test can sever, as a crashed tab's: nothing goes out or comes in any more. */
function severableChannel() {
  let severed = false;
  const channels: BroadcastChannel[] = [];
  class Channel {
    readonly #channel: BroadcastChannel;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    constructor(name: string) {
      this.#channel = new BroadcastChannel(name);
      channels.push(this.#channel);
      this.#channel.onmessage = (event: MessageEvent) => {
        if (!severed) this.onmessage?.({ data: event.data });
      };
    }
    postMessage(message: unknown) {
      if (!severed) this.#channel.postMessage(message);
    }
    close() {
      this.#channel.close();
    }
  }
  return {
    Channel,
    sever: () => {
      severed = true;
      for (const channel of channels) channel.close();
    },
  };
}

/** A storage only one client at a time may open, as IndexedDB held with a Web Lock: the others get LOCKED. */
function exclusiveStorage(shared: ClientStorage) {
  let holder: object | undefined;
  return {
    open(): ClientStorage & { release(): void } {
      const me = {};
      return {
        load: async () => {
          if (holder !== undefined && holder !== me) throw new PersistenceError('LOCKED', 'held by another tab');
          holder = me;
          return shared.load();
        },
        save: (changes) => shared.save(changes),
        clear: () => shared.clear(),
        close: async () => {
          if (holder === me) holder = undefined;
        },
        release: () => {
          if (holder === me) holder = undefined;
        },
      };
    },
  };
}

interface Tab {
  name: string;
  tabs: CrossTabConnection;
  client: LockstepClient;
  links: MemoryLink[];
  crash(): void;
}

function world() {
  const hub = new Hub({ domains: [taggedCounter], store: new MemoryEventStore() });
  const held = new Map<string, Array<{ signal: AbortSignal; release(): void }>>();
  const hold = ({ key }: { key: string }, { signal }: ServiceContext) =>
    new Promise<{ key: string }>((resolve, reject) => {
      const list = held.get(key) ?? [];
      held.set(key, list);
      list.push({ signal, release: () => resolve({ key }) });
      signal.addEventListener('abort', () => reject(signal.reason as Error));
    });
  hub.serve(echo, {
    say: ({ text }) => ({ text: `${text}!` }),
    watch: ({ key, count }, { peer }) => {
      setTimeout(() => {
        for (let n = 0; n < count; n++) peer.notify(echo.tick, { key, n });
      }, 1);
      return { watching: key };
    },
    hold,
    holdIdempotent: hold,
  });
  const group = `relay-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  let accepted = 0;
  const tabs: Tab[] = [];
  onTestFinished(async () => {
    for (const tab of tabs) {
      tab.tabs.close();
      tab.client.close();
    }
    await hub.close();
  });

  const open = (name: string, options: { persistence?: ClientStorage; offline?: () => boolean } = {}): Tab => {
    const channel = severableChannel();
    const links: MemoryLink[] = [];
    const tabs$ = crossTabConnection({
      connect: () => {
        if (options.offline?.()) throw new Error('offline');
        const link = createMemoryLink();
        hub.accept(link.server);
        accepted++;
        links.push(link);
        return link.client;
      },
      domains: [taggedCounter],
      name: group,
      ...TIMINGS,
      platform: { BroadcastChannel: channel.Channel, locks: null },
    });
    const client = createClient({
      connect: tabs$.connect,
      backoff: { initialMs: 10, maxMs: 50 },
      persistDelayMs: 5,
      ...(options.persistence && { persistence: options.persistence }),
    });
    tabs$.serve(client);
    const tab: Tab = {
      name,
      tabs: tabs$,
      client,
      links,
      crash: () => {
        channel.sever();
        for (const link of links) link.disconnect('the tab crashed');
        (options.persistence as { release?: () => void } | undefined)?.release?.();
        client.close();
      },
    };
    tabs.push(tab);
    return tab;
  };

  /** A leader first, then `followers` tabs that find it leading. */
  const start = async (followers: number, options: Parameters<typeof open>[1] = {}, followerOptions: Parameters<typeof open>[1] = {}) => {
    const leader = open('leader', options);
    await until('the first tab to lead', () => leader.tabs.isLeader);
    const others = Array.from({ length: followers }, (_, i) => open(`follower ${i}`, followerOptions));
    await Promise.all([leader, ...others].map((tab) => tab.client.whenIdle()));
    return { leader, others };
  };

  return { hub, held, open, start, accepted: () => accepted };
}

describe('cross-tab service calls and notifications (Node, BroadcastChannel election)', () => {
  it("a follower's calls go through the leader's one connection: results and the hub's refusals come back", async () => {
    const w = world();
    const { leader, others } = await w.start(2);
    const [follower] = others;
    expect(leader.tabs.election).toBe('beacon');
    expect(others.map((tab) => tab.tabs.isLeader)).toEqual([false, false]);
    expect(follower!.client.supports(echo)).toBe(true);
    await expect(follower!.client.call(echo.say, { text: 'hello' })).resolves.toEqual({ text: 'hello!' });
    const refused = await follower!.client.call(echo.say, { text: '' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LockstepError);
    expect((refused as LockstepError).code).toBe('INVALID_PARAMS');
    expect(w.hub.peers()).toHaveLength(1);
    expect(w.accepted()).toBe(1);
  });

  it('hub notifications after a call reach the follower that made it, not the others', async () => {
    const w = world();
    const { others } = await w.start(2);
    const [caller, bystander] = others;
    const heard = { caller: [] as number[], bystander: [] as number[] };
    caller!.client.on(echo.tick, ({ n }) => heard.caller.push(n));
    bystander!.client.on(echo.tick, ({ n }) => heard.bystander.push(n));
    await expect(caller!.client.call(echo.watch, { key: 'k', count: 5 })).resolves.toEqual({ watching: 'k' });
    await until('five ticks in the calling tab', () => heard.caller.length === 5);
    expect(heard.caller).toEqual([0, 1, 2, 3, 4]);
    // Another call of the bystander's own makes the relay go through it too: the earlier ticks were not sent to it.
    await bystander!.client.call(echo.say, { text: 'x' });
    expect(heard.bystander).toEqual([]);
  });

  it("a follower's cancellation reaches the hub's handler", async () => {
    const w = world();
    const { others } = await w.start(1);
    const controller = new AbortController();
    const call = others[0]!.client.call(echo.hold, { key: 'c' }, { signal: controller.signal });
    await until('the call on the hub', () => w.held.get('c')?.length === 1);
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'CANCELLED' });
    await until("the hub's handler aborted", () => w.held.get('c')![0]!.signal.aborted);
  });

  it('the leader dies: a call in flight rejects UNAVAILABLE, an idempotent one is re-sent to the next leader, and commands stay exactly-once', async () => {
    const w = world();
    const { leader, others } = await w.start(2);
    const [a, b] = others;
    const plain = a!.client.call(echo.hold, { key: 'p' }).catch((error: unknown) => error);
    const idempotent = b!.client.call(echo.holdIdempotent, { key: 'i' });
    await until('both calls on the hub', () => w.held.get('p')?.length === 1 && w.held.get('i')?.length === 1);
    const streams = others.map((tab) => tab.client.stream(taggedCounter, 'shared'));
    leader.crash();
    // Commands dispatched while nobody leads.
    for (const [i, stream] of streams.entries())
      for (let n = 0; n < 10; n++) void stream.dispatch({ type: 'add', payload: { by: 1, tag: `t${i}-${n}` } }).catch(() => {});
    const failure = await plain;
    expect(failure).toBeInstanceOf(LockstepError);
    expect((failure as LockstepError).code).toBe('UNAVAILABLE');
    await until('another tab to lead', () => others.some((tab) => tab.tabs.isLeader));
    expect(others.filter((tab) => tab.tabs.isLeader)).toHaveLength(1);
    await until('the idempotent call sent again by the new leader', () => w.held.get('i')?.length === 2);
    w.held.get('i')![1]!.release();
    await expect(idempotent).resolves.toEqual({ key: 'i' });
    await Promise.all(others.map((tab) => tab.client.whenIdle()));
    const truth = (await w.hub.read('counter/shared')) as { state: { n: number; tags: string[] }; version: number };
    expect(truth.version).toBe(20);
    expect(new Set(truth.state.tags).size).toBe(20);
    await until('one connection on the hub', () => w.hub.peers().length === 1);
  });

  it("the new leader takes the dead leader's storage over: its stored commands are applied, once", async () => {
    const w = world();
    const storage = exclusiveStorage(memoryStorage());
    let offline = false;
    const { leader, others } = await w.start(1, { persistence: storage.open(), offline: () => offline }, { persistence: storage.open() });
    const [follower] = others;
    expect(leader.client.status.storage).toBe('persistent');
    expect(follower!.client.status.storage).toBe('failed');
    // The leader loses the hub and dispatches five commands, which only its storage keeps…
    offline = true;
    for (const link of leader.links) link.disconnect('network down');
    await until('the leader offline', () => leader.client.status.status !== 'online');
    const mine = leader.client.stream(taggedCounter, 'shared');
    for (let n = 0; n < 5; n++) void mine.dispatch({ type: 'add', payload: { by: 1, tag: `stored-${n}` } }).catch(() => {});
    await leader.client.flush();
    // …then dies. The follower leads, opens the storage and sends them.
    const stream = follower!.client.stream(taggedCounter, 'shared');
    leader.crash();
    await until('the follower to lead', () => follower!.tabs.isLeader);
    await until("the follower's storage persistent", () => follower!.client.status.storage === 'persistent');
    await until('the stored commands applied', () => stream.confirmed.version === 5);
    await follower!.client.whenIdle();
    const truth = (await w.hub.read('counter/shared')) as { state: { tags: string[] }; version: number };
    expect(truth.version).toBe(5);
    expect(truth.state.tags.sort()).toEqual(['stored-0', 'stored-1', 'stored-2', 'stored-3', 'stored-4']);
    expect(stream.getStatus().pending).toBe(0);
  });
});
