/**
 * The hub side of bench/streams.bench.ts: one hub behind a WebSocket server, in a fresh process
 * started with --expose-gc, so what it keeps after many streams were touched can be measured after
 * full collections.
 *
 * argv[2]: JSON `{ maxLoadedStreams, unloadIdleStreamsMs, maxStreams }` (`false` as in HubOptions).
 * Messages (IPC):
 * - `{ type: 'measure' }` → `{ type: 'memory', heapUsed, rss, external, loaded, store }`;
 * - `{ type: 'unloaded', timeoutMs }` → the same, once no stream is loaded (or the time is up);
 * - `{ type: 'exit' }`.
 */
import { MemoryEventStore } from '@lockstep/server';
import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { lockstepServer } from './harness.js';

export interface StreamsServerConfig {
  maxLoadedStreams: number | false;
  unloadIdleStreamsMs: number | false;
  maxStreams: number;
}

const config = JSON.parse(process.argv[2]!) as StreamsServerConfig;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('streamsServer needs --expose-gc');

const store = new MemoryEventStore({ maxStreams: config.maxStreams });
// Every stream is new to the hub: the per-connection budget of new streams (1,000 a minute) is off,
// as the rate limit is in every benchmark hub; the rest of the hub runs with its defaults.
const server = await lockstepServer({
  store,
  newStreamsPerMinute: false,
  maxLoadedStreams: config.maxLoadedStreams,
  unloadIdleStreamsMs: config.unloadIdleStreamsMs,
});

/** Full collections until the heap stops shrinking, then the figures. */
async function measure() {
  let previous = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage().heapUsed;
    if (used >= previous * 0.999) break;
    previous = used;
  }
  const usage = process.memoryUsage();
  if (process.env['STREAMS_DEBUG']) {
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, Math.round(space.space_size / 1024 / 1024)]));
    console.error(
      `streams server: loaded ${server.hub.loadedStreamCount}, rss ${(usage.rss / 1024 / 1024).toFixed(1)} MB, heapTotal ${(usage.heapTotal / 1024 / 1024).toFixed(1)}, heapUsed ${(usage.heapUsed / 1024 / 1024).toFixed(1)}, external ${(usage.external / 1024 / 1024).toFixed(1)}, malloced ${(getHeapStatistics().malloced_memory / 1024 / 1024).toFixed(1)}, spaces ${JSON.stringify(spaces)}`,
    );
  }
  return {
    type: 'memory',
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    rss: usage.rss,
    external: usage.external,
    loaded: server.hub.loadedStreamCount,
    store: store.usage(),
  };
}

async function unloaded(timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  while (server.hub.loadedStreamCount > 0 && Date.now() < until) await sleep(50);
  return measure();
}

process.on('message', (message: { type: string; timeoutMs?: number }) => {
  if (message.type === 'measure') void measure().then((result) => process.send!(result));
  else if (message.type === 'unloaded') void unloaded(message.timeoutMs ?? 60_000).then((result) => process.send!(result));
  else if (message.type === 'exit') void server.close().then(() => process.exit(0));
});
process.send!({ type: 'ready', url: server.url });
