import { createClient, type ClientOptions, type LockstepClient, type SyncedStream } from '@lockstep/client';
import {
  LockstepError,
  TransportError,
  createMemoryLink,
  createRandom,
  defineDomain,
  reject,
  tasksDomain,
  type AnyDomain,
  type Frame,
  type LinkFaults,
  type MemoryLink,
  type Transport,
  type TransportState,
} from '@lockstep/core';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { FakeClock } from '@lockstep/testkit';
import { Subject, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const counter = defineDomain({
  name: 'counter',
  initialState: () => ({ n: 0 }),
  commands: { add: z.object({ by: z.number().int() }), noop: z.object({}) },
  events: { added: z.object({ by: z.number().int() }) },
  decide: {
    add: ({ by }, state) => {
      if (state.n + by < 0) reject('counter.negative', 'would go negative');
      return [{ type: 'added', data: { by } }];
    },
    noop: () => [],
  },
  evolve: {
    added: (draft, { by }) => {
      draft.n += by;
    },
  },
});

const DOMAINS = [counter, tasksDomain];

interface Msg {
  id?: unknown;
  method?: string;
  params?: any;
  result?: any;
  error?: any;
}

type Verdict = 'pass' | 'hold' | 'drop';

/** The messages of a frame: one, or the members of a batch. */
function messagesOf(frame: Frame): Msg[] {
  const decoded = JSON.parse(frame as string) as Msg | Msg[];
  return Array.isArray(decoded) ? decoded : [decoded];
}

/**
 * Wraps the client end of a link so a test can hold back or drop chosen messages from the hub
 * (decided per decoded message: a batch is split into frames of one message), and release the held
 * ones later, in order.
 */
class Tap implements Transport {
  readonly #out = new Subject<Frame>();
  readonly frames: Observable<Frame> = this.#out.asObservable();
  readonly state: Observable<TransportState>;
  readonly info: Readonly<Record<string, unknown>>;
  readonly held: Frame[] = [];
  verdict: (message: Msg) => Verdict = () => 'pass';

  constructor(private readonly inner: Transport) {
    this.state = inner.state;
    this.info = inner.info ?? {};
    inner.frames.subscribe({
      next: (frame) => {
        for (const message of messagesOf(frame)) {
          const verdict = this.verdict(message);
          if (verdict === 'pass') this.#out.next(JSON.stringify(message));
          else if (verdict === 'hold') this.held.push(JSON.stringify(message));
        }
      },
      complete: () => this.#out.complete(),
    });
  }

  release(): void {
    this.verdict = () => 'pass';
    for (const frame of this.held.splice(0)) this.#out.next(frame);
  }

  send(frame: Frame): boolean {
    return this.inner.send(frame);
  }

  close(reason?: string): void {
    this.inner.close(reason);
  }
}

/** What a client's `connect` dials: a fresh memory link to `target` each time, recorded for the test. */
class Net {
  readonly links: MemoryLink[] = [];
  readonly taps: Tap[] = [];
  /** Messages the client sent, over all its links. */
  readonly sent: Msg[] = [];
  /** Frames that carried them (a batch is one frame). */
  sentFrames = 0;
  /** Messages the client received (before any tap), over all its links. */
  readonly received: Msg[] = [];
  faults: LinkFaults = {};
  /** Applied to each new connection's tap. */
  verdict: ((message: Msg) => Verdict) | undefined;
  refuse: Error | undefined;

  constructor(
    readonly clock: FakeClock,
    public target: Hub,
  ) {}

  connect = (): Transport => {
    if (this.refuse) throw this.refuse;
    const link = createMemoryLink({ clock: this.clock, faults: { ...this.faults }, random: createRandom(this.links.length + 1) });
    this.target.accept(link.server);
    link.server.frames.subscribe((frame) => {
      this.sentFrames++;
      this.sent.push(...messagesOf(frame));
    });
    link.client.frames.subscribe((frame) => this.received.push(...messagesOf(frame)));
    this.links.push(link);
    const tap = new Tap(link.client);
    if (this.verdict) tap.verdict = this.verdict;
    this.taps.push(tap);
    return tap;
  };

  get link(): MemoryLink {
    return this.links.at(-1)!;
  }

  get tap(): Tap {
    return this.taps.at(-1)!;
  }

  /** Command ids the client sent, in order, with repetitions. */
  commandIds(): string[] {
    return this.sent.filter((m) => m.method === 'command').map((m) => m.params.id as string);
  }
}

function world(hubOptions: { catchUpPage?: number } = {}) {
  const clock = new FakeClock();
  const store = new MemoryEventStore();
  const errors: unknown[] = [];
  const hub = new Hub({ domains: DOMAINS, store, clock, onError: (error) => errors.push(error), ...hubOptions });
  const clients: LockstepClient[] = [];
  const client = (net = new Net(clock, hub), options: Partial<ClientOptions> = {}) => {
    const c = createClient({ connect: net.connect, clock, random: createRandom(clients.length + 1), ...options });
    clients.push(c);
    return { client: c, net };
  };
  return { clock, store, hub, client, errors, clients };
}

const synced = (stream: SyncedStream<AnyDomain>) => () => stream.getStatus().status === 'online' && stream.getStatus().lag === 0;

async function expectSame(hub: Hub, stream: SyncedStream<AnyDomain>): Promise<void> {
  const { state, version } = await hub.read(stream.name);
  expect(stream.confirmed).toEqual({ state, version });
  expect(stream.getSnapshot()).toEqual(state);
  expect(stream.getStatus()).toMatchObject({ confirmedVersion: version, serverVersion: version, lag: 0, pending: 0 });
}

let ids = 0;
const add = (by: number) => ({ id: `srv-${++ids}`, stream: 'counter/x', type: 'add', payload: { by } });

// ---------------------------------------------------------------------------------------------
// Optimistic view
// ---------------------------------------------------------------------------------------------

describe('client: optimistic dispatch', () => {
  it('shows a command at once over a slow link, then confirms it to the hub state', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.faults = { delayMs: 200 };
    const { client: c } = client(net);
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));

    const done = s.dispatch({ type: 'add', payload: { by: 2 } });
    expect(s.getSnapshot()).toEqual({ n: 2 });
    expect(s.confirmed).toEqual({ state: { n: 0 }, version: 0 });
    expect(s.getStatus()).toMatchObject({ pending: 1, confirmedVersion: 0 });
    await clock.advance(100);
    expect(s.getSnapshot()).toEqual({ n: 2 });
    expect(s.getStatus().pending).toBe(1);

    await clock.advanceUntil(() => s.getStatus().pending === 0);
    await expect(done).resolves.toEqual({ id: expect.any(String), stream: 'counter/x', version: 1 });
    await expectSame(hub, s);
    expect(s.getSnapshot()).toEqual({ n: 2 });
  });

  it('drops a command the hub rejects from the view, rejects its promise, and still applies the commands queued after it', async () => {
    const { clock, hub, client } = world();
    await hub.execute(add(5));
    const slowA = new Net(clock, hub);
    slowA.faults = { delayMs: 200 };
    const slowB = new Net(clock, hub);
    slowB.faults = { delayMs: 100 };
    const a = client(slowA).client.stream(counter, 'x');
    const b = client(slowB).client.stream(counter, 'x');
    await clock.advanceUntil(() => synced(a)() && synced(b)());

    // B's command reaches the hub first; A's decrement, fine locally, no longer fits there
    const bDone = b.dispatch({ type: 'add', payload: { by: -3 } });
    const rejected = a.dispatch({ type: 'add', payload: { by: -5 } });
    const after = a.dispatch({ type: 'add', payload: { by: 1 } });
    expect(a.getSnapshot()).toEqual({ n: 1 });
    expect(a.getStatus().pending).toBe(2);

    const failure = await (async () => {
      const caught = rejected.catch((error: unknown) => error);
      await clock.advanceUntil(() => a.getStatus().pending === 0);
      return caught;
    })();
    expect(failure).toBeInstanceOf(LockstepError);
    expect(failure).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'counter.negative' } });
    await expect(after).resolves.toMatchObject({ version: 3 });
    await expect(bDone).resolves.toMatchObject({ version: 2 });
    await clock.advanceUntil(() => synced(b)() && b.getStatus().pending === 0);
    expect(a.getSnapshot()).toEqual({ n: 3 });
    expect(a.getStatus().lastError).toMatchObject({ code: 'COMMAND_REJECTED' });
    await expectSame(hub, a);
    await expectSame(hub, b);
  });

  it('refuses locally a command whose payload does not fit the schema, without sending it', async () => {
    const { clock, client } = world();
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    await expect(s.dispatch({ type: 'add', payload: { by: 'x' as unknown as number } })).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    expect(net.commandIds()).toEqual([]);
    expect(s.getStatus().pending).toBe(0);
  });

  it('gives an entity created without an id the same id in the optimistic view and in the confirmed state', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.faults = { delayMs: 50 };
    const { client: c } = client(net);
    const s = c.stream(tasksDomain, 'p1');
    await clock.advanceUntil(synced(s));
    const done = s.dispatch({ type: 'task.create', payload: { title: 'write tests' } });
    s.dispatch({ type: 'session.create', payload: { name: 'agent 1' } }).catch(() => {});
    const optimistic = s.getSnapshot();
    const [taskId] = Object.keys(optimistic.tasks);
    const [sessionId] = Object.keys(optimistic.sessions);
    expect(taskId).toMatch(/^task_/);
    expect(sessionId).toMatch(/^sess_/);
    // linking to the optimistic ids works before anything is confirmed
    const linked = s.dispatch({ type: 'session.addTask', payload: { sessionId: sessionId!, taskId: taskId! } });
    expect(s.getSnapshot().tasks[taskId!]?.sessionIds).toEqual([sessionId]);

    await clock.advanceUntil(() => s.getStatus().pending === 0);
    await done;
    await linked;
    expect(Object.keys(s.confirmed.state.tasks)).toEqual([taskId]);
    expect(Object.keys(s.confirmed.state.sessions)).toEqual([sessionId]);
    expect(s.confirmed.state.tasks[taskId!]?.sessionIds).toEqual([sessionId]);
    await expectSame(hub, s);
  });
});

