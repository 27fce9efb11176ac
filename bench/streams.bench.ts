/**
 * Many streams (issue 18): what a hub keeps after 100,000 distinct streams were touched once, then
 * left idle — its heap and RSS against its own baseline.
 *
 * Each run uses a fresh hub process (bench/streamsServer.ts, --expose-gc, the compiled packages like
 * bench/idleMemory.bench.ts, default V8 flags otherwise); the client is a raw lockstep/1 connection in
 * another process (bench/streamsLoad.ts). A run: touch 1,000 streams (warm-up), wait until they are
 * unloaded, measure (baseline, after full GCs); touch N more streams once each, close the client,
 * measure (touched); wait until the hub has unloaded them, measure (after). Subjects:
 *
 * - subscribe, then unsubscribe, each stream; the hub as shipped (`maxLoadedStreams` 10,000) with the
 *   idle timeout cut to 2 s so the run does not wait 10 minutes;
 * - the same with no cap and no idle unloading: the hub before issue 18, whose 10-minute timer never
 *   fires within a run (its "after" is its "touched");
 * - one `task.create` per stream on the memory store: after unloading, what is left is the store's
 *   own: one stream, one event and one command record each.
 *
 * Target: after unloading, the hub's RSS within 20% of its baseline (ratio ≤ 1.2) for the subscribe
 * subject. `LOCKSTEP_BENCH_SMOKE=1`: 300 streams.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { HUB_DEFAULTS } from '@lockstep/server';
import { BenchChild, interleave, round } from './harness.js';
import { report, smoke } from './stats.js';
import type { StreamsServerConfig } from './streamsServer.js';

const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 3);
const STREAMS = smoke ? 2_500 : Number(process.env.STREAMS ?? 100_000);
const WARM = smoke ? 50 : 1_000;
const CAP = smoke ? 200 : HUB_DEFAULTS.maxLoadedStreams;
const IDLE_MS = smoke ? 300 : 2_000;

interface Subject {
  name: string;
  mode: 'subscribe' | 'command';
  config: StreamsServerConfig;
  /** Whether the hub unloads idle streams within the run. */
  unloads: boolean;
}

interface Metrics {
  [metric: string]: number;
  heapBaseline: number;
  rssBaseline: number;
  heapTotalBaseline: number;
  heapTouched: number;
  rssTouched: number;
  loadedTouched: number;
  heapAfter: number;
  rssAfter: number;
  heapTotalAfter: number;
  loadedAfter: number;
  rssRatio: number;
  heapRatio: number;
  heapPerLoadedStream: number;
  heapRetainedPerStream: number;
  storeStreams: number;
  touchSeconds: number;
  usPerStreamFirst1000: number;
  usPerStreamLast1000: number;
}

const MB = 1024 * 1024;
const root = fileURLToPath(new URL('..', import.meta.url));
const build = spawnSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-b', 'packages/ws'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) throw new Error('streams: `tsc -b packages/ws` failed');
const load = new BenchChild('./streamsLoad.ts', [], cpus().length >= 2 ? { label: 'streams', pinTo: 1 } : { label: 'streams' });
await load.ready;

async function measure(subject: Subject, run: number): Promise<Metrics> {
  const server = new BenchChild('./streamsServer.ts', [JSON.stringify(subject.config)], { label: 'streams', server: true });
  const { url } = await server.ready;
  const unloadedWithin = subject.unloads ? IDLE_MS * 10 + 10_000 : 0;
  try {
    await load.request({ type: 'touch', url, mode: subject.mode, prefix: `warm${run}-`, count: WARM });
    const baseline = await server.request({ type: 'unloaded', timeoutMs: unloadedWithin });
    const touched = await load.request({ type: 'touch', url, mode: subject.mode, prefix: `s${run}-`, count: STREAMS });
    const held = await server.request({ type: 'measure' });
    const after = await server.request({ type: 'unloaded', timeoutMs: unloadedWithin });
    // NaN crosses IPC as null.
    const n = (message: Record<string, unknown>, key: string) => (typeof message[key] === 'number' ? message[key] : Number.NaN);
    const store = after['store'] as { streams: number };
    return {
      heapBaseline: n(baseline, 'heapUsed') / MB,
      rssBaseline: n(baseline, 'rss') / MB,
      heapTotalBaseline: n(baseline, 'heapTotal') / MB,
      heapTouched: n(held, 'heapUsed') / MB,
      rssTouched: n(held, 'rss') / MB,
      loadedTouched: n(held, 'loaded'),
      heapAfter: n(after, 'heapUsed') / MB,
      rssAfter: n(after, 'rss') / MB,
      heapTotalAfter: n(after, 'heapTotal') / MB,
      loadedAfter: n(after, 'loaded'),
      rssRatio: n(after, 'rss') / n(baseline, 'rss'),
      heapRatio: n(after, 'heapUsed') / n(baseline, 'heapUsed'),
      heapPerLoadedStream:
        n(held, 'loaded') > n(after, 'loaded') ? (n(held, 'heapUsed') - n(after, 'heapUsed')) / (n(held, 'loaded') - n(after, 'loaded')) : Number.NaN,
      heapRetainedPerStream: (n(after, 'heapUsed') - n(baseline, 'heapUsed')) / STREAMS,
      storeStreams: store.streams,
      touchSeconds: n(touched, 'seconds'),
      usPerStreamFirst1000: n(touched, 'firstUs'),
      usPerStreamLast1000: n(touched, 'lastUs'),
    };
  } finally {
    await server.exit();
  }
}

