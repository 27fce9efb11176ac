import { createClient } from '@lockstep/client';
import { ErrorCodes } from '@lockstep/core';
import { Hub, MemoryEventStore, type Identity, type StreamAction } from '@lockstep/server';
import { counterDomain } from '@lockstep/testkit';
import { webSocketConnector } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MemoryWire, type HubMessage } from './attack/memoryWire.js';
import { RawPeer } from './wsPeer.js';

/**
 * Live revocation: the application changes what its `authorize` hook answers and calls
 * `hub.reauthorize`; every subscription the hook now refuses ends with an `unsubscribed` notification,
 * and nothing more of its stream reaches that connection — live, catching up, or not yet answered —
 * while other connections and other streams are served as before.
 */

const SHARED = 'counter/shared';
const OWN = 'counter/alice';

/** Who may read what: the application's grants, which tests change. */
class Grants {
  readonly #read = new Map<string, Set<string>>();
  /** Every call of the hook, for checking who was asked again. */
  readonly calls: Array<{ who: string | undefined; stream: string; action: StreamAction }> = [];
  /** When set, a read of this stream waits for `release` before it is answered (as it was then). */
  hold: { stream: string; released: Promise<void> } | undefined;

  grant(who: string, ...streams: string[]): void {
    const set = this.#read.get(who) ?? new Set<string>();
    for (const stream of streams) set.add(stream);
    this.#read.set(who, set);
  }

  revoke(who: string, stream: string): void {
    this.#read.get(who)?.delete(stream);
  }

