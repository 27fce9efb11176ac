/**
 * Where a hub's memory goes with many streams (issue 18): one process, a hub behind a WebSocket
 * server and a raw lockstep/1 client that subscribes to N distinct streams and unsubscribes each
 * (`mode=subscribe`), or sends one command to each (`mode=command`), then leaves.
 *
 *   node --expose-gc --import tsx bench/streamsProbe.ts [N] [subscribe|command] [snapshot]
 *
 * (without `--conditions=lockstep-source` it runs the compiled packages: build them first with
 * `tsc -b packages/ws`; tsx's keepNames adds memory to closures that the published code does not have).
 * IDLE_MS sets the hub's `unloadIdleStreamsMs` (default 60 s); the hub keeps its default `maxLoadedStreams`.
 *
 * Prints the heap and RSS after startup, right after the client left, and after the hub unloaded
 * its idle streams, each after full collections; with `snapshot`, writes heap snapshots at the three
 * points (compare them by constructor in DevTools). Not a benchmark: bench/streams.bench.ts is.
 */
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryEventStore } from '@lockstep/server';
import WebSocket from 'ws';
import { lockstepServer } from './harness.js';

const N = Number(process.argv[2] ?? 100_000);
const mode = process.argv[3] === 'command' ? 'command' : 'subscribe';
const snapshots = process.argv.includes('snapshot');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('streamsProbe needs --expose-gc');

async function settle(): Promise<{ heapUsed: number; rss: number; external: number; arrayBuffers: number; heapTotal: number; malloced: number }> {
  let previous = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage().heapUsed;
    if (used >= previous * 0.999) break;
    previous = used;
  }
  const { heapUsed, rss, external, arrayBuffers, heapTotal } = process.memoryUsage();
  return { heapUsed, rss, external, arrayBuffers, heapTotal, malloced: getHeapStatistics().malloced_memory };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
function show(label: string, m: Awaited<ReturnType<typeof settle>>, base?: Awaited<ReturnType<typeof settle>>) {
  const delta = base
    ? ` (heap +${mb(m.heapUsed - base.heapUsed)}, ${((m.heapUsed - base.heapUsed) / N).toFixed(0)} B/stream; rss +${mb(m.rss - base.rss)})`
    : '';
  console.log(`${label}: heap ${mb(m.heapUsed)} / total ${mb(m.heapTotal)}, rss ${mb(m.rss)}, external ${mb(m.external)}, malloced ${mb(m.malloced)}${delta}`);
}

const store = new MemoryEventStore({ maxStreams: Number.POSITIVE_INFINITY });
const IDLE = Number(process.env.IDLE_MS ?? 60_000);
const server = await lockstepServer({ store, newStreamsPerMinute: false, unloadIdleStreamsMs: IDLE });
// Warm up code paths and the transport with a few streams on another connection.
await drive(50, 'warm');
await sleep(IDLE * 1.6);
const baseline = await settle();
show('baseline', baseline);
if (snapshots) console.log('snapshot', writeHeapSnapshot('/tmp/streams-0-baseline.heapsnapshot'));

const started = Date.now();
await drive(N, 's');
console.log(`drive took ${Date.now() - started} ms`);
const left = await settle();
show(`after ${N} ${mode}s, client gone (${server.hub.loadedStreamCount} loaded)`, left, baseline);
if (snapshots) console.log('snapshot', writeHeapSnapshot('/tmp/streams-1-left.heapsnapshot'));
// The sweep runs every idle/2: a stream idle for a period is gone within 1.5 periods.
await sleep(IDLE * 1.6);
const unloaded = await settle();
show(`after the idle sweep (${server.hub.loadedStreamCount} loaded)`, unloaded, baseline);
if (snapshots) console.log('snapshot', writeHeapSnapshot('/tmp/streams-2-unloaded.heapsnapshot'));
await server.close();
process.exit(0);

/** One raw lockstep/1 connection: hello, then for each of `count` streams a subscribe + unsubscribe (or a command), windows of 500. */
async function drive(count: number, prefix: string): Promise<void> {
  const socket = new WebSocket(server.url, 'lockstep.v1.json', { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const waiting = new Map<number, () => void>();
  socket.on('message', (data) => {
    const text = (data as Buffer).toString();
    const messages = (text.startsWith('[') ? JSON.parse(text) : [JSON.parse(text)]) as Array<{ id?: number; error?: unknown }>;
    for (const message of messages) {
      if (message.id === undefined) continue;
      if (message.error) console.error('error', JSON.stringify(message.error));
      waiting.get(message.id)?.();
      waiting.delete(message.id);
    }
  });
  let nextId = 1;
  const call = (method: string, params: unknown) =>
    new Promise<void>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  await call('hello', { protocol: 1 });
  const WINDOW = 500;
  for (let start = 0; start < count; start += WINDOW) {
    const names = Array.from({ length: Math.min(WINDOW, count - start) }, (_, i) => `tasks/${prefix}${start + i}`);
    if (mode === 'command') {
      await Promise.all(
        names.map((stream, i) => call('command', { id: `${prefix}-${start + i}`, stream, type: 'task.create', payload: { id: 't1', title: 'once' } })),
      );
    } else {
      await Promise.all(names.map((stream) => call('subscribe', { stream })));
      await Promise.all(names.map((stream) => call('unsubscribe', { stream })));
    }
  }
  socket.close();
  await new Promise((resolve) => socket.once('close', resolve));
  await sleep(100);
}
