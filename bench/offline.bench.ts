/**
 * Offline-first clients (issue 22): a board of 10,000 tasks.
 *
 * - first render from storage: a persistent client (`fileStorage`) that held the board before starts
 *   again; timed from `createClient` to the stream holding every task (`await client.restored`, then
 *   `client.stream()`), before the hub has answered anything;
 * - first render from the network: a client without storage, from `createClient` to the stream
 *   holding every task (the hub's snapshot over WebSocket on loopback);
 * - bytes after a restart 1,000 events behind: what the hub writes to the restarted persistent
 *   client until it holds the head (a delta from its stored version), against what it writes to a
 *   client without storage (a full snapshot of the same head).
 *
 * The board is written to the store directly (as another hub would), and the hub loads it before
 * anything is timed. One process, one core; runs alternate; medians.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient, type LockstepClient } from '@lockstep/client';
import { fileStorage } from '@lockstep/client/persist-file';
import { tasksDomain } from '@lockstep/core';
import { MemoryEventStore, type Commit } from '@lockstep/server';
import { webSocketConnector } from '@lockstep/ws';
import { lockstepServer, round, until } from './harness.js';
import { report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 5;
const TASKS = smoke ? 500 : 10_000;
const BEHIND = smoke ? 100 : 1_000;
const KEY = 'offline';
const STREAM = `tasks/${KEY}`;
const DESCRIPTION =
  'Investigate why the nightly build fails on the integration runner; reproduce locally, bisect the commit range and write down what changed. '.slice(0, 120);

function commits(from: number, count: number, make: (version: number) => { type: string; data: unknown }): Commit[] {
  const time = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const version = from + i;
    return { commandId: `offline-${version}`, fingerprint: `fp-${version}`, events: [{ version, ...make(version), time, commandId: `offline-${version}` }] };
  });
}
const created = (version: number) => ({
  type: 'task.created',
  data: { id: `task_${version}`, title: `Task ${version}`, description: DESCRIPTION, status: 'pending', priority: 'medium', at: Date.now() },
});
const updated = (version: number) => ({
  type: 'task.updated',
  data: { id: `task_${1 + (version % TASKS)}`, changes: { title: `Task revision ${version}` }, at: Date.now() },
});
async function appendAll(store: MemoryEventStore, from: number, count: number, make: (version: number) => { type: string; data: unknown }): Promise<void> {
  for (let done = 0; done < count; done += 1_000) {
    const size = Math.min(1_000, count - done);
    await store.append(STREAM, from + done - 1, commits(from + done, size, make));
  }
}

const work = mkdtempSync(join(tmpdir(), 'lockstep-bench-offline-'));
const store = new MemoryEventStore();
await appendAll(store, 1, TASKS, created);
const server = await lockstepServer({ store, retainEvents: 1_000_000, snapshotEvery: 1_000_000 });
await server.hub.stream(STREAM).ready;
let head = TASKS;

const taskCount = (client: LockstepClient) => Object.keys(client.stream(tasksDomain, KEY).getSnapshot().tasks).length;

/** A folder holding the board as a persistent client stored it, at the hub's current head. */
async function storedBoard(directory: string): Promise<void> {
  const client = createClient({ connect: webSocketConnector(server.url), persistence: fileStorage({ directory }) });
  await client.stream(tasksDomain, KEY).waitFor(head);
  await client.flush();
  client.close();
  await client.flush();
}

interface Metrics {
  [metric: string]: number;
  firstRenderMs: number;
}

async function fromStorage(directory: string): Promise<Metrics> {
  const start = performance.now();
  const client = createClient({ connect: webSocketConnector(server.url), persistence: fileStorage({ directory }) });
  try {
    await client.restored;
    const tasks = taskCount(client);
    const firstRenderMs = performance.now() - start;
    if (tasks !== TASKS) throw new Error(`restored ${tasks} of ${TASKS} tasks`);
    await client.whenIdle();
    return { firstRenderMs };
  } finally {
    client.close();
    await client.flush();
  }
}

async function fromNetwork(): Promise<Metrics & { bytes: number }> {
  const bytesBefore = server.http.bytesWritten();
  const start = performance.now();
  const client = createClient({ connect: webSocketConnector(server.url) });
  try {
    await client.stream(tasksDomain, KEY).waitFor(head);
    const firstRenderMs = performance.now() - start;
    if (taskCount(client) !== TASKS) throw new Error('the fresh client does not hold the board');
    return { firstRenderMs, bytes: server.http.bytesWritten() - bytesBefore };
  } finally {
    client.close();
  }
}