// ---------------------------------------------------------------------------------------------
// Gaps and resync
// ---------------------------------------------------------------------------------------------

describe('client: gap detection', () => {
  it('detects a gap on the next batch after lost events and resyncs without applying anything twice', async () => {
    const { clock, hub, client } = world();
    const { client: a, net } = client();
    const { client: b } = client();
    const sa = a.stream(counter, 'x');
    const sb = b.stream(counter, 'x');
    await clock.advanceUntil(() => synced(sa)() && synced(sb)());
    await sb.dispatch({ type: 'add', payload: { by: 1 } });
    await clock.advanceUntil(() => sa.version === 1);

    net.link.setFaults({ drop: 1 });
    for (const by of [2, 3, 4]) {
      const done = sb.dispatch({ type: 'add', payload: { by } });
      await clock.advanceUntil(() => sb.getStatus().pending === 0);
      await done;
    }
    await clock.advance(1_000);
    expect(sa.version).toBe(1);
    net.link.setFaults({});
    const subscribesBefore = net.sent.filter((m) => m.method === 'subscribe').length;

    await sb.dispatch({ type: 'add', payload: { by: 5 } });
    await clock.advanceUntil(() => sa.version === 5 && synced(sa)());
    const resubscribes = net.sent.filter((m) => m.method === 'subscribe').slice(subscribesBefore);
    expect(resubscribes.map((m) => m.params)).toEqual([{ stream: 'counter/x', since: 1 }]);
    expect(sa.getSnapshot()).toEqual({ n: 15 });
    await expectSame(hub, sa);
    // still only the one connection: the gap was repaired without reconnecting
    expect(net.links).toHaveLength(1);
  });

  it('detects a gap from an ack ahead of the confirmed version and resyncs', async () => {
    const { clock, hub, client } = world();
    const { client: a, net } = client();
    const { client: b } = client();
    const sa = a.stream(counter, 'x');
    const sb = b.stream(counter, 'x');
    await clock.advanceUntil(() => synced(sa)() && synced(sb)());
    net.tap.verdict = (m) => (m.method === 'events' ? 'drop' : 'pass');
    await sb.dispatch({ type: 'add', payload: { by: 10 } });
    await clock.advanceUntil(() => sb.getStatus().pending === 0);
    expect(sa.version).toBe(0);

    // An id of its own: the hub answers it explicitly, and that ack is what reveals the gap.
    const done = sa.dispatch({ type: 'add', payload: { by: 1 } }, { id: 'mine-1' });
    await clock.advanceUntil(() => sa.getStatus().pending === 0);
    await expect(done).resolves.toMatchObject({ version: 2 });
    expect(net.links).toHaveLength(1);
    expect(net.sent.filter((m) => m.method === 'subscribe').map((m) => m.params)).toEqual([{ stream: 'counter/x' }, { stream: 'counter/x', since: 0 }]);
    await expectSame(hub, sa);
    expect(sa.getSnapshot()).toEqual({ n: 11 });
  });

  it('reports lag while a paged catch-up is under way, and none once it is done', async () => {
    const { clock, hub, client } = world({ catchUpPage: 10 });
    const { client: a, net } = client();
    const s = a.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    expect(s.getStatus()).toMatchObject({ status: 'online', confirmedVersion: 0, serverVersion: 0, lag: 0, lastError: undefined });

    net.link.disconnect();
    for (let i = 0; i < 35; i++) await hub.execute(add(1));
    net.verdict = (m) => (m.method === 'events' ? 'hold' : 'pass');
    await clock.advanceUntil(() => s.confirmed.version === 10);
    expect(s.getStatus()).toMatchObject({ status: 'resyncing', confirmedVersion: 10, serverVersion: 35, lag: 25 });
    expect(a.status.status).toBe('resyncing');
    net.verdict = undefined;
    net.tap.release();
    await clock.advanceUntil(synced(s));
    expect(s.getStatus()).toMatchObject({ status: 'online', confirmedVersion: 35, serverVersion: 35, lag: 0 });
    await expectSame(hub, s);
  });
});

