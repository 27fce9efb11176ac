/**
 * Command → event round trip over WebSocket on loopback, against a raw `ws` echo measured in the same
 * run: one client dispatches a command and waits for it to come back applied (its event, then its
 * ack), one at a time; the baseline sends a 100-byte text frame and waits for the echo.
 *
 *   node --conditions=lockstep-source --import tsx packages/ws/bench/wsRoundTrip.ts
 *
 * Runs are interleaved (lockstep json, lockstep msgpack, raw, then again …); each figure is the median
 * over runs of that run's percentile. Pin it to one core for stable ratios (`taskset -c 0`, see
 * PERFORMANCE.md). Prints a table, then one `BENCH_RESULT {json}` line for bench/run.ts.
 * LOCKSTEP_BENCH_SMOKE=1 runs tiny sizes.
 */
import { createClient } from '@lockstep/client';
import { defineDomain, jsonCodec, type Codec } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { Hub, tokenAuthenticator } from '@lockstep/server';
import { z } from 'zod';
import WebSocket, { WebSocketServer } from 'ws';
import { webSocketConnector } from '../src/index.js';
import { HostCheck, createWebSocketServer } from '../src/server/index.js';

const smoke = process.env.LOCKSTEP_BENCH_SMOKE === '1';
const RUNS = smoke ? 2 : 7;
const ROUND_TRIPS = smoke ? 200 : 3_000;
const WARMUP = smoke ? 20 : 300;

const counter = defineDomain({
  name: 'counter',
  initialState: () => ({ n: 0 }),
  commands: { add: z.object({ by: z.number().int() }) },
  events: { added: z.object({ by: z.number().int() }) },
  decide: { add: ({ by }) => [{ type: 'added', data: { by } }] },
  evolve: {
    added: (draft, { by }) => {
      draft.n += by;
    },
  },
});

type Subject = { name: string; setup(): Promise<{ once(): Promise<void>; teardown(): Promise<void> }> };

/** With `secured`, what `lockstep serve` runs with by default: a token at the upgrade, Host and Origin checks. */
function lockstep(codec: Codec, secured = false): Subject {
  return {
    name: `lockstep (${codec.name}${secured ? ', token' : ''})`,
    async setup() {
      const token = 'bench-token-0123456789abcdef';
      const authenticate = tokenAuthenticator(token);
      const hub = new Hub({ domains: [counter], rateLimit: false, ...(secured && { authenticate }) });
      const hosts = new HostCheck('127.0.0.1');
      const server = createWebSocketServer(
        hub,
        secured
          ? { port: 0, authenticate, allowedHosts: (host) => hosts.allowsHost(host), allowedOrigins: (origin) => hosts.allowsOrigin(origin) }
          : { port: 0 },
      );
      await server.ready;
      hosts.listening(server.address().port);
      const client = createClient({ connect: webSocketConnector(`ws://127.0.0.1:${server.address().port}`, secured ? { codec, token } : { codec }), codec });
      const stream = client.stream(counter, 'bench');
      await client.whenIdle();
      return {
        once: async () => {
          await stream.dispatch({ type: 'add', payload: { by: 1 } });
        },
        async teardown() {
          client.close();
          await hub.close();
          await server.close();
        },
      };
    },
  };
}

const rawEcho: Subject = {
  name: 'raw ws echo',
  async setup() {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
    await new Promise((resolve) => server.once('listening', resolve));
    const socket = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
    await new Promise((resolve) => socket.once('open', resolve));
    const payload = 'x'.repeat(100);
    let waiting: (() => void) | undefined;
    socket.on('message', () => waiting?.());
    return {
      once: () =>
        new Promise<void>((resolve) => {
          waiting = resolve;
          socket.send(payload);
        }),
      async teardown() {
        socket.close();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  },
};

async function measure(subject: Subject): Promise<{ p50: number; p99: number }> {
  const { once, teardown } = await subject.setup();
  for (let i = 0; i < WARMUP; i++) await once();
  const samples = new Float64Array(ROUND_TRIPS);
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const start = process.hrtime.bigint();
    await once();
    samples[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  await teardown();
  samples.sort();
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
}

function quantile(sorted: Float64Array | number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
const median = (values: number[]) =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

// The raw echo stays last: the ratios below read it as `rows.at(-1)`.
const subjects = [lockstep(jsonCodec), lockstep(jsonCodec, true), lockstep(msgpackCodec), rawEcho];
const results = new Map(subjects.map((subject) => [subject.name, { p50: [] as number[], p99: [] as number[] }]));
for (let run = 0; run < RUNS; run++) {
  // Rotate the order so no subject always runs first (or last) in a round.
  for (let k = 0; k < subjects.length; k++) {
    const subject = subjects[(run + k) % subjects.length]!;
    const { p50, p99 } = await measure(subject);
    results.get(subject.name)!.p50.push(p50);
    results.get(subject.name)!.p99.push(p99);
  }
}

const rows = subjects.map(({ name }) => ({ subject: name, metrics: { p50: median(results.get(name)!.p50), p99: median(results.get(name)!.p99) } }));
const raw = rows.at(-1)!.metrics;
const json = rows[0]!.metrics;
const secured = rows[1]!.metrics;
console.log(`command → event round trip over ws on loopback: ${RUNS} runs × ${ROUND_TRIPS} round trips, medians (µs)${smoke ? ' — SMOKE SIZES' : ''}`);
console.log('| subject | p50 µs | p99 µs |\n| --- | ---: | ---: |');
for (const { subject, metrics } of rows) console.log(`| ${subject} | ${metrics.p50.toFixed(1)} | ${metrics.p99.toFixed(1)} |`);
console.log(`lockstep (json) / raw ws: p50 ×${(json.p50 / raw.p50).toFixed(2)}, p99 ×${(json.p99 / raw.p99).toFixed(2)}`);
console.log(
  `with a token / without: p50 ×${(secured.p50 / json.p50).toFixed(2)}, p99 ×${(secured.p99 / json.p99).toFixed(2)} (the token is checked once, at the upgrade)`,
);
console.log(
  `BENCH_RESULT ${JSON.stringify({
    scenario: 'ws round trip',
    description: `Command → event round trip over WebSocket on loopback, one at a time, against a raw ws echo of 100 bytes; ${RUNS} interleaved runs × ${ROUND_TRIPS}, medians.`,
    units: { p50: 'µs', p99: 'µs' },
    rows,
    ratios: {
      'p50 lockstep json / raw ws': json.p50 / raw.p50,
      'p99 lockstep json / raw ws': json.p99 / raw.p99,
      'p50 with a token / without': secured.p50 / json.p50,
      'p99 with a token / without': secured.p99 / json.p99,
    },
  })}`,
);
