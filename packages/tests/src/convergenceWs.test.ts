import { jsonCodec, type Codec, type Transport } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { runChaos, type ChaosConnect, type ChaosHubAcceptor } from '@lockstep/testkit';
import { webSocketTransport } from '@lockstep/ws';
import { createWebSocketServer, type LockstepWebSocketServer } from '@lockstep/ws/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { builtInScenario } from './builtInScenario.js';

/**
 * Seeded chaos over real sockets: the chaos harness dials each connection through a WebSocket server
 * on loopback (one per hub place, serving whichever hub holds the place after restarts), and wraps it
 * in the fault-injecting decorator, so drops, duplicates, reordering and cuts come on top of what the
 * sockets themselves do. A failure names its seed (ConvergenceError); replay it with
 * LOCKSTEP_SEED=<seed>. Over sockets a seed replays the faults drawn, not the sockets' timing.
 */

/** A `connect` for runChaos: a WebSocket server per hub place, closed when the case finishes. */
function overWebSocket(codec: Codec): ChaosConnect {
  const servers = new Map<ChaosHubAcceptor, Promise<string>>();
  const opened: LockstepWebSocketServer[] = [];
  onTestFinished(async () => {
    await Promise.all(opened.map((server) => server.close()));
  });
  const urlOf = (hub: ChaosHubAcceptor): Promise<string> => {
    let url = servers.get(hub);
    if (!url) {
      const server = createWebSocketServer(hub, { port: 0 });
      opened.push(server);
      url = server.ready.then(() => `ws://127.0.0.1:${server.address().port}`);
      servers.set(hub, url);
    }
    return url;
  };
  return async (hub): Promise<Transport> => webSocketTransport(await urlOf(hub), { codec });
}

const replay = process.env['LOCKSTEP_SEED'];
const SEEDS = replay ? [Number(replay)] : [0x5eed, 0x5eed + 1];

describe('convergence under chaos over real WebSockets', () => {
  it.each(SEEDS.flatMap((seed) => [jsonCodec, msgpackCodec].map((codec) => ({ seed, codec: codec.name, value: codec }))))(
    'seed $seed ($codec): 6 clients, 600 commands over faulty sockets and restarts converge; every acknowledged command applied once',
    async ({ seed, value }) => {
      const report = await runChaos(builtInScenario, {
        seed,
        clients: 6,
        commands: 600,
        disconnectChance: 0.02,
        restartChance: 0.02,
        connect: overWebSocket(value),
        codec: value,
        hub: { snapshotEvery: 37, retainEvents: Number.MAX_SAFE_INTEGER, leaseGraceMs: 150 },
      });
      expect(report.commands).toBe(600);
      expect(report.acknowledged + report.rejected).toBe(600);
      expect(report.acknowledged).toBeGreaterThan(100);
      // The run must really have been chaotic, or it proves nothing.
      expect(report.duplicateAcks + report.disconnects + report.restarts).toBeGreaterThan(0);
    },
  );
});
