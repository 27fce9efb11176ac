/**
 * Idle memory (issue 8): what the server holds per connected, idle client, at 1,000 clients —
 * Lockstep (hello done, subscribed to one stream) against a raw `ws` connection and a Socket.IO
 * connection in a room.
 *
 * Each measurement uses a fresh server process started with --expose-gc (bench/idleMemoryServer.ts):
 * it connects a few clients (so code and the stream are loaded), collects garbage until the heap stops
 * shrinking and reads `process.memoryUsage()`, connects N more, waits, collects and reads again; the
 * difference divided by N is the cost of one connection. The clients live in another process
 * (bench/idleMemoryClients.ts), so only the server's side is counted. Subjects alternate, medians.
 *
 * Two choices, the same for every subject (docs/performance.md says why):
 * - the server runs the compiled packages (`dist`, built here with `tsc -b packages/ws`), not the
 *   sources through tsx: tsx compiles with esbuild's keepNames, which gives many functions a `name`
 *   property and about 0.8 KB more per Lockstep connection than the published code holds;
 * - `--max-semi-space-size=1`: the young generation otherwise grows with the allocation burst of
 *   1,000 handshakes (tens of MB of RSS that belong to no connection and V8 gives back later).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BenchChild, interleave, pairedRatio, round } from './harness.js';
import { report, smoke } from './stats.js';

const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 3);
const CLIENTS = smoke ? 50 : 1_000;
const WARM = 10;

interface Subject {
  name: string;
  kind: 'lockstep' | 'raw' | 'socketio';
}

interface Metrics {
  [metric: string]: number;
  heapPerClient: number;
  rssPerClient: number;
  externalPerClient: number;
}

const root = fileURLToPath(new URL('..', import.meta.url));
const build = spawnSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-b', 'packages/ws'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) throw new Error('idle memory: `tsc -b packages/ws` failed');
const clients = new BenchChild('./idleMemoryClients.ts', [], cpus().length >= 2 ? { label: 'idle memory', pinTo: 1 } : { label: 'idle memory' });
await clients.ready;

async function measure(subject: Subject): Promise<Metrics> {
  const server = new BenchChild('./idleMemoryServer.ts', [subject.kind], { label: 'idle memory', server: true, serverFlags: ['--max-semi-space-size=1'] });
  const { url } = await server.ready;
  try {
    await clients.request({ type: 'connect', kind: subject.kind, url, count: WARM });
    const before = await server.request({ type: 'measure' });
    await clients.request({ type: 'connect', kind: subject.kind, url, count: CLIENTS });
    // Idle: whatever a connection allocates right after its handshake has settled.
    await sleep(smoke ? 100 : 1_000);
    const after = await server.request({ type: 'measure' });
    if (after['connections'] !== WARM + CLIENTS)
      throw new Error(`${subject.name}: ${after['connections']} connections on the server, expected ${WARM + CLIENTS}`);
    const per = (key: string) => ((after[key] as number) - (before[key] as number)) / CLIENTS;
    return { heapPerClient: per('heapUsed'), rssPerClient: per('rss'), externalPerClient: per('external') };
  } finally {
    await clients.request({ type: 'close' });
    await server.exit();
  }
}

const subjects: Subject[] = [
  { name: 'lockstep (hello + subscribed)', kind: 'lockstep' },
  { name: 'raw ws connection', kind: 'raw' },
  { name: 'Socket.IO connection in a room', kind: 'socketio' },
];
console.error(`idle memory: ${CLIENTS} clients × ${RUNS} runs${smoke ? ' (smoke)' : ''}`);
const results = await interleave(subjects, RUNS, measure);
await clients.exit();

const rows = [...results].map(([subject, { medians }]) => ({ subject: subject.name, metrics: medians }));
const [lockstep, raw, socketIo] = subjects as [Subject, Subject, Subject];
const ratios = {
  'lockstep / raw ws, heap per client (target ≤ 2)': pairedRatio(results, lockstep, raw, 'heapPerClient'),
  'lockstep / raw ws, RSS per client (target ≤ 2)': pairedRatio(results, lockstep, raw, 'rssPerClient'),
  'lockstep / Socket.IO, heap per client': pairedRatio(results, lockstep, socketIo, 'heapPerClient'),
};
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
report({
  scenario: 'idle memory',
  description: `Server memory per idle client at ${CLIENTS} clients (after full GCs; clients in another process); ${RUNS} interleaved runs, each on a fresh server process, medians.`,
  units: { heapPerClient: 'bytes', rssPerClient: 'bytes', externalPerClient: 'bytes' },
  rows,
  ratios,
  notes: [
    'The server runs the compiled packages (dist) with --max-semi-space-size=1, whatever the subject (see docs/performance.md).',
    'RSS moves in pages and the allocator keeps what it once used: it is the noisier of the two figures.',
  ],
});