// ---------------------------------------------------------------------------------------------
// Connection lifecycle
// ---------------------------------------------------------------------------------------------

describe('client: batch frames', () => {
  it('sends a burst of dispatches as one batch frame, and gets the events and acks back batched', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    const framesBefore = net.sentFrames;
    const acks = [1, 2, 3, 4, 5].map((by) => s.dispatch({ type: 'add', payload: { by } }));
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    expect((await Promise.all(acks)).map((ack) => ack.version)).toEqual([1, 2, 3, 4, 5]);
    expect(net.sentFrames - framesBefore).toBe(1);
    expect(net.commandIds()).toHaveLength(5);
    await expectSame(hub, s);
  });

  // The hub decides the first command alone and the other two as its next batch: their events come
  // in one live notification, which stands for both acks. A listener throws once at version 3:
  // while those events are applied (2 pending), or as the first of the two settles (1 pending).
  it.each([
    ['while the events are applied', 2],
    ['while one of their commands settles', 1],
  ])('goes on with the rest of a batch when a state listener throws %s, and reports the error', async (_, pendingWhenThrown) => {
    const { clock, hub, client } = world();
    const reported: unknown[] = [];
    const { client: c, net } = client(undefined, { onError: (error) => reported.push(error) });
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    const boom = new Error('listener failed');
    let armed = false;
    s.subscribe(() => {
      if (armed && s.version === 3 && s.getStatus().pending === pendingWhenThrown) {
        armed = false;
        throw boom;
      }
    });
    const acks = [1, 2, 3].map((by) => s.dispatch({ type: 'add', payload: { by } }));
    armed = true;
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    expect((await Promise.all(acks)).map((ack) => ack.version)).toEqual([1, 2, 3]);
    expect(reported).toEqual([boom]);
    // Settled on the same connection, not by re-sending after a request timeout.
    expect(net.links).toHaveLength(1);
    await expectSame(hub, s);
  });
});

