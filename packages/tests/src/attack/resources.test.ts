import { ErrorCodes, type Clock, type Transport } from '@lockstep/core';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { bystanders, expectUnharmed, startWorld, type Peer, type World } from './world.js';

/**
 * Attacks on the hub's resources: a client that asks and never reads, floods of pings and commands.
 * Whatever one connection does, the memory the hub holds for it stays bounded and the others are
 * served about as fast as before.
 */

/** The client's socket stops (or resumes) reading: the kernel buffers fill, then the hub's send buffer. */
function reading(peer: Peer, on: boolean): void {
  const raw = (peer as unknown as { raw: { socket: any } }).raw;
  const socket = peer.kind === 'stdio' ? raw.socket : raw.socket._socket;
  if (on) socket.resume();
  else socket.pause();
}

/** Samples a server-side transport's unsent bytes until `done` resolves; answers the largest. */
async function peakBuffered(transport: Transport, done: Promise<unknown>): Promise<number> {
  let finished = false;
  void done.then(() => (finished = true));
  let peak = 0;
  while (!finished) {
    peak = Math.max(peak, transport.bufferedAmount ?? 0);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Math.max(peak, transport.bufferedAmount ?? 0);
}

const SNAPSHOT_TEXT = 200_000;

async function bigStreams(world: World, count: number): Promise<string[]> {
  const streams = Array.from({ length: count }, (_, i) => `blob/big-${i}`);
  for (const [i, stream] of streams.entries()) await world.hub.execute({ id: `big-${i}`, stream, type: 'put', payload: { text: 's'.repeat(SNAPSHOT_TEXT) } });
  return streams;
}

describe.each(['ws-json', 'stdio'] as const)('a client that asks and never reads, over %s', (kind) => {
  it('pipelined subscribes to big snapshots: its unsent bytes stay bounded, it is closed, others are served', async () => {
    const maxBufferedBytes = 1024 * 1024;
    const world = await startWorld({ hub: { maxBufferedBytes, rateLimit: false } });
    const others = await bystanders(world);
    const streams = await bigStreams(world, 10);
    const attacker = await world.connect(kind, { clientId: 'hoarder' });
    const serverEnd = world.transports.at(-1)!;
    const before = await world.targets();
    reading(attacker, false);
    // 6,000 subscribes, each answered with a 200 KB snapshot: 1.2 GB if every answer were kept.
    const flood = (async () => {
      for (let i = 0; i < 6_000; i++) {
        attacker.request('subscribe', { stream: streams[i % streams.length] });
        if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    // The client does not read, so it cannot see its connection close: watch the hub's end.
    const closedByHub = firstValueFrom(serverEnd.state.pipe(filter((state) => state.status === 'closed')));
    const peak = await peakBuffered(serverEnd, Promise.all([flood, closedByHub]));
    // At most 8 answers are prepared at a time, each only while less than maxBufferedBytes is unsent.
    expect(peak).toBeGreaterThan(maxBufferedBytes);
    expect(peak).toBeLessThanOrEqual(maxBufferedBytes + 8 * (SNAPSHOT_TEXT + 1_000));
    // More than 4,096 subscribes waiting for it to read: the hub gave up on it.
    expect(await closedByHub).toMatchObject({ status: 'closed', reason: 'more than 4096 subscribe requests wait for the client to read' });
    expect(world.hub.connectionCount).toBe(2);
    await expectUnharmed(world, before, others);
  });

  it('a client that reads slowly gets every answer: subscribes wait for it, they are not refused', async () => {
    const maxBufferedBytes = 512 * 1024;
    const world = await startWorld({ hub: { maxBufferedBytes } });
    const streams = await bigStreams(world, 6);
    const reader = await world.connect(kind, { clientId: 'slow-reader' });
    reading(reader, false);
    const ids = Array.from({ length: 60 }, (_, i) => reader.request('subscribe', { stream: streams[i % streams.length] }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    reading(reader, true);
    const answers = new Map<number, any>();
    while (answers.size < ids.length) {
      const message = await reader.next();
      if (typeof message.id === 'number') answers.set(message.id, message);
    }
    // Each is a snapshot, or gave way to a later subscribe of the same stream (superseded): never dropped.
    for (const id of ids) {
      const answer = answers.get(id);
      if (answer.error) expect(answer.error).toMatchObject({ code: ErrorCodes.UNAVAILABLE, message: 'subscription superseded' });
      else expect(answer.result.snapshot.text).toHaveLength(SNAPSHOT_TEXT);
    }
    expect(ids.slice(-6).map((id) => answers.get(id).result?.version)).toEqual([1, 1, 1, 1, 1, 1]);
  });
});

describe('a client that stops reading does not slow the others down', () => {
  it('p99 latency of a bystander with a stalled subscriber on a busy stream, against a baseline measured in the same run', async () => {
    const world = await startWorld({ hub: { maxBufferedBytes: 256 * 1024, rateLimit: false } });
    const others = await bystanders(world);
    const writer = await world.connect('ws-json', { clientId: 'writer' });
    let writes = 0;
    const text = 'w'.repeat(20_000);
    /** Keeps a busy stream busy while `measure` runs: the same load in both phases. */
    const busy = async <T>(measure: () => Promise<T>): Promise<T> => {
      let stop = false;
      const load = (async () => {
        while (!stop) await writer.call('command', { id: `w-${++writes}`, stream: 'blob/busy', type: 'put', payload: { text } });
      })();
      try {
        return await measure();
      } finally {
        stop = true;
        await load;
      }
    };
    const sample = async (count: number) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) times.push(await others.roundTrip());
      return times;
    };
    const p99 = (times: number[]) => [...times].sort((a, b) => a - b)[Math.floor(times.length * 0.99)]!;

    await busy(() => sample(50)); // warm-up
    const baseline: number[] = [];
    const attacked: number[] = [];
    const stalled: Peer[] = [];
    // Alternating phases, so drift in the machine's load hits both alike.
    for (let phase = 0; phase < 4; phase++) {
      baseline.push(...(await busy(() => sample(100))));
      // Three more subscribers of the busy stream that never read again.
      for (let i = 0; i < 3; i++) {
        const peer = await world.connect(i % 2 === 0 ? 'ws-json' : 'stdio', { clientId: `stalled-${phase}-${i}` });
        await peer.call('subscribe', { stream: 'blob/busy' });
        reading(peer, false);
        stalled.push(peer);
      }
      attacked.push(...(await busy(() => sample(100))));
    }
    const ratio = p99(attacked) / p99(baseline);
    console.log(
      `bystander round trip p99: ${p99(baseline).toFixed(2)} ms baseline, ${p99(attacked).toFixed(2)} ms with ${stalled.length} stalled subscribers (×${ratio.toFixed(2)}), ${writes} writes of 20 KB`,
    );
    expect(ratio).toBeLessThan(5);
    // The stalled ones cost a bounded buffer each, never a copy of the stream.
    for (const transport of world.transports.slice(-stalled.length)) expect(transport.bufferedAmount ?? 0).toBeLessThanOrEqual(256 * 1024 + 2 * 20_200);
  });
});

describe.each(['ws-json', 'ws-msgpack', 'stdio'] as const)('floods over %s', (kind) => {
  /** A clock that does not move: the token bucket never refills, so counts do not depend on speed. */
  const stopped: Clock = {
    now: () => 1_000_000,
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };

  it.each([
    ['ping', (i: number) => ({ jsonrpc: '2.0', id: i, method: 'ping', params: {} })],
    [
      'command',
      (i: number) => ({ jsonrpc: '2.0', id: i, method: 'command', params: { id: `flood-${i}`, stream: 'counter/flood', type: 'add', payload: { by: 1 } } }),
    ],
  ])('a %s flood is answered RATE_LIMITED past the burst, then closed; others are served, targets unchanged', async (_what, message) => {
    const world = await startWorld({ hub: { clock: stopped, rateLimit: { messagesPerSecond: 50, burst: 100 } } });
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'flooder' });
    const before = await world.targets();
    for (let i = 0; i < 3_000; i++) attacker.send(message(i));
    const answers: any[] = [];
    const closed = attacker.closed.then(() => 'closed' as const);
    for (;;) {
      const next = await Promise.race([attacker.next(), closed]);
      if (next === 'closed') break;
      answers.push(next);
    }
    const limited = answers.filter((answer) => answer.error?.code === ErrorCodes.RATE_LIMITED);
    const served = answers.filter((answer) => answer.result !== undefined);
    // hello took one token of the burst of 100: messages 0–98 were within it; the next 100 were
    // refused, and the refusal past `burst` closed the connection.
    expect(limited.map((answer) => answer.id)).toEqual(Array.from({ length: 100 }, (_, i) => 99 + i));
    expect(limited[0].error.data.retryAfterMs).toBeGreaterThan(0);
    expect(served.every((answer) => answer.id < 99)).toBe(true);
    await expect.poll(() => world.hub.connectionCount).toBe(2);
    // Only what was within the rate reached the flooder's own stream.
    const flood = await world.hub.read('counter/flood');
    expect(flood.version).toBeLessThanOrEqual(99);
    await expectUnharmed(world, before, others);
  });
});

describe('a WebSocket ping flood from a client that does not read the pongs', () => {
  it('is terminated by the socket, and the hub and the others carry on', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect('ws-json', { clientId: 'pinger' });
    const before = await world.targets();
    reading(attacker, false);
    const payload = Buffer.alloc(125, 1);
    const socket = (attacker as unknown as { socket: { ping(data: Buffer): void; readyState: number } }).socket;
    for (let i = 0; i < 20_000 && socket.readyState === 1; i++) {
      socket.ping(payload);
      if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // ws answers pings itself and gives up on a peer with 60 pongs it cannot deliver.
    expect((await attacker.closed).code).toBe(1006);
    await expect.poll(() => world.hub.connectionCount).toBe(2);
    await expectUnharmed(world, before, others);
  });
});
