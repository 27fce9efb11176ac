import { PersistenceError, createClient, memoryStorage, type ClientStorage, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { createMemoryLink, createRandom, type AnyDomain, type Transport } from '@lockstep/core';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { FakeClock } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import { taggedCounter } from './offline/counterDomain.js';

/**
 * Offline-first clients (docs/offline.md) over an in-memory hub and a fake clock: what a client
 * stored is shown at once after a restart, caught up by delta, and its pending commands are applied
 * exactly once — across crashes at any point, a hub that lost its log, and a failing storage.
 */

const counter = taggedCounter;

function world() {
  const clock = new FakeClock();
  let store = new MemoryEventStore();
  let hub = new Hub({ domains: [counter], store, clock });
  let online = true;
  const subscribes: Array<{ stream: string; since?: number }> = [];
  const connect = (): Transport => {
    if (!online) throw new Error('offline');
    const link = createMemoryLink({ clock });
    hub.accept(link.server);
    link.server.frames.subscribe((frame) => {
      const messages = [JSON.parse(frame as string)].flat() as Array<{ method?: string; params?: any }>;
      for (const message of messages) if (message.method === 'subscribe') subscribes.push(message.params);
    });
    return link.client;
  };
  const clients: LockstepClient[] = [];
  const client = (persistence: ClientStorage) => {
    const c = createClient({ connect, clock, persistence, random: createRandom(clients.length + 1), backoff: { initialMs: 10, maxMs: 50 } });
    clients.push(c);
    return c;
  };
  return {
    clock,
    client,
    subscribes,
    get hub() {
      return hub;
    },
    setOnline(value: boolean) {
      online = value;
      if (!value) for (const c of clients) c.disconnect('network down');
    },
    /** The hub loses its log: a new, empty store (a new epoch). */
    replaceHub() {
      void hub.close();
      store = new MemoryEventStore();
      hub = new Hub({ domains: [counter], store, clock });
      for (const c of clients) c.disconnect('hub replaced');
    },
  };
}

const synced = (stream: SyncedStream<AnyDomain>) => () =>
  stream.getStatus().status === 'online' && stream.getStatus().lag === 0 && stream.getStatus().pending === 0;

/** A copy of what a storage holds right now: what a process killed at this moment leaves behind. */
function snapshotOf(storage: ReturnType<typeof memoryStorage>): ReturnType<typeof memoryStorage> {
  const copy = memoryStorage();
  void copy.save(new Map([...storage.records].map(([key, text]) => [key, JSON.parse(text) as unknown])));
  return copy;
}

async function tagsInLog(hub: Hub, stream: string): Promise<string[]> {
  const { state } = await hub.read(stream);
  return (state as { tags: string[] }).tags;
}

describe('persistent client: restart', () => {
  it('shows the stored state at once, flagged restored, then catches up by delta from the stored version', async () => {
    const w = world();
    const storage = memoryStorage();
    const first = w.client(storage);
    const s1 = first.stream(counter, 'x');
    for (let i = 0; i < 5; i++) void s1.dispatch({ type: 'add', payload: { by: 1, tag: `a${i}` } });
    await w.clock.advanceUntil(synced(s1));
    await first.flush();
    first.close();
    await first.flush();

    // Meanwhile another client adds three more.
    const other = w.client(memoryStorage()).stream(counter, 'x');
    for (let i = 0; i < 3; i++) void other.dispatch({ type: 'add', payload: { by: 10, tag: `b${i}` } });
    await w.clock.advanceUntil(synced(other));

    w.subscribes.length = 0;
    const second = w.client(storage);
    await second.restored;
    const s2 = second.stream(counter, 'x');
    expect(s2.getSnapshot()).toEqual({ n: 5, tags: ['a0', 'a1', 'a2', 'a3', 'a4'] });
    expect(s2.getStatus()).toMatchObject({ restored: true, confirmedVersion: 5 });
    expect(second.clientId).toBe(first.clientId);
    await w.clock.advanceUntil(synced(s2));
    expect(w.subscribes).toEqual([{ stream: 'counter/x', since: 5 }]);
    expect(s2.getStatus()).toMatchObject({ restored: false, confirmedVersion: 8 });
    expect(s2.getSnapshot().n).toBe(35);
  });

  it('keeps commands dispatched offline across a restart and applies each exactly once', async () => {
    const w = world();
    const storage = memoryStorage();
    const first = w.client(storage);
    const s1 = first.stream(counter, 'x');
    await w.clock.advanceUntil(synced(s1));
    w.setOnline(false);
    for (let i = 0; i < 100; i++) void s1.dispatch({ type: 'add', payload: { by: 1, tag: `t${i}` } }).catch(() => {});
    expect(s1.getSnapshot().n).toBe(100);
    await first.flush();
    first.close(); // the process goes away: the promises reject, the commands stay stored

    const second = w.client(storage);
    await second.restored;
    const s2 = second.stream(counter, 'x');
    expect(s2.getStatus().pending).toBe(100);
    expect(s2.getSnapshot().n).toBe(100);
    w.setOnline(true);
    await w.clock.advanceUntil(synced(s2));
    const tags = await tagsInLog(w.hub, 'counter/x');
    expect(tags).toEqual(Array.from({ length: 100 }, (_, i) => `t${i}`));
    expect(s2.confirmed.version).toBe(100);
    await second.flush();
    // Nothing pending is left in storage once applied.
    expect(JSON.parse(storage.records.get('stream/counter/x')!)).toMatchObject({ version: 100, pending: [] });
  });

  it('re-sends a command the hub applied before the crash, which is applied once (dedup by id)', async () => {
    const w = world();
    const storage = memoryStorage();
    const first = w.client(storage);
    const s1 = first.stream(counter, 'x');
    await w.clock.advanceUntil(synced(s1));
    void s1.dispatch({ type: 'add', payload: { by: 1, tag: 'once' } }).catch(() => {});
    await first.flush(); // stored as pending…
    const crashed = snapshotOf(storage);
    await w.clock.advanceUntil(synced(s1)); // …then applied by the hub before the "crash"
    first.close();

    const second = w.client(crashed);
    await second.restored;
    const s2 = second.stream(counter, 'x');
    expect(s2.getStatus()).toMatchObject({ pending: 1, restored: false });
    await w.clock.advanceUntil(synced(s2));
    expect(await tagsInLog(w.hub, 'counter/x')).toEqual(['once']);
    expect(s2.getSnapshot()).toEqual({ n: 1, tags: ['once'] });
  });

  it('survives a crash at every write of a run: each stored snapshot restarts and converges', async () => {
    const w = world();
    const storage = memoryStorage();
    const first = w.client(storage);
    const s1 = first.stream(counter, 'x');
    const crashes: Array<ReturnType<typeof memoryStorage>> = [];
    const save = storage.save.bind(storage);
    storage.save = async (changes) => {
      await save(changes);
      crashes.push(snapshotOf(storage));
    };
    for (let i = 0; i < 20; i++) {
      void s1.dispatch({ type: 'add', payload: { by: 1, tag: `c${i}` } });
      if (i % 3 === 0) await w.clock.advance(60);
    }
    await w.clock.advanceUntil(synced(s1));
    await first.flush();
    first.close();
    expect(crashes.length).toBeGreaterThan(3);
    for (const crashed of crashes) {
      const c = w.client(crashed);
      await c.restored;
      const s = c.stream(counter, 'x');
      await w.clock.advanceUntil(synced(s));
      expect(s.confirmed).toEqual(await w.hub.read('counter/x'));
      c.close();
    }
    expect(await tagsInLog(w.hub, 'counter/x')).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`));
  });

  it('drops a state stored from another hub log (new epoch) and sends its pending commands to the new log', async () => {
    const w = world();
    const storage = memoryStorage();
    const first = w.client(storage);
    const s1 = first.stream(counter, 'x');
    for (let i = 0; i < 3; i++) void s1.dispatch({ type: 'add', payload: { by: 1, tag: `old${i}` } });
    await w.clock.advanceUntil(synced(s1));
    w.setOnline(false);
    void s1.dispatch({ type: 'add', payload: { by: 5, tag: 'offline' } }).catch(() => {});
    await first.flush();
    first.close();

    w.replaceHub();
    w.setOnline(true);
    const second = w.client(storage);
    await second.restored;
    const s2 = second.stream(counter, 'x');
    expect(s2.getSnapshot()).toEqual({ n: 8, tags: ['old0', 'old1', 'old2', 'offline'] });
    const resets: string[] = [];
    s2.changes$.subscribe((change) => resets.push(change.kind));
    await w.clock.advanceUntil(synced(s2));
    expect(resets[0]).toBe('reset');
    expect(s2.getSnapshot()).toEqual({ n: 5, tags: ['offline'] });
    expect(await tagsInLog(w.hub, 'counter/x')).toEqual(['offline']);
  });
});

describe('persistent client: storage problems', () => {
  it('ignores a corrupt record or one of a newer format, says so, and starts from the hub', async () => {
    const w = world();
    const storage = memoryStorage();
    await storage.save(
      new Map<string, unknown>([
        ['stream/counter/x', { format: 1, stream: 'counter/x', version: 'seven' }],
        ['stream/counter/y', { format: 99, stream: 'counter/y' }],
      ]),
    );
    const c = w.client(storage);
    await c.restored;
    expect(c.status.storage).toBe('persistent');
    expect(c.status.lastError).toBeInstanceOf(PersistenceError);
    const s = c.stream(counter, 'x');
    void s.dispatch({ type: 'add', payload: { by: 1, tag: 'fresh' } });
    await w.clock.advanceUntil(synced(s));
    expect(s.getSnapshot()).toEqual({ n: 1, tags: ['fresh'] });
    await c.flush();
    expect(JSON.parse(storage.records.get('stream/counter/x')!)).toMatchObject({ format: 1, version: 1 });
  });

  it('goes on in memory when the storage cannot be opened, or refuses writes (quota)', async () => {
    const w = world();
    const locked: ClientStorage = { ...memoryStorage(), load: () => Promise.reject(new PersistenceError('LOCKED', 'in use by another tab')) };
    const c1 = w.client(locked);
    await c1.restored;
    expect(c1.status).toMatchObject({ storage: 'failed', lastError: expect.objectContaining({ code: 'LOCKED' }) });
    const s1 = c1.stream(counter, 'x');
    void s1.dispatch({ type: 'add', payload: { by: 1, tag: 'mem' } });
    await w.clock.advanceUntil(synced(s1));

    const full = memoryStorage();
    let quota = true;
    const save = full.save.bind(full);
    full.save = (changes) => (quota ? Promise.reject(Object.assign(new Error('quota'), { name: 'QuotaExceededError' })) : save(changes));
    const c2 = w.client(full);
    await c2.restored;
    const s2 = c2.stream(counter, 'x');
    await w.clock.advanceUntil(synced(s2));
    w.setOnline(false);
    void s2.dispatch({ type: 'add', payload: { by: 1, tag: 'q' } });
    await w.clock.advance(100);
    expect(c2.status.storage).toBe('failed');
    expect(c2.status.lastError).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(s2.getSnapshot().n).toBe(2);
    quota = false;
    void s2.dispatch({ type: 'add', payload: { by: 1, tag: 'r' } });
    await w.clock.advance(100);
    expect(c2.status.storage).toBe('persistent');
    expect(JSON.parse(full.records.get('stream/counter/x')!).pending).toHaveLength(2);
    w.setOnline(true);
    await w.clock.advanceUntil(synced(s2));
    expect(await tagsInLog(w.hub, 'counter/x')).toEqual(['mem', 'q', 'r']);
  });

  it('writes nothing on the path that applies events: a burst of events is one write', async () => {
    const w = world();
    const storage = memoryStorage();
    let writes = 0;
    const save = storage.save.bind(storage);
    storage.save = (changes) => {
      writes++;
      return save(changes);
    };
    const c = w.client(storage);
    const s = c.stream(counter, 'x');
    await w.clock.advanceUntil(synced(s));
    await c.flush();
    writes = 0;
    for (let i = 0; i < 200; i++) await w.hub.submit({ id: `h${i}`, stream: 'counter/x', type: 'add', payload: { by: 1, tag: `h${i}` } });
    expect(writes).toBe(0);
    await w.clock.advanceUntil(() => s.version === 200);
    await w.clock.advance(60);
    expect(writes).toBeLessThanOrEqual(2);
    expect(JSON.parse(storage.records.get('stream/counter/x')!)).toMatchObject({ version: 200 });
  });
});

describe('persistent client: streams closed and opened again', () => {
  it('starts a stream opened again in the same run from its last record, and never overwrites storage before reading it', async () => {
    const w = world();
    const storage = memoryStorage();
    const c = w.client(storage);
    const s1 = c.stream(counter, 'x');
    void s1.dispatch({ type: 'add', payload: { by: 2, tag: 'kept' } });
    await w.clock.advanceUntil(synced(s1));
    s1.close();
    const s2 = c.stream(counter, 'x');
    expect(s2.getSnapshot()).toEqual({ n: 2, tags: ['kept'] });
    expect(s2.getStatus().restored).toBe(true);
    await w.clock.advanceUntil(synced(s2));
    await c.flush();
    c.close();
    await c.flush();

    // Closed before it read the storage: the stored record stays as it was.
    const early = w.client(storage);
    early.stream(counter, 'x');
    early.close();
    await early.flush();
    expect(JSON.parse(storage.records.get('stream/counter/x')!)).toMatchObject({ version: 1, state: { n: 2 } });
  });
});
