import { MemoryEventStore, StoreConflictError, type Commit } from '@lockstep/server';
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
