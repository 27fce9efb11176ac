import { runChaos } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import { builtInScenario } from './builtInScenario.js';

/**
 * Convergence under chaos: 20 clients, 10,000 random commands across the three built-in domains,
 * 1% drop, 1% duplicate, reordering, random disconnects and hub restarts from its store.
 *
 * The seeds are split over several test files so they run on every core. CI runs 50 seeds;
 * `pnpm test:soak` runs LOCKSTEP_SOAK_SEEDS (default 500). Replay a failure with LOCKSTEP_SEED=<seed>.
 */
export const CONVERGENCE_SHARDS = 5;

export function describeConvergenceShard(shard: number): void {
  const soak = process.env.LOCKSTEP_SOAK === '1';
  const replay = process.env.LOCKSTEP_SEED;
  const seedCount = soak ? Number(process.env.LOCKSTEP_SOAK_SEEDS ?? 500) : 50;
  const firstSeed = 0x5eed;
  const all = replay ? [Number(replay)] : Array.from({ length: seedCount }, (_, i) => firstSeed + i);
  const seeds = all.filter((_, index) => index % CONVERGENCE_SHARDS === shard);

  describe(`convergence under chaos, shard ${shard + 1}/${CONVERGENCE_SHARDS}`, () => {
    it.each(seeds)('seed %i: 20 clients, 10,000 commands converge; every acknowledged command applied once', async (seed) => {
      const report = await runChaos(builtInScenario, {
        seed,
        clients: 20,
        commands: 10_000,
        hub: { snapshotEvery: 97, retainEvents: Number.MAX_SAFE_INTEGER, leaseGraceMs: 150 },
      });
      expect(report.commands).toBe(10_000);
      expect(report.acknowledged + report.rejected).toBe(10_000);
      // The run must really have been chaotic, or it proves nothing.
      expect(report.acknowledged).toBeGreaterThan(2_000);
      expect(report.rejected).toBeGreaterThan(0);
      expect(report.duplicateAcks + report.disconnects + report.restarts).toBeGreaterThan(0);
    });
  });
}
