import { builtInDomains, LockstepError } from '@lockstep/core';
import { Hub, MemoryEventStore, StoreConflictError, type Commit, type EventStore } from '@lockstep/server';
import { runChaos } from '@lockstep/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { builtInScenario } from './builtInScenario.js';

/**
 * Several hubs on one store, as several processes on one database: clients connect to any hub,
 * hubs race to append (the loser catches up and decides again), each broadcasts what the others
 * wrote, hubs restart. Everything must converge with every acknowledged command applied once.
 */
const seeds = process.env.LOCKSTEP_SEED ? [Number(process.env.LOCKSTEP_SEED)] : Array.from({ length: 10 }, (_, i) => 0xa11 + i);

/**
 * A memory store with the latency of a real one (appends take a few turns, as a round trip to a
 * database would), which counts the appends that lost a race to another hub, so the test knows it
 * tested the race.
 */
class CountingStore extends MemoryEventStore {
  static conflicts = 0;
  #calls = 0;
  override async append(stream: string, expectedHead: number, commits: readonly Commit[]): Promise<void> {
    const turns = this.#calls++ % 4;
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
    try {
      await super.append(stream, expectedHead, commits);
    } catch (error) {
      if (error instanceof StoreConflictError) CountingStore.conflicts++;
      throw error;
    }
  }
}

describe('several hubs on one store', () => {
  afterAll(() => {
    if (!process.env.LOCKSTEP_SEED) expect(CountingStore.conflicts).toBeGreaterThan(0);
  });

  it.each(seeds)('seed %i: 3 hubs, 12 clients, 3,000 commands converge', async (seed) => {
    const report = await runChaos(builtInScenario, {
      seed,
      store: new CountingStore(),
      hubs: 3,
      clients: 12,
      commands: 3_000,
      hub: { snapshotEvery: 53, retainEvents: Number.MAX_SAFE_INTEGER, leaseGraceMs: 150 },
    });
    expect(report.acknowledged + report.rejected).toBe(3_000);
    expect(report.acknowledged).toBeGreaterThan(600);
  });
});

/** `store` as another process sees it: the same data, no `watch`, some methods replaced. */
function unwatched(store: EventStore, overrides: Partial<EventStore> = {}): EventStore {
  return {
    epoch: store.epoch,
    info: (stream) => store.info(stream),
    append: (stream, expectedHead, commits) => store.append(stream, expectedHead, commits),
    read: (stream, from, limit) => store.read(stream, from, limit),
    findCommands: (ids) => store.findCommands(ids),
    loadSnapshot: (stream) => store.loadSnapshot(stream),
    saveSnapshot: (snapshot) => store.saveSnapshot(snapshot),
    compact: (stream, before) => store.compact(stream, before),
    streams: () => store.streams(),
    close: async () => {},
    ...overrides,
  };
}

/**
 * The race that made refusals part of the store: a client's command C reaches hub X, whose append of
 * it is slow; the client re-sends C to hub Y, which has not yet seen an earlier write of X's and,
 * on that older state, would refuse C. Y's refusal is appended at its head, so it conflicts: Y
 * catches up, decides C again on the newer state and applies it; X's append then finds C's id taken
 * and answers it as a duplicate. Both answers are the same ack, and C is in the log once.
 */
describe('a command re-sent to another hub while the first is still appending it', () => {
  it('gets the same answer from both hubs, never "rejected" for an applied command', async () => {
    const shared = new MemoryEventStore();
    let releaseX: () => void = () => {};
    const gate = new Promise<void>((resolve) => (releaseX = resolve));
    // Neither hub hears of the other's writes (as when a notification is late): they learn by conflicting.
    const storeX = unwatched(shared, {
      async append(stream, expectedHead, commits) {
        if (commits.some((commit) => commit.commandId === 'C')) await gate;
        return shared.append(stream, expectedHead, commits);
      },
    });
    const storeY = unwatched(shared);
    const hubX = new Hub({ domains: builtInDomains, store: storeX, onError: () => {} });
    const hubY = new Hub({ domains: builtInDomains, store: storeY, onError: () => {} });
    try {
      const stream = 'tasks/race';
      await hubY.execute({ id: 'first', stream, type: 'task.create', payload: { id: 'first', title: 'first' } });
      // X writes task t; Y (already loaded) does not know it.
      await hubX.execute({ id: 'make-t', stream, type: 'task.create', payload: { id: 't', title: 'made on X' } });
      const command = { id: 'C', stream, type: 'task.update', payload: { id: 't', status: 'in_progress' } };
      const onX = hubX.execute(command);
      await new Promise((resolve) => setImmediate(resolve));
      const onY = await hubY.execute(command).catch((error: unknown) => error);
      releaseX();
      const answerX = await onX.catch((error: unknown) => error);
      expect(onY).not.toBeInstanceOf(LockstepError);
      expect(answerX).not.toBeInstanceOf(LockstepError);
      expect(onY).toMatchObject({ id: 'C', stream, version: 3 });
      expect(answerX).toMatchObject({ id: 'C', stream, version: 3, duplicate: true });
      const log = await shared.read(stream, 1, 100);
      expect(log.filter((event) => event.commandId === 'C')).toHaveLength(1);
      expect((await shared.findCommands(['C'])).get('C')?.refusal).toBeUndefined();
    } finally {
      await hubX.close();
      await hubY.close();
    }
  });
});

/**
 * A hub loading a stream while another hub appends to it: the load's last (empty) read happens just
 * before the other append is durable, and the append's notification arrives while the load is
 * still finishing. The loading hub must not settle at the head its load saw: it catches up.
 */
describe('a notification that arrives while a stream is loading', () => {
  it('is not lost: the hub catches up to the head it was told of', async () => {
    const shared = new MemoryEventStore();
    let releaseLoad: () => void = () => {};
    const loadGate = new Promise<void>((resolve) => (releaseLoad = resolve));
    let gated = false;
    const storeA = unwatched(shared, {
      watch: (listener) => shared.watch(listener),
      async read(stream, from, limit) {
        const page = await shared.read(stream, from, limit);
        if (page.length === 0 && !gated) {
          gated = true;
          await loadGate;
        }
        return page;
      },
    });
    const hubA = new Hub({ domains: builtInDomains, store: storeA, onError: () => {} });
    const hubB = new Hub({ domains: builtInDomains, store: shared, onError: () => {} });
    try {
      const stream = 'tasks/load-race';
      await hubB.execute({ id: 'one', stream, type: 'task.create', payload: { id: 'one', title: 'one' } });
      const loading = hubA.read(stream);
      while (!gated) await new Promise((resolve) => setImmediate(resolve));
      // The load has read to version 1 and is about to finish; hub B appends version 2 now.
      await hubB.execute({ id: 'two', stream, type: 'task.create', payload: { id: 'two', title: 'two' } });
      await new Promise((resolve) => setImmediate(resolve));
      releaseLoad();
      await loading;
      await hubA.stream(stream).settled();
      expect((await hubA.read(stream)).version).toBe(2);
    } finally {
      await hubA.close();
      await hubB.close();
    }
  });
});
