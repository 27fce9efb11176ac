import { createClient, type ClientOptions } from '@lockstep/client';
import { ErrorCodes, canonicalJson, createMemoryLink, type Frame, type Transport } from '@lockstep/core';
import { Hub, MemoryEventStore, type HubOptions } from '@lockstep/server';
import { FakeClock, counterDomain } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';

const counter = counterDomain;

interface Received {
  frames: Array<{ id?: unknown; method?: string; params?: { stream?: string; reason?: string }; error?: { code: number; data?: unknown } }>;
  closed: string | undefined;
}

/** A raw wire peer on a memory link: sends JSON-RPC text, records what comes back. */
function rawPeer(hub: Hub, clock: FakeClock) {
  const link = createMemoryLink({ clock });
  hub.accept(link.server);
  const received: Received = { frames: [], closed: undefined };
  link.client.frames.subscribe((frame) => received.frames.push(JSON.parse(frame as string)));
  link.client.state.subscribe((state) => {
    if (state.status === 'closed') received.closed = state.reason;
  });
  let nextId = 1;
  const request = (method: string, params: unknown = {}) => link.client.send(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }));
  return { link, received, request };
}

/** The server end of a memory link with a settable `bufferedAmount`: a client that stops reading. */
class StalledTransport implements Transport {
  buffered = 0;
  readonly frames;
  readonly state;
  readonly info = { transport: 'stalled-memory' };
  sentEvents = 0;

  constructor(private readonly inner: Transport) {
    this.frames = inner.frames;
    this.state = inner.state;
  }

  get bufferedAmount(): number {
    return this.buffered;
  }

  send(frame: Frame): boolean {
    if (typeof frame === 'string' && frame.includes('"method":"events"')) this.sentEvents++;
    return this.inner.send(frame);
  }

  close(reason?: string): void {
    this.inner.close(reason);
  }
}

function world(options: Partial<HubOptions> = {}) {
  const clock = new FakeClock();
  const store = new MemoryEventStore();
  let hub = new Hub({ domains: [counter], store, clock, onError: () => {}, ...options });
  const client = (extra: Partial<ClientOptions> = {}, wrap?: (server: Transport) => Transport) =>
    createClient({
      clock,
      connect: () => {
        const link = createMemoryLink({ clock });
        hub.accept(wrap ? wrap(link.server) : link.server);
        return link.client;
      },
      backoff: { initialMs: 10, maxMs: 100 },
      ...extra,
    });
  const restart = async () => {
    await hub.close();
    hub = new Hub({ domains: [counter], store, clock, onError: () => {}, ...options });
  };
  return { clock, store, client, restart, hub: () => hub };
}

describe('hub limits', () => {
  it('closes a connection that never says hello, and keeps one that did', async () => {
    const { clock, hub } = world({ helloTimeoutMs: 5_000 });
    const silent = rawPeer(hub(), clock);
    const polite = rawPeer(hub(), clock);
    polite.request('hello', { protocol: 1 });
    await clock.advance(4_999);
    expect(silent.received.closed).toBeUndefined();
    await clock.advance(2);
    expect(silent.received.closed).toMatch(/no hello within 5000 ms/);
    expect(polite.received.closed).toBeUndefined();
    polite.request('ping');
    await clock.flush();
    expect(polite.received.frames.at(-1)).toMatchObject({ id: 2, result: { time: expect.any(Number) } });
  });

  it('answers RATE_LIMITED past the rate, closes a client that keeps flooding, and serves the others', async () => {
    const { clock, hub } = world({ rateLimit: { messagesPerSecond: 100, burst: 50 } });
    const flooder = rawPeer(hub(), clock);
    const neighbour = rawPeer(hub(), clock);
    neighbour.request('hello', { protocol: 1 });
    for (let i = 0; i < 80; i++) flooder.request('ping');
    await clock.flush();
    const limited = flooder.received.frames.filter((frame) => frame.error?.code === ErrorCodes.RATE_LIMITED);
    expect(limited).toHaveLength(30);
    expect(limited[0]).toMatchObject({ id: 51, error: { data: { retryAfterMs: expect.any(Number) } } });
    expect(flooder.received.closed).toBeUndefined();
    // A second later the bucket has refilled: the client is served again.
    await clock.advance(1_000);
    flooder.request('ping');
    await clock.flush();
    expect(flooder.received.frames.at(-1)).toMatchObject({ result: { time: expect.any(Number) } });
    // Keeping on flooding past `burst` refusals within the window closes the connection.
    for (let i = 0; i < 200; i++) flooder.request('ping');
    await clock.flush();
    expect(flooder.received.closed).toBe('rate limit exceeded');
    neighbour.request('ping');
    await clock.flush();
    expect(neighbour.received.frames.at(-1)).toMatchObject({ id: 2, result: { time: expect.any(Number) } });
  });

  it('rate limiting can be turned off', async () => {
    const { clock, hub } = world({ rateLimit: false });
    const peer = rawPeer(hub(), clock);
    for (let i = 0; i < 5_000; i++) peer.request('ping');
    await clock.flush();
    expect(peer.received.frames.filter((frame) => frame.error)).toHaveLength(0);
  });

  it('drops a client that stops reading to a resync, never holds back the others, and lets it converge once it reads again', async () => {
    const { clock, client, hub } = world({ maxBufferedBytes: 10_000 });
    let stalled: StalledTransport | undefined;
    const slow = client({}, (server) => (stalled = new StalledTransport(server)));
    const fast = client();
    const slowStream = slow.stream(counter, 'x');
    const fastStream = fast.stream(counter, 'x');
    await clock.advanceUntil(() => slowStream.synced && fastStream.synced);

    stalled!.buffered = 50_000; // the client stopped reading
    for (let i = 0; i < 20; i++) await fastStream.dispatch({ type: 'add', payload: { by: 1 } });
    const sentWhileStalled = stalled!.sentEvents;
    expect(sentWhileStalled).toBe(0);
    expect(fastStream.version).toBe(20);
    expect(slowStream.version).toBe(0);

    stalled!.buffered = 0; // reading again
    await clock.advanceUntil(() => slowStream.version === 20 && slowStream.synced);
    expect(canonicalJson(slowStream.getSnapshot())).toBe(canonicalJson((await hub().read('counter/x')).state));
  });

  it('tells clients when it shuts down; they reconnect to its successor and resync', async () => {
    const { clock, client, restart } = world();
    const c = client();
    const s = c.stream(counter, 'x');
    await s.dispatch({ type: 'add', payload: { by: 2 } });
    const statuses: string[] = [];
    c.status$.subscribe((status) => statuses.push(status.status));
    await restart();
    await clock.advanceUntil(() => c.status.status === 'online');
    expect(statuses).toContain('offline');
    expect(c.status.lastError).toBeUndefined();
    await s.dispatch({ type: 'add', payload: { by: 3 } });
    expect(s.getSnapshot()).toEqual({ n: 5 });
    expect(s.version).toBe(2);
  });
});
