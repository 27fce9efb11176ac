/**
 * Resync (issue 8): a client that was in sync at some version comes back 10,000 or 100,000 events
 * behind. Measured: the time from its reconnect to being caught up (its confirmed state at the
 * head), and the bytes the server wrote to it meanwhile.
 *
 * - lockstep delta: the hub still retains the missed events; the subscribe answer carries the first
 *   page (1,000 events) and the hub sends the rest in pages of 1,000, at the pace the client reads.
 * - lockstep snapshot: the hub has compacted past the client's version, so it answers with a snapshot
 *   of the state instead (a board of 1,000 tasks).
 * - Socket.IO connection-state recovery: the server replays every packet the client missed, one
 *   packet per frame (its in-memory adapter keeps them all for `maxDisconnectionDuration`).
 * - Logux: a `@logux/core` client reconnects and subscribes again with `since` (the time of the last
 *   action it has); the channel's `load` answers with the actions the stream's history holds after
 *   it, which `@logux/server` sends one `sync` message each (bench/logux.ts).
 *
 * The stream: 1,000 `task.created`, then the missed `task.updated` events spread over those tasks.
 * The log is written to the store directly (the hub catches up with it, as from another hub), so
 * only the resync is timed. One process, one core; subjects alternate, several runs, medians.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type LockstepClient } from '@lockstep/client';
import { tasksDomain, type Transport } from '@lockstep/core';
import { MemoryEventStore, type Commit } from '@lockstep/server';
import { webSocketTransport } from '@lockstep/ws';
import { io as socketIoClient, type Socket } from 'socket.io-client';
import { interleave, lockstepServer, rawEvent, round, socketIoServer, until } from './harness.js';
import { loguxClient, loguxServer, type TaskAction } from './logux.js';
import { report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 3;
const TASKS = smoke ? 50 : 1_000;
const LAGS = smoke ? [500] : [10_000, 100_000];
const STREAM = 'tasks/resync';

interface Metrics {
  [metric: string]: number;
  /** Milliseconds from the reconnect to the client holding the head. */
  caughtUpMs: number;
  /** Bytes the server wrote to the client's socket over that time. */
  bytes: number;
}

interface Subject {
  name: string;
  lag: number;
  run(tag: string): Promise<Metrics>;
}

const taskId = (i: number) => `task_${i}`;

/** Commits of `count` events from version `from`, each its own command (as a hub would store them). */
function commits(from: number, count: number, make: (version: number) => { type: string; data: unknown }): Commit[] {
  const time = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const version = from + i;
    const commandId = `resync-${version}`;
    return { commandId, fingerprint: `fp-${version}`, events: [{ version, ...make(version), time, commandId }] };
  });
}

const created = (version: number) => ({
  type: 'task.created',
  data: {
    id: taskId(version - 1),
    title: `Task ${version - 1}`,
    description: 'A task on the benchmark board',
    status: 'pending',
    priority: 'medium',
    at: Date.now(),
  },
});
const updated = (version: number) => ({
  type: 'task.updated',
  data: { id: taskId(version % TASKS), changes: { title: `Task ${version % TASKS}, revision ${version}` }, at: Date.now() },
});

/** Appends in chunks, as many commits per call as a busy hub would batch. */
async function appendAll(store: MemoryEventStore, from: number, count: number, make: (version: number) => { type: string; data: unknown }): Promise<void> {
  for (let done = 0; done < count; done += 1_000) {
    const size = Math.min(1_000, count - done);
    await store.append(STREAM, from + done - 1, commits(from + done, size, make));
  }
}

/** A connect function that waits at a gate: closed, the client stays offline; `open()` lets it reconnect. */
function gatedConnect(url: string): { connect: () => Promise<Transport>; close(): void; open(): void } {
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  return {
    connect: async () => {
      await gate;
      return webSocketTransport(url);
    },
    close() {
      gate = new Promise((resolve) => (openGate = resolve));
    },
    open: () => openGate(),
  };
}