describe('client: reconnect', () => {
  function statuses(c: LockstepClient): string[] {
    const seen: string[] = [];
    c.status$.subscribe(({ status }) => {
      if (seen.at(-1) !== status) seen.push(status);
    });
    return seen;
  }

  it('goes connecting → online, and after a cut offline → connecting → resyncing → online', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const seen = statuses(c);
    const s = c.stream(counter, 'x');
    expect(c.status.status).toBe('connecting');
    await clock.advanceUntil(() => c.status.status === 'online' && synced(s)());
    expect(seen).toEqual(['connecting', 'resyncing', 'online']);
    expect(c.status.serverId).toBe(hub.serverId);

    seen.length = 0;
    net.link.disconnect('cable pulled');
    await clock.flush();
    expect(c.status).toMatchObject({ status: 'offline', lastError: expect.any(TransportError) });
    expect(s.getStatus().status).toBe('offline');
    await clock.advanceUntil(() => c.status.status === 'online' && synced(s)());
    expect(seen).toEqual(['offline', 'connecting', 'resyncing', 'online']);
    expect(c.status).toMatchObject({ attempt: 0, lastError: undefined });
  });

  it('re-sends pending commands with the same ids after a reconnect, and the hub applies each once', async () => {
    const { clock, hub, store, client } = world();
    const net = new Net(clock, hub);
    net.faults = { delayMs: 200 };
    const { client: c } = client(net);
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));

    // reaches the hub, but the ack is lost with the link
    const first = s.dispatch({ type: 'add', payload: { by: 1 } });
    await clock.advance(300);
    expect((await hub.read('counter/x')).version).toBe(1);
    net.faults = {};
    net.link.disconnect();
    await clock.flush();
    expect(c.status.status).toBe('offline');
    // queued while offline
    const second = s.dispatch({ type: 'add', payload: { by: 10 } });
    expect(s.getSnapshot()).toEqual({ n: 11 });

    await clock.advanceUntil(() => s.getStatus().pending === 0 && synced(s)());
    await expect(first).resolves.toMatchObject({ version: 1 });
    await expect(second).resolves.toMatchObject({ version: 2 });
    const sentIds = net.commandIds();
    expect(new Set(sentIds).size).toBe(2);
    expect(sentIds.filter((id) => id === sentIds[0])).toHaveLength(2); // the first was re-sent with its id
    const logged = (await store.read('counter/x', 1, 100)).map((event) => event.commandId);
    expect(logged).toEqual([...new Set(sentIds)]);
    await expectSame(hub, s);
    expect(s.getSnapshot()).toEqual({ n: 11 });
  });

  it('retries a connect function that fails, with backoff, and reports the error meanwhile', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.refuse = new Error('no route to hub');
    const { client: c } = client(net, { backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 } });
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(() => c.status.attempt >= 3);
    expect(c.status).toMatchObject({ status: 'offline', lastError: net.refuse });
    expect(s.getStatus().status).toBe('offline');
    net.refuse = undefined;
    await clock.advanceUntil(synced(s));
    expect(c.status).toMatchObject({ status: 'online', attempt: 0, lastError: undefined });
  });

  it('drops its state when the hub turns out to be on another log (new epoch), and ends equal to the new hub', async () => {
    const { clock, hub: hubA, client } = world();
    const hubB = new Hub({ domains: DOMAINS, store: new MemoryEventStore(), clock });
    await hubB.execute({ id: 'b-1', stream: 'tasks/p1', type: 'task.create', payload: { id: 'only-on-b', title: 'B' } });
    await hubB.execute({ id: 'b-2', stream: 'counter/x', type: 'add', payload: { by: 100 } });
    const { client: c, net } = client();
    const tasks = c.stream(tasksDomain, 'p1');
    const count = c.stream(counter, 'x');
    await clock.advanceUntil(() => synced(tasks)() && synced(count)());
    await tasks.dispatch({ type: 'task.create', payload: { id: 'only-on-a', title: 'A' } });
    await tasks.dispatch({ type: 'task.create', payload: { id: 'also-on-a', title: 'A2' } });
    for (let i = 0; i < 3; i++) await count.dispatch({ type: 'add', payload: { by: 1 } });
    expect(tasks.version).toBe(2);
    expect(count.version).toBe(3);

    net.target = hubB;
    net.link.disconnect();
    await clock.advanceUntil(() => c.status.status === 'online' && synced(tasks)() && synced(count)());
    expect(Object.keys(tasks.getSnapshot().tasks)).toEqual(['only-on-b']);
    expect(count.getSnapshot()).toEqual({ n: 100 });
    await expectSame(hubB, tasks);
    await expectSame(hubB, count);
    expect(c.status.serverId).toBe(hubB.serverId);
    await hubA.close();
  });

  it('re-sends to the new hub a command the old hub acknowledged but whose events had not arrived (epoch change)', async () => {
    const { clock, hub: hubA, client } = world();
    const hubB = new Hub({ domains: DOMAINS, store: new MemoryEventStore(), clock });
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    // the events and the resync answer never arrive: the command stays acknowledged but unconfirmed
    net.tap.verdict = (m) => (m.method === 'events' || m.result?.head !== undefined ? 'drop' : 'pass');
    // An id of its own: the hub answers it explicitly (its events would otherwise stand for the ack).
    const done = s.dispatch({ type: 'add', payload: { by: 7 } }, { id: 'mine-7' });
    await clock.advanceUntil(() => net.received.some((m) => m.result?.version === 1 && m.result?.id !== undefined));
    await clock.flush();
    expect(s.getStatus().pending).toBe(1);
    expect((await hubA.read('counter/x')).version).toBe(1);

    net.target = hubB;
    net.link.disconnect();
    await clock.advanceUntil(() => c.status.status === 'online' && synced(s)() && s.getStatus().pending === 0, { timeoutMs: 30_000 });
    await expect(done).resolves.toMatchObject({ stream: 'counter/x', version: 1 });
    expect(s.getSnapshot()).toEqual({ n: 7 });
    await expectSame(hubB, s);
  });
});