  authorize = async (identity: Identity | undefined, stream: string, action: StreamAction): Promise<boolean> => {
    this.calls.push({ who: identity?.id, stream, action });
    const allowed = action === 'write' || (identity !== undefined && (this.#read.get(identity.id)?.has(stream) ?? false));
    const hold = this.hold;
    if (hold && hold.stream === stream) {
      this.hold = undefined;
      await hold.released;
    }
    return allowed;
  };

  readsOf(who: string, stream: string): number {
    return this.calls.filter((call) => call.who === who && call.stream === stream && call.action === 'read').length;
  }
}

function hubFor(grants: Grants, options: { catchUpPage?: number } = {}): Hub {
  const hub = new Hub({
    domains: [counterDomain],
    store: new MemoryEventStore(),
    authenticate: ({ token }) => (token ? { id: token } : undefined),
    authorize: grants.authorize,
    rateLimit: false,
    ...options,
  });
  onTestFinished(() => hub.close());
  return hub;
}

async function serve(hub: Hub): Promise<string> {
  const server = createWebSocketServer(hub, { port: 0 });
  onTestFinished(() => server.close());
  await server.ready;
  return `ws://127.0.0.1:${server.address().port}`;
}

async function peer(url: string, token: string): Promise<RawPeer> {
  const connected = await RawPeer.connect(url);
  onTestFinished(() => void connected.socket.terminate());
  expect((await connected.call('hello', { protocol: 1, clientId: `${token}-${Math.random().toString(36).slice(2)}`, token })).result).toBeDefined();
  return connected;
}

let commands = 0;
const add = (hub: Hub, stream: string, by = 1) => hub.execute({ id: `app-${++commands}`, stream, type: 'add', payload: { by } });

/** Reads messages until an `events` notification of `stream` reaching `version`; answers all read. */
async function readUntil(connected: RawPeer, stream: string, version: number): Promise<any[]> {
  const read: any[] = [];
  for (;;) {
    const message = await connected.next();
    read.push(message);
    if (message.method === 'events' && message.params.stream === stream && message.params.events.at(-1).version >= version) return read;
  }
}

const eventsOf = (messages: Array<HubMessage | any>, stream: string) =>
  messages.filter((message) => message.method === 'events' && message.params.stream === stream).flatMap((message) => message.params.events);

describe('revocation over WebSocket', () => {
  it('ends a live subscription with `unsubscribed`; no further event of it arrives while commands keep coming; other streams and connections are unaffected', async () => {
    const grants = new Grants();
    grants.grant('alice', SHARED, OWN);
    grants.grant('bob', SHARED);
    const hub = hubFor(grants);
    const url = await serve(hub);
    const alice = await peer(url, 'alice');
    const bob = await peer(url, 'bob');
    for (const stream of [SHARED, OWN]) expect((await alice.call('subscribe', { stream })).result).toMatchObject({ stream });
    expect((await bob.call('subscribe', { stream: SHARED })).result).toMatchObject({ stream: SHARED });
    await add(hub, SHARED);
    expect(eventsOf(await readUntil(alice, SHARED, 1), SHARED)).toHaveLength(1);

    grants.revoke('alice', SHARED);
    const bobChecksBefore = grants.readsOf('bob', SHARED);
    await hub.reauthorize((identity) => identity?.id === 'alice');
    // Only the connections the filter accepts were asked about.
    expect(grants.readsOf('bob', SHARED)).toBe(bobChecksBefore);
    expect(await alice.next()).toEqual({
      jsonrpc: '2.0',
      method: 'unsubscribed',
      params: { stream: SHARED, error: { code: ErrorCodes.FORBIDDEN, message: `not allowed to read ${SHARED}`, data: { stream: SHARED, action: 'read' } } },
    });

    for (let i = 0; i < 5; i++) await add(hub, SHARED);
    await add(hub, OWN);
    // Everything alice was sent up to her own stream's event: nothing of the revoked stream.
    const after = await readUntil(alice, OWN, 1);
    expect(eventsOf(after, SHARED)).toEqual([]);
    expect(after.filter((message) => message.method !== 'events')).toEqual([]);
    // Bob, still allowed, got every event.
    expect(eventsOf(await readUntil(bob, SHARED, 6), SHARED).map((event: { version: number }) => event.version)).toEqual([1, 2, 3, 4, 5, 6]);
    // Asking again is asking the hook again: refused.
    expect((await alice.call('subscribe', { stream: SHARED, since: 1 })).error).toMatchObject({
      code: ErrorCodes.FORBIDDEN,
      data: { stream: SHARED, action: 'read' },
    });
    // Granted again, the same connection may subscribe again and catch up.
    grants.grant('alice', SHARED);
    const back = await alice.call('subscribe', { stream: SHARED, since: 1 });
    expect(back.result.events.map((event: { version: number }) => event.version)).toEqual([2, 3, 4, 5, 6]);
  });

  it('refuses a subscribe being authorized while grants change: the answer it was about to get is stale, so it asks again', async () => {
    const grants = new Grants();
    grants.grant('alice', SHARED);
    const hub = hubFor(grants);
    const url = await serve(hub);
    const alice = await peer(url, 'alice');
    let release!: () => void;
    grants.hold = { stream: SHARED, released: new Promise<void>((resolve) => (release = resolve)) };
    const subscribing = alice.request('subscribe', { stream: SHARED });
    await expect.poll(() => grants.readsOf('alice', SHARED)).toBe(1);
    // The hook has decided "allowed" for the subscribe; the grant goes before its answer is used.
    grants.revoke('alice', SHARED);
    await hub.reauthorize();
    release();
    const { response, before } = await alice.response(subscribing);
    expect(response.error).toMatchObject({ code: ErrorCodes.FORBIDDEN, data: { stream: SHARED, action: 'read' } });
    expect(before).toEqual([]);
    await add(hub, SHARED);
    expect((await alice.call('ping')).result).toBeDefined();
    expect(alice.unread).toBe(0);
  });
});

describe('revocation of a subscription still catching up', () => {
  it('stops the catch-up pages: `unsubscribed`, then nothing more of the stream', async () => {
    const grants = new Grants();
    grants.grant('alice', SHARED, OWN);
    const hub = hubFor(grants, { catchUpPage: 1 });
    for (let i = 0; i < 200; i++) await add(hub, SHARED);
    const wire = new MemoryWire(hub);
    onTestFinished(() => wire.close());
    await wire.call('hello', { protocol: 1, clientId: 'alice-1', token: 'alice' });
    await wire.call('subscribe', { stream: OWN });
    const answer = await wire.call('subscribe', { stream: SHARED, since: 0 });
    expect(answer.result).toMatchObject({ version: 1, head: 200 });
    grants.revoke('alice', SHARED);
    await hub.reauthorize();
    await add(hub, SHARED);
    await add(hub, OWN);
    await expect.poll(() => eventsOf(wire.received, OWN)).toHaveLength(1);
    const at = wire.received.findIndex((message) => message.method === 'unsubscribed');
    expect(wire.received[at]).toMatchObject({ params: { stream: SHARED, error: { code: ErrorCodes.FORBIDDEN } } });
    expect(eventsOf(wire.received.slice(at), SHARED)).toEqual([]);
    // It was stopped part-way: the pages it had been sent end well before the head.
    const pages = eventsOf(wire.received.slice(0, at), SHARED);
    expect(pages.length).toBeLessThan(199);
  });
});

describe('revocation with @lockstep/client', () => {
  it('stops the stream with FORBIDDEN in its status, does not resubscribe it, and asks again when the application opens it again', async () => {
    const grants = new Grants();
    grants.grant('alice', SHARED, OWN);
    const hub = hubFor(grants);
    const url = await serve(hub);
    const client = createClient({ connect: webSocketConnector(url), token: 'alice' });
    onTestFinished(() => client.close());
    const shared = client.stream(counterDomain, 'shared');
    const own = client.stream(counterDomain, 'alice');
    await add(hub, SHARED, 2);
    await shared.waitFor(1);

    grants.revoke('alice', SHARED);
    await hub.reauthorize();
    const status = await firstValueFrom(shared.status$.pipe(filter((s) => s.lastError !== undefined)));
    expect(status.lastError).toMatchObject({ code: 'FORBIDDEN', data: { stream: SHARED, action: 'read' } });
    expect(status.status).not.toBe('online');
    expect(shared.refused).toBe(true);
    const checks = grants.readsOf('alice', SHARED);

    for (let i = 0; i < 3; i++) await add(hub, SHARED);
    await add(hub, OWN);
    await own.waitFor(1);
    // No resubscribe loop: the hook was not asked about the stream again; its state stayed where it was.
    expect(grants.readsOf('alice', SHARED)).toBe(checks);
    expect(shared.confirmed).toEqual({ state: { n: 2 }, version: 1 });
    expect(shared.getStatus().lastError?.code).toBe('FORBIDDEN');

    // Granted again: opening the stream again asks again, and it catches up.
    grants.grant('alice', SHARED);
    expect(client.stream(counterDomain, 'shared')).toBe(shared);
    await shared.waitFor(4);
    expect(shared.refused).toBe(false);
    expect(shared.confirmed).toEqual({ state: { n: 5 }, version: 4 });
    await client.whenIdle();
  });
});