function lockstep(lag: number, mode: 'delta' | 'snapshot'): Subject {
  return {
    name: `lockstep ${mode}, ${lag / 1_000}k behind`,
    lag,
    async run() {
      const store = new MemoryEventStore();
      await appendAll(store, 1, TASKS, created);
      // Everything stays replayable unless this run is about snapshots.
      const server = await lockstepServer({ store, retainEvents: 1_000_000, snapshotEvery: 1_000_000 });
      const gate = gatedConnect(server.url);
      // Reconnect at once once the gate opens: the backoff is not what is measured.
      const client: LockstepClient = createClient({ connect: gate.connect, backoff: { initialMs: 0, maxMs: 0, jitter: 0 } });
      try {
        const stream = client.stream(tasksDomain, 'resync');
        await stream.waitFor(TASKS);
        gate.close();
        client.disconnect('benchmark: going offline');
        await until(() => client.status.status !== 'online', 10_000, 'the client to go offline');
        // And the hub has let go of its subscription: otherwise the catch-up below goes out to the old
        // socket too, and its bytes are counted when that socket closes, in the measured window.
        await until(() => server.hub.stream(STREAM).subscribers.size === 0, 10_000, 'the hub to drop the old subscription');

        await appendAll(store, TASKS + 1, lag, updated);
        const head = TASKS + lag;
        // The hub learns of the appends through the store's watch, as from another hub.
        await until(() => server.hub.stream(STREAM).version === head, 60_000, 'the hub to catch up with its store');
        if (mode === 'snapshot') {
          const { state } = await server.hub.read(STREAM);
          await store.saveSnapshot({ stream: STREAM, version: head, state });
          await store.compact(STREAM, head - Math.min(999, lag / 2));
        }

        const bytesBefore = server.http.bytesWritten();
        const start = performance.now();
        gate.open();
        await stream.waitFor(head);
        const caughtUpMs = performance.now() - start;
        const bytes = server.http.bytesWritten() - bytesBefore;
        if (stream.confirmed.state.tasks[taskId(head % TASKS)]?.title !== `Task ${head % TASKS}, revision ${head}`) {
          throw new Error('lockstep: the caught-up state is not the head state');
        }
        return { caughtUpMs, bytes };
      } finally {
        client.close();
        await server.close();
      }
    },
  };
}

function socketIo(lag: number): Subject {
  return {
    name: `Socket.IO recovery, ${lag / 1_000}k behind`,
    lag,
    async run() {
      const server = await socketIoServer({ connectionStateRecovery: { maxDisconnectionDuration: 10 * 60_000, skipMiddlewares: true } });
      let serverDisconnects = 0;
      server.io.on('connection', (socket) => {
        if (!socket.recovered) void socket.join(STREAM);
        socket.on('disconnect', () => serverDisconnects++);
      });
      const client: Socket = socketIoClient(server.url, { transports: ['websocket'], reconnection: false, forceNew: true });
      try {
        let received = 0;
        let recovered: boolean | undefined;
        client.on('events', () => received++);
        client.on('connect', () => {
          if (recovered === undefined && received > 0) recovered = client.recovered;
        });
        await new Promise<void>((resolve) => client.once('connect', () => resolve()));
        await new Promise((resolve) => setTimeout(resolve, 50));
        // One event while connected: recovery needs an offset to resume from.
        server.io.to(STREAM).emit('events', rawEvent(STREAM, TASKS, { id: taskId(0), title: 'first' }, 'c0'));
        await until(() => received === 1, 10_000, 'the first Socket.IO event');

        // A transport close (not a client-side disconnect) is what Socket.IO recovers from.
        const disconnected = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
        client.io.engine.close();
        await disconnected;
        // The server must have seen the disconnect (it keeps the session then) before the client comes back.
        await until(() => serverDisconnects === 1, 10_000, 'the Socket.IO server to see the disconnect');
        for (let version = TASKS + 1; version <= TASKS + lag; version++) {
          const { data } = updated(version);
          server.io.to(STREAM).emit('events', rawEvent(STREAM, version, { id: data.id, title: data.changes.title }, `c${version}`));
        }

        const bytesBefore = server.http.bytesWritten();
        const start = performance.now();
        client.connect();
        await until(() => received === 1 + lag || (recovered === false && client.connected), 120_000, 'Socket.IO to replay the missed packets');
        const caughtUpMs = performance.now() - start;
        if (!recovered) throw new Error(`Socket.IO did not recover the session (${received - 1} of ${lag} events)`);
        return { caughtUpMs, bytes: server.http.bytesWritten() - bytesBefore };
      } finally {
        client.close();
        await server.close();
      }
    },
  };
}