// Room in the memory store for every stream of every run of the command subject.
const maxStreams = (STREAMS + WARM) * 2;
const subjects: Subject[] = [
  {
    name: `subscribe + unsubscribe, cap ${CAP}, idle ${IDLE_MS} ms`,
    mode: 'subscribe',
    config: { maxLoadedStreams: CAP, unloadIdleStreamsMs: IDLE_MS, maxStreams },
    unloads: true,
  },
  {
    name: 'subscribe + unsubscribe, no cap, no unloading (before)',
    mode: 'subscribe',
    config: { maxLoadedStreams: false, unloadIdleStreamsMs: false, maxStreams },
    unloads: false,
  },
  {
    name: `one command each (memory store), cap ${CAP}, idle ${IDLE_MS} ms`,
    mode: 'command',
    config: { maxLoadedStreams: CAP, unloadIdleStreamsMs: IDLE_MS, maxStreams },
    unloads: true,
  },
];
console.error(`streams: ${STREAMS} streams × ${RUNS} runs${smoke ? ' (smoke)' : ''}`);
const results = await interleave(subjects, RUNS, measure);
await load.exit();

const rows = [...results].map(([subject, { medians }]) => ({ subject: subject.name, metrics: medians }));
const [capped, before, commands] = subjects.map((subject) => results.get(subject)?.medians) as [Metrics | undefined, Metrics | undefined, Metrics | undefined];
const ratios = {
  'subscribe: RSS after unloading / baseline (target ≤ 1.2)': capped?.rssRatio ?? Number.NaN,
  'subscribe: heap after unloading / baseline': capped?.heapRatio ?? Number.NaN,
  'subscribe: heap while touched, capped / no cap (before)':
    capped && before ? (capped.heapTouched - capped.heapBaseline) / (before.heapTouched - before.heapBaseline) : Number.NaN,
  'command on the memory store: RSS after unloading / baseline (the store keeps its streams)': commands?.rssRatio ?? Number.NaN,
  'load cost per stream, last 1,000 / first 1,000 (capped)': capped ? capped.usPerStreamLast1000 / capped.usPerStreamFirst1000 : Number.NaN,
  'load cost per stream, last 1,000 / first 1,000 (no cap: ~100,000 loaded)': before ? before.usPerStreamLast1000 / before.usPerStreamFirst1000 : Number.NaN,
};
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
const failed = capped !== undefined && !smoke && capped.rssRatio > 1.2;
report({
  scenario: 'many streams',
  description: `A hub's memory after ${STREAMS.toLocaleString('en')} distinct streams were touched once, then left idle (client in another process; full GCs before each figure); ${RUNS} interleaved runs, each on a fresh hub process, medians.`,
  units: {
    heapBaseline: 'MB',
    rssBaseline: 'MB',
    heapTotalBaseline: 'MB',
    heapTouched: 'MB',
    rssTouched: 'MB',
    loadedTouched: 'streams',
    heapAfter: 'MB',
    rssAfter: 'MB',
    heapTotalAfter: 'MB',
    loadedAfter: 'streams',
    rssRatio: '×',
    heapRatio: '×',
    heapPerLoadedStream: 'bytes',
    heapRetainedPerStream: 'bytes',
    storeStreams: 'streams',
    touchSeconds: 's',
    usPerStreamFirst1000: 'µs',
    usPerStreamLast1000: 'µs',
  },
  rows,
  ratios,
  notes: [
    'The hub runs the compiled packages (dist) with --expose-gc and otherwise default V8 flags; baseline = after a 1,000-stream warm-up and its unloading.',
    'heapTotal = what V8 has reserved; RSS above the baseline with heapTotal unchanged is pages touched during the burst (mostly the young generation), not streams.',
    '"touched" = right after the client left; "after" = once the hub unloaded every stream (the no-cap subject never does: its after is its touched).',
    "heapPerLoadedStream = (touched − after) / streams unloaded; heapRetainedPerStream = (after − baseline) / streams touched: the memory store's own cost in the command subject.",
    'usPerStream: time per touched stream, pipelined 500 at a time, for the first 1,000 (nearly empty hub) and the last 1,000 (hub at its cap, or holding ~100,000).',
  ],
});
if (failed) {
  console.error(`streams: RSS after unloading is ${round(capped.rssRatio)}× the baseline, over the 1.2 target`);
  process.exit(1);
}