// ---------------------------------------------------------------------------------------------
// Acks implied by events (eventAcks)
// ---------------------------------------------------------------------------------------------

/** Answers to commands the client received: the acks that crossed the wire. */
const commandAnswers = (net: Net) => net.received.filter((m) => m.id !== undefined && m.result?.version !== undefined && m.result?.head === undefined);

describe('client: acks implied by events', () => {
  it('settles its commands from their live events: no ack crosses the wire, and no request is left to time out', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    expect(net.sent.find((m) => m.method === 'hello')?.params.capabilities).toEqual({
      eventAcks: true,
      snapshotPages: true,
      maxFrameBytes: 1024 * 1024,
      batch: true,
    });
    const acks = [1, 2, 3, 4, 5].map((by) => s.dispatch({ type: 'add', payload: { by } }));
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    expect((await Promise.all(acks)).map((ack) => [ack.stream, ack.version])).toEqual([1, 2, 3, 4, 5].map((version) => ['counter/x', version]));
    expect(commandAnswers(net)).toEqual([]);
    // Past the request timeout: had a settled request stayed waiting, the channel would close.
    await clock.advance(30_000);
    expect(net.links).toHaveLength(1);
    expect(c.status.status).toBe('online');
    await expectSame(hub, s);
  });

  it('takes the version of the last of several events of one command as its ack', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const s = c.stream(tasksDomain, 'board');
    await clock.advanceUntil(synced(s));
    await s.dispatch({ type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    await s.dispatch({ type: 'session.create', payload: { id: 'sess_1' } });
    await s.dispatch({ type: 'session.addTask', payload: { sessionId: 'sess_1', taskId: 'task_1' } });
    // Deleting a linked task: session.taskRemoved, then task.deleted.
    const deleted = s.dispatch({ type: 'task.delete', payload: { id: 'task_1' } });
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    await expect(deleted).resolves.toEqual({ id: expect.any(String), stream: 'tasks/board', version: 5 });
    expect(commandAnswers(net)).toEqual([]);
    await expectSame(hub, s);
  });

  it('asks for an explicit ack for a command given its own id, and gets it', async () => {
    const { clock, client } = world();
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    await expect(s.dispatch({ type: 'add', payload: { by: 2 } }, { id: 'job-42' })).resolves.toEqual({ id: 'job-42', stream: 'counter/x', version: 1 });
    expect(net.sent.find((m) => m.method === 'command')?.params).toMatchObject({ id: 'job-42', explicitAck: true });
    expect(commandAnswers(net).map((m) => m.result)).toEqual([{ id: 'job-42', stream: 'counter/x', version: 1 }]);
  });

  it('settles both of two dispatches under one id, the second as a duplicate, and applies the command once', async () => {
    const { clock, hub, client } = world();
    const { client: c } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    const first = s.dispatch({ type: 'add', payload: { by: 4 } }, { id: 'job-7' });
    const again = s.dispatch({ type: 'add', payload: { by: 4 } }, { id: 'job-7' });
    expect(s.getStatus().pending).toBe(2);
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    await expect(first).resolves.toEqual({ id: 'job-7', stream: 'counter/x', version: 1 });
    await expect(again).resolves.toEqual({ id: 'job-7', stream: 'counter/x', version: 1, duplicate: true });
    expect(await hub.read('counter/x')).toEqual({ state: { n: 4 }, version: 1 });
    await expectSame(hub, s);
  });

  it("is not fooled by another client's events under the same id: a different command under it is still COMMAND_ID_CONFLICT", async () => {
    const { clock, hub, client } = world();
    const { client: a } = client();
    const { client: b } = client();
    const sa = a.stream(counter, 'x');
    const sb = b.stream(counter, 'x');
    await clock.advanceUntil(() => synced(sa)() && synced(sb)());
    // Both send under one id at once; a's is applied first, b sees its events while b's own is in flight.
    const first = sa.dispatch({ type: 'add', payload: { by: 1 } }, { id: 'shared-1' });
    const second = sb.dispatch({ type: 'add', payload: { by: 5 } }, { id: 'shared-1' }).catch((error: unknown) => error);
    await clock.advanceUntil(() => sa.getStatus().pending === 0 && sb.getStatus().pending === 0);
    await expect(first).resolves.toMatchObject({ id: 'shared-1', version: 1 });
    expect(await second).toMatchObject({ code: 'COMMAND_ID_CONFLICT' });
    expect(await hub.read('counter/x')).toEqual({ state: { n: 1 }, version: 1 });
    expect(sb.getSnapshot()).toEqual({ n: 1 });
  });

  it('settles a command from events that arrive while its stream waits for a resubscribe answer', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    // Hold the answer to the next subscribe: the live events of the command come before it.
    net.tap.verdict = (m) => (m.result?.head !== undefined ? 'hold' : 'pass');
    s.close();
    const again = c.stream(counter, 'x');
    // Once the hub has answered (and so made the subscription live), the command.
    await clock.advanceUntil(() => net.received.filter((m) => m.result?.head !== undefined).length === 2);
    const done = again.dispatch({ type: 'add', payload: { by: 3 } });
    await clock.advanceUntil(() => net.received.some((m) => m.method === 'events'));
    await clock.flush();
    net.tap.release();
    await clock.advanceUntil(() => again.getStatus().pending === 0);
    await expect(done).resolves.toMatchObject({ stream: 'counter/x', version: 1 });
    expect(commandAnswers(net)).toEqual([]);
    await expectSame(hub, again);
  });
});