function logux(lag: number): Subject {
  return {
    name: `Logux resubscribe with since, ${lag / 1_000}k behind`,
    lag,
    async run() {
      const server = await loguxServer();
      const history = server.history(STREAM);
      // The stream's history, as another server would have written it: 1,000 creates, then the missed updates.
      const record = (version: number, { type, data }: { type: string; data: { id: string; title?: string; changes?: { title?: string } } }) => {
        const id = server.server.log.generateId();
        const title = data.title ?? data.changes?.title ?? '';
        history.push({
          action: { type: type === 'task.created' ? 'task.create' : 'task.update', stream: STREAM, version, payload: { id: data.id, title } },
          id,
          time: parseInt(id, 10),
        });
      };
      for (let version = 1; version <= TASKS; version++) record(version, created(version));
      const client = loguxClient(server.url);
      try {
        let received = 0;
        let last: TaskAction | undefined;
        let lastSeen: { id: string; time: number } | undefined;
        client.log.on('add', (action, meta) => {
          if (action.type !== 'task.create' && action.type !== 'task.update') return;
          received++;
          last = action as TaskAction;
          lastSeen = { id: meta.id, time: meta.time };
        });
        await client.synchronized();
        await client.subscribe(STREAM);
        if (received !== TASKS || !lastSeen) throw new Error(`Logux: ${received} of ${TASKS} actions on the first subscribe`);
        client.disconnect();
        // The server must have let the client go (and its subscription) before the stream moves on.
        await until(
          () => server.server.clientIds.size === 0 && Object.keys(server.server.subscribers).length === 0,
          10_000,
          'the Logux server to drop the client',
        );
        // `since` is a time: keep the missed actions clear of the last one the client saw.
        await sleep(20);
        for (let version = TASKS + 1; version <= TASKS + lag; version++) record(version, updated(version));
        const head = TASKS + lag;

        received = 0;
        const bytesBefore = server.http.bytesWritten();
        const start = performance.now();
        await client.reconnect();
        // Resolves at its `logux/processed`, which the server sends after everything `load` sent back.
        await client.subscribe(STREAM, lastSeen);
        const caughtUpMs = performance.now() - start;
        const bytes = server.http.bytesWritten() - bytesBefore;
        if (received !== lag || last?.version !== head)
          throw new Error(`Logux: ${received} of ${lag} missed actions, the last at version ${last?.version} (head ${head})`);
        return { caughtUpMs, bytes };
      } finally {
        client.close();
        await server.close();
      }
    },
  };
}

const subjects: Subject[] = LAGS.flatMap((lag) => [lockstep(lag, 'delta'), lockstep(lag, 'snapshot'), socketIo(lag), logux(lag)]);
console.error(`resync: ${LAGS.join(' and ')} events behind, a board of ${TASKS} tasks, ${RUNS} runs${smoke ? ' (smoke)' : ''}`);
const results = new Map<Subject, { medians: Metrics; samples: Metrics[] }>();
for (const lag of LAGS) {
  for (const [subject, result] of await interleave(
    subjects.filter((subject) => subject.lag === lag),
    RUNS,
    (subject, run) => subject.run(`r${run}`),
  )) {
    results.set(subject, result);
  }
}

const rows = [...results].map(([subject, { medians }]) => ({ subject: subject.name, metrics: medians }));
const ratios: Record<string, number> = {};
for (const lag of LAGS) {
  const [delta, snapshot, recovery, loguxSince] = subjects.filter((subject) => subject.lag === lag).map((subject) => results.get(subject)?.medians);
  if (delta && recovery) ratios[`${lag / 1_000}k behind: lockstep delta / Socket.IO recovery, time`] = delta.caughtUpMs / recovery.caughtUpMs;
  if (delta && loguxSince) ratios[`${lag / 1_000}k behind: lockstep delta / Logux since, time`] = delta.caughtUpMs / loguxSince.caughtUpMs;
  if (delta && snapshot) ratios[`${lag / 1_000}k behind: snapshot / delta, bytes`] = snapshot.bytes / delta.bytes;
}
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
report({
  scenario: 'resync',
  description: `A client in sync with a board of ${TASKS} tasks reconnects ${LAGS.join(' or ')} events behind: time until its confirmed state holds the head, and bytes the server wrote meanwhile (WebSocket on loopback, one process, one core); ${RUNS} interleaved runs, medians. Target: 100k behind caught up in ≤ 1,000 ms.`,
  units: { caughtUpMs: 'ms', bytes: 'bytes' },
  rows,
  ratios,
  notes: [
    'Lockstep delta: the subscribe answer carries 1,000 events, the rest follow in pages of 1,000; the client validates and applies every page (immer, one draft per page).',
    'Lockstep snapshot: the hub no longer retains the client’s version, so it sends the state instead (`oldestRetained` tells the client why).',
    'Socket.IO: connection-state recovery replays the missed packets one per frame; the client only counts them (it has no state to apply them to).',
    'Logux (`@logux/server` 0.14, `@logux/core` 0.10 client): the client subscribes again with `since`; the channel’s `load` returns the actions of the stream’s history after it, sent one `sync` message each and each answered by `synced`; the client’s log takes them, with no state to apply them to. Timed until the `logux/processed` of the subscribe, which follows them.',
  ],
});
process.exit(0);
