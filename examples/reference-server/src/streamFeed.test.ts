import type { Event } from '@lockstep/core';
import { Hub, MemoryEventStore, type Identity, type StreamAction } from '@lockstep/server';
import { counterDomain } from '@lockstep/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { REFERENCE_SERVER_IDENTITY } from './hubPeer.js';
import { StreamFeed, type FeedSink } from './streamFeed.js';

/**
 * The in-process reader behind the SSE routes, as the identity of the request it serves: what the hub's
 * `authorize` hook allows it to read, and — once the grant is revoked and the application calls
 * `hub.reauthorize` — an end of the feed (so the SSE response closes), with nothing delivered after it.
 */

const STREAM = 'counter/shared';

function setup() {
  const readers = new Set<string>(['alice']);
  const asked: Array<{ who: string | undefined; stream: string; action: StreamAction }> = [];
  const hub = new Hub({
    domains: [counterDomain],
    store: new MemoryEventStore(),
    authorize: (identity: Identity | undefined, stream: string, action: StreamAction) => {
      asked.push({ who: identity?.id, stream, action });
      return identity?.['internal'] === true || action === 'write' || (identity !== undefined && readers.has(identity.id));
    },
  });
  onTestFinished(() => hub.close());
  let commands = 0;
  const add = () => hub.execute({ id: `c-${++commands}`, stream: STREAM, type: 'add', payload: { by: 1 } });
  return { hub, readers, asked, add };
}

/** A sink that records what it is given, and resolves `ended` with the reason. */
function recorder() {
  const events: Event[] = [];
  const snapshots: number[] = [];
  let end!: (reason: string) => void;
  const ended = new Promise<string>((resolve) => (end = resolve));
  const sink: FeedSink = {
    snapshot: (version) => snapshots.push(version),
    event: (event) => events.push(event),
    end: (reason) => end(reason),
  };
  return { sink, events, snapshots, ended };
}

describe('StreamFeed as the identity of a request', () => {
  it('ends with FORBIDDEN when the grant is revoked; nothing is delivered after, while commands keep coming and other feeds go on', async () => {
    const { hub, readers, add } = setup();
    readers.add('bob');
    await add();
    const alice = recorder();
    const bob = recorder();
    const aliceFeed = await StreamFeed.start(hub, STREAM, 0, alice.sink, { id: 'alice' });
    const bobFeed = await StreamFeed.start(hub, STREAM, 0, bob.sink, { id: 'bob' });
    onTestFinished(() => {
      aliceFeed.close();
      bobFeed.close();
    });
    expect(alice.events.map((event) => event.version)).toEqual([1]);
    await add();
    await expect.poll(() => alice.events.length).toBe(2);

    readers.delete('alice');
    await hub.reauthorize((identity) => identity?.id === 'alice');
    expect(await alice.ended).toBe(`FORBIDDEN: not allowed to read ${STREAM}`);
    for (let i = 0; i < 3; i++) await add();
    await expect.poll(() => bob.events.length).toBe(5);
    expect(alice.events.map((event) => event.version)).toEqual([1, 2]);
    expect(aliceFeed.cursor).toBe(2);
    // The feed's connection is gone with it.
    expect(hub.connectionCount).toBe(1);
  });

  it('is refused at start when the identity may not read the stream; without an identity it reads as the server itself', async () => {
    const { hub, asked, add } = setup();
    await add();
    await expect(StreamFeed.start(hub, STREAM, 0, recorder().sink, { id: 'mallory' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(hub.connectionCount).toBe(0);

    const internal = recorder();
    const feed = await StreamFeed.start(hub, STREAM, 0, internal.sink);
    onTestFinished(() => feed.close());
    expect(internal.events.map((event) => event.version)).toEqual([1]);
    expect(asked.filter((call) => call.action === 'read').map((call) => call.who)).toEqual(['mallory', REFERENCE_SERVER_IDENTITY.id]);
  });
});