// ---------------------------------------------------------------------------------------------
// Observing a stream
// ---------------------------------------------------------------------------------------------

describe('client: observing a stream', () => {
  it('resolves waitFor(version) once the confirmed state reaches it', async () => {
    const { clock, hub, client } = world();
    const { client: c } = client();
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    await expect(s.waitFor(0)).resolves.toBeUndefined();
    let reached = false;
    void s.waitFor(3).then(() => (reached = true));
    await hub.execute(add(1));
    await hub.execute(add(1));
    await clock.advance(10);
    expect(reached).toBe(false);
    expect(s.version).toBe(2);
    await hub.execute(add(1));
    await clock.advanceUntil(() => reached);
    expect(s.version).toBe(3);
  });

  it('resolves whenIdle() only when online, in sync and with nothing pending', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.faults = { delayMs: 100 };
    const { client: c } = client(net);
    const s = c.stream(counter, 'x');
    let idle = false;
    void c.whenIdle().then(() => (idle = true));
    await clock.advance(150);
    expect(idle).toBe(false);
    await clock.advanceUntil(() => idle);
    expect(synced(s)()).toBe(true);

    idle = false;
    void s.dispatch({ type: 'add', payload: { by: 1 } });
    void c.whenIdle().then(() => (idle = true));
    await clock.advance(50);
    expect(idle).toBe(false);
    await clock.advanceUntil(() => idle);
    expect(s.getStatus().pending).toBe(0);
    expect(s.version).toBe(1);
  });

  it('emits select() only when the selected value changes, and calls subscribe() listeners on change', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.faults = { delayMs: 50 };
    const { client: c } = client(net);
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    const values: number[] = [];
    const sub = s.select((state) => state.n).subscribe((n) => values.push(n));
    let calls = 0;
    const stop = s.subscribe(() => calls++);

    const done = s.dispatch({ type: 'add', payload: { by: 2 } });
    expect(calls).toBeGreaterThan(0);
    expect(values).toEqual([0, 2]);
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    await done;
    expect(values).toEqual([0, 2]); // confirming the optimistic value is not a change
    const noop = s.dispatch({ type: 'noop', payload: {} });
    await clock.advanceUntil(() => s.getStatus().pending === 0);
    await expect(noop).resolves.toMatchObject({ version: 1 });
    expect(values).toEqual([0, 2]);
    await hub.execute(add(3));
    await clock.advanceUntil(() => s.version === 2);
    expect(values).toEqual([0, 2, 5]);

    stop();
    const before = calls;
    await hub.execute(add(1));
    await clock.advanceUntil(() => s.version === 3);
    expect(calls).toBe(before);
    sub.unsubscribe();
  });

  it('stops the hub sending events for a stream once it is closed, and reopens it cleanly', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const s = c.stream(counter, 'x');
    const other = c.stream(tasksDomain, 'p1');
    await clock.advanceUntil(() => synced(s)() && synced(other)());
    await hub.execute(add(1));
    await clock.advanceUntil(() => s.version === 1);
    s.close();
    expect(s.getStatus().status).toBe('closed');
    await clock.advanceUntil(() => net.received.some((m) => m.result !== undefined && Object.keys(m.result).length === 0));
    const seen = net.received.length;
    await hub.execute(add(1));
    await hub.execute({ id: 'task-1', stream: 'tasks/p1', type: 'task.create', payload: { title: 'still synced' } });
    await clock.advanceUntil(() => other.version === 1);
    const later = net.received.slice(seen).filter((m) => m.method === 'events');
    expect(later.map((m) => m.params.stream)).toEqual(['tasks/p1']);
    await expect(s.dispatch({ type: 'add', payload: { by: 1 } })).rejects.toBeInstanceOf(LockstepError);

    const again = c.stream(counter, 'x');
    expect(again).not.toBe(s);
    await clock.advanceUntil(synced(again));
    expect(again.getSnapshot()).toEqual({ n: 2 });
  });

  it('stops the hub sending events for a stream closed before its subscription was answered', async () => {
    const { clock, hub, client } = world();
    const { client: c, net } = client();
    const keep = c.stream(tasksDomain, 'p1');
    await clock.advanceUntil(synced(keep));
    const s = c.stream(counter, 'x');
    s.close();
    await clock.advance(100);
    const seen = net.received.length;
    await hub.execute(add(1));
    await hub.execute({ id: 'task-2', stream: 'tasks/p1', type: 'task.create', payload: { title: 'x' } });
    await clock.advanceUntil(() => keep.version === 1);
    const later = net.received.slice(seen).filter((m) => m.method === 'events');
    expect(later.map((m) => m.params.stream)).toEqual(['tasks/p1']);
  });

  it('settles a command dispatched just before its stream was closed, once the hub has acknowledged it', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.faults = { delayMs: 50 };
    const { client: c } = client(net);
    const s = c.stream(counter, 'x');
    await clock.advanceUntil(synced(s));
    let outcome: unknown;
    s.dispatch({ type: 'add', payload: { by: 4 } }).then(
      (ack) => (outcome = ack),
      (error: unknown) => (outcome = error),
    );
    s.close();
    await clock.advanceUntil(() => outcome !== undefined, { timeoutMs: 5_000 });
    expect(outcome).toEqual({ id: expect.any(String), stream: 'counter/x', version: 1 });
    expect(await hub.read('counter/x')).toEqual({ state: { n: 4 }, version: 1 });
  });

  it('rejects a command that was never sent when its stream is closed while offline, and keeps the client usable', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.refuse = new Error('offline');
    const { client: c } = client(net, { backoff: { initialMs: 100, maxMs: 100, jitter: 0 } });
    const s = c.stream(counter, 'x');
    const pending = s.dispatch({ type: 'add', payload: { by: 1 } });
    await clock.advance(250);
    s.close();
    await expect(pending).rejects.toBeInstanceOf(TransportError);
    net.refuse = undefined;
    const again = c.stream(counter, 'x');
    await clock.advanceUntil(synced(again));
    expect((await hub.read('counter/x')).version).toBe(0);
  });

  it('rejects pending commands with a TransportError when the client is closed', async () => {
    const { clock, hub, client } = world();
    const net = new Net(clock, hub);
    net.faults = { drop: 1 };
    const { client: c } = client(net);
    const s = c.stream(counter, 'x');
    const pending = s.dispatch({ type: 'add', payload: { by: 1 } });
    const waiting = s.waitFor(1).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await clock.advance(100);
    c.close();
    await expect(pending).rejects.toBeInstanceOf(TransportError);
    await expect(pending).rejects.toMatchObject({ kind: 'closed' });
    expect(await waiting).toBeInstanceOf(Error);
    expect(c.status.status).toBe('closed');
    expect(s.getStatus().status).toBe('closed');
    expect((await hub.read('counter/x')).version).toBe(0);
  });
});
