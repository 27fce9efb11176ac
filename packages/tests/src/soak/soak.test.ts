import { describe, expect, it } from 'vitest';
import { formatReport, runSoak } from './soakRun.js';

/**
 * The soak (issue 9): 50 clients over WebSocket (JSON and MessagePack), stdio and in-memory links,
 * 100 commands a second, random disconnects and hub restarts on a durable file store.
 *
 * `pnpm test` runs it for 20 seconds so it keeps working. With LOCKSTEP_SOAK=1 it runs for
 * LOCKSTEP_SOAK_MINUTES (default 10) and holds the run to the soak's bounds: heap and RSS growth
 * after warm-up under 10%, no file-descriptor growth. Either way: zero divergence, and every command
 * applied exactly once. Run only the soak with `LOCKSTEP_SOAK=1 npx vitest run packages/tests/src/soak`.
 */

const soak = process.env.LOCKSTEP_SOAK === '1';
const minutes = Number(process.env.LOCKSTEP_SOAK_MINUTES ?? 10);
const durationMs = soak ? minutes * 60_000 : 20_000;
const seed = Number(process.env.LOCKSTEP_SEED ?? 0x50a4);

describe('soak', () => {
  it(
    `${soak ? `${minutes} minutes` : '20 seconds'}: 50 clients on 4 transports, 100 commands/s, disconnects and hub restarts`,
    async () => {
      const report = await runSoak({
        durationMs,
        warmupMs: soak ? Math.max(60_000, durationMs / 5) : 6_000,
        clients: 50,
        commandsPerSecond: 100,
        restartEveryMs: soak ? 30_000 : 5_000,
        disconnectsPerSecond: 2,
        seed,
        log: soak ? (line) => console.log(line) : undefined,
      });
      console.log(formatReport(report));
      expect(report.failures).toEqual([]);
      expect(report.unacknowledged).toBe(0);
      expect(report.miscounted).toEqual([]);
      expect(report.duplicatedInLog).toBe(0);
      expect(report.diverged).toEqual([]);
      // The run must really have been chaotic, or it proves little.
      expect(report.restarts).toBeGreaterThanOrEqual(2);
      expect(report.disconnects).toBeGreaterThanOrEqual(10);
      expect(report.acknowledged).toBeGreaterThan((durationMs / 1000) * 100 * 0.8);
      expect(report.fds.growth).toBeLessThanOrEqual(soak ? 0 : 4);
      if (soak) {
        expect(report.heap.growth).toBeLessThan(0.1);
        expect(report.rss.growth).toBeLessThan(0.1);
      }
    },
    durationMs + 120_000,
  );
});
