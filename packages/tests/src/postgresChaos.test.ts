import { describePostgres } from '@lockstep/postgres/testing';
import { StoreConflictError } from '@lockstep/server';
import { runChaos } from '@lockstep/testkit';
import { afterAll, expect, it } from 'vitest';
import { builtInScenario } from './builtInScenario.js';

/**
 * The seeded chaos harness with three hubs on one PostgreSQL schema: faulty links, cut connections,
 * hub restarts, hubs racing to append (the loser catches up and decides again) and broadcasting what
 * the others wrote, as they learn it from LISTEN/NOTIFY. Every client converges, every acknowledged
 * command is in the log exactly once.
 */
const seeds = process.env.LOCKSTEP_SEED ? [Number(process.env.LOCKSTEP_SEED)] : [0x9e01, 0x9e02, 0x9e03];

describePostgres('chaos: three hubs on PostgreSQL', (db) => {
  // Appends that lost a race to another hub: the race the run is about did happen.
  let conflicts = 0;
  afterAll(() => {
    if (!process.env.LOCKSTEP_SEED) expect(conflicts).toBeGreaterThan(0);
  });

  it.each(seeds)('seed %i: 3 hubs, 8 clients reconnecting to any hub, 1,500 commands converge', async (seed) => {
    const store = await db.open();
    const append = store.append.bind(store);
    store.append = async (...args) => {
      try {
        return await append(...args);
      } catch (error) {
        if (error instanceof StoreConflictError) conflicts++;
        throw error;
      }
    };
    const report = await runChaos(builtInScenario, {
      seed,
      store,
      hubs: 3,
      clients: 8,
      commands: 1_500,
      // Clients reconnect to any hub: a command re-sent to a second hub while the first is still
      // appending it is decided there again; the refusal is recorded with the command records, so
      // whichever hub lost the race answers what the store holds.
      hubAffinity: 'random',
      // The run's fake clock races ahead while hubs wait on the real database: a short grace period
      // would turn presence heartbeats and look-ups into a flood of queries. Lease expiry across
      // hubs is covered by the memory-store chaos (multiHub.test.ts) and hub.test.ts.
      hub: { snapshotEvery: 97, retainEvents: Number.MAX_SAFE_INTEGER, leaseGraceMs: 5_000 },
    });
    expect(report.acknowledged + report.rejected).toBe(1_500);
    expect(report.acknowledged).toBeGreaterThan(300);
  });
});