/** A persistent client restarted `BEHIND` events behind: bytes until it holds the head. */
async function restartBehind(directory: string): Promise<{ bytes: number; catchUpMs: number }> {
  await storedBoard(directory);
  await appendAll(store, head + 1, BEHIND, updated);
  head += BEHIND;
  await until(() => server.hub.stream(STREAM).version === head, 60_000, 'the hub to catch up with its store');
  const bytesBefore = server.http.bytesWritten();
  const start = performance.now();
  const client = createClient({ connect: webSocketConnector(server.url), persistence: fileStorage({ directory }) });
  try {
    await client.restored;
    const stream = client.stream(tasksDomain, KEY);
    await stream.waitFor(head);
    return { bytes: server.http.bytesWritten() - bytesBefore, catchUpMs: performance.now() - start };
  } finally {
    client.close();
    await client.flush();
  }
}

try {
  const board = join(work, 'board');
  await storedBoard(board);
  const storedBytes = readdirSync(board).reduce((sum, name) => sum + statSync(join(board, name)).size, 0);
  console.error(`offline board: ${TASKS} tasks, ${round(storedBytes / 1e6)} MB stored${smoke ? ' (smoke)' : ''}`);
  await fromStorage(board); // warm-up
  await fromNetwork();
  const storage: Metrics[] = [];
  const network: Array<Metrics & { bytes: number }> = [];
  for (let run = 0; run < RUNS; run++) {
    storage.push(await fromStorage(board));
    network.push(await fromNetwork());
    console.error(
      `  run ${run + 1}/${RUNS}: from storage ${round(storage.at(-1)!.firstRenderMs)} ms, from the network ${round(network.at(-1)!.firstRenderMs)} ms`,
    );
  }
  const behind: Array<{ bytes: number; catchUpMs: number }> = [];
  const snapshot: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    behind.push(await restartBehind(join(work, `behind-${run}`)));
    snapshot.push((await fromNetwork()).bytes);
    console.error(`  run ${run + 1}/${RUNS}: restart ${BEHIND} behind ${behind.at(-1)!.bytes} bytes, full snapshot ${snapshot.at(-1)} bytes`);
  }
  const median = (values: number[]) => [...values].sort((x, y) => x - y)[values.length >> 1]!;
  const fromStorageMs = median(storage.map((m) => m.firstRenderMs));
  const fromNetworkMs = median(network.map((m) => m.firstRenderMs));
  const deltaBytes = median(behind.map((m) => m.bytes));
  const snapshotBytes = median(snapshot);
  const ratios = {
    'first render from storage / from the network': fromStorageMs / fromNetworkMs,
    [`bytes after a restart ${BEHIND} behind / a full snapshot`]: deltaBytes / snapshotBytes,
  };
  for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
  report({
    scenario: 'offline-first client',
    description: `A board of ${TASKS} tasks (${round(storedBytes / 1e6)} MB stored by fileStorage). First render: from createClient to the stream holding every task, from storage (before the hub answers) and from the network (snapshot over WebSocket on loopback). Bytes: what the hub writes to a persistent client restarted ${BEHIND} events behind (delta from its stored version) and to a client without storage (full snapshot). ${RUNS} runs after a warm-up, medians.`,
    units: { firstRenderMs: 'ms', bytes: 'bytes', catchUpMs: 'ms' },
    rows: [
      { subject: `first render from storage (fileStorage), ${TASKS / 1_000}k tasks`, metrics: { firstRenderMs: fromStorageMs } },
      { subject: `first render from the network (snapshot), ${TASKS / 1_000}k tasks`, metrics: { firstRenderMs: fromNetworkMs } },
      { subject: `restart ${BEHIND} events behind (delta)`, metrics: { bytes: deltaBytes, catchUpMs: median(behind.map((m) => m.catchUpMs)) } },
      { subject: 'client without storage (full snapshot)', metrics: { bytes: snapshotBytes } },
    ],
    ratios,
    notes: [
      'From storage, the client reads one file per stream (checksummed JSON) and shows it before the hub has answered; it then subscribes with `since` = the stored version.',
      'IndexedDB in a browser is not timed here (no browser in the bench run); packages/tests/src/offlineBrowser.test.ts checks its behaviour in Chromium.',
    ],
  });
} finally {
  await server.close();
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
