/**
 * Throughput (issue 8): one writer pipelines `task.update` commands on one stream as fast as it can,
 * one other client receives the events; events/s are counted at the receiver, from the first send to
 * the last event in its hands. Everything runs in this process, on one core (bench/run.ts pins it).
 *
 * - lockstep (json | msgpack): two `@lockstep/client` clients over `@lockstep/ws`; the writer
 *   dispatches every command at once (no await), the reader's confirmed state reaches the last version.
 *   The hub validates, decides, appends (memory store), evolves and broadcasts each one; the writer,
 *   subscribed, takes each command's events for its ack (eventAcks).
 * - raw ws: a hand-written relay — the writer sends one JSON command per frame, the server parses it,
 *   stamps a version and sends one JSON event per frame to the reader, which parses it.
 * - Socket.IO: the same relay with `emit` and a room broadcast (WebSocket transport only).
 * - Logux: `@logux/server` 0.14 with two `@logux/core` clients (bench/logux.ts): the writer adds
 *   `task.update` actions to its log, the server validates each in `access` (the tasks domain's zod
 *   schema), resends it to the stream's channel and records it in `process`; the reader is
 *   subscribed to the channel; the writer waits for every `logux/processed`, its ack.
 *
 * throughputProcesses.bench.ts runs the same load with each server in a process of its own.
 * Subjects alternate, several runs each, medians. LOCKSTEP_BENCH_SMOKE=1 runs tiny sizes.
 */
import { performance } from 'node:perf_hooks';
import { createClient } from '@lockstep/client';
import { jsonCodec, tasksDomain, type Codec } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { webSocketConnector } from '@lockstep/ws';
import { io as socketIoClient } from 'socket.io-client';
import WebSocket from 'ws';
import { TASK_ID, WARM_UP, interleave, lockstepServer, pairedRatio, rawEvent, rawWsServer, round, socketIoServer, updatePayload } from './harness.js';
import { loguxClient, loguxServer, type TaskAction } from './logux.js';
import { report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 5;
const MESSAGES = smoke ? 300 : 30_000;

interface Rates {
  [metric: string]: number;
  /** Events received per second of wall-clock time. */
  eventsPerSecond: number;
  /** Events per second of this process's CPU time (user + system, every thread): what a free core would do. */
  eventsPerCpuSecond: number;
}

/** Starts timing; the returned function answers the rates for `events` events. */
function stopwatch(): (events: number) => Rates {
  const start = performance.now();
  const cpu = process.cpuUsage();
  return (events) => {
    const seconds = (performance.now() - start) / 1_000;
    const used = process.cpuUsage(cpu);
    return { eventsPerSecond: events / seconds, eventsPerCpuSecond: events / ((used.user + used.system) / 1e6) };
  };
}

interface Subject {
  name: string;
  /** Sends MESSAGES updates; answers events/s at the receiver. */
  run(tag: string): Promise<Rates>;
}

/** `board`: tasks on the board besides the one updated (the updates then go round all of them). */
function lockstep(codec: Codec, board = 0): Subject {
  return {
    name: `lockstep (${codec.name})${board ? `, board of ${board + 1} tasks` : ''}`,
    async run(tag) {
      const server = await lockstepServer();
      const key = `throughput-${tag}`;
      // The board is filled in the hub before the clients come (they receive it as a snapshot).
      for (let i = 0; i < board; i += 500) {
        await Promise.all(
          Array.from({ length: Math.min(500, board - i) }, (_, k) =>
            server.hub.execute({
              id: `${tag}-fill-${i + k}`,
              stream: `tasks/${key}`,
              type: 'task.create',
              payload: { id: `task_${i + k}`, title: `Task ${i + k}` },
            }),
          ),
        );
      }
      const connect = webSocketConnector(server.url, { codec });
      const writer = createClient({ connect, codec });
      const reader = createClient({ connect, codec });
      try {
        const out = writer.stream(tasksDomain, key);
        const into = reader.stream(tasksDomain, key);
        await out.dispatch({ type: 'task.create', payload: { id: TASK_ID, title: 'Benchmark' } });
        const start = board + 1;
        await into.waitFor(start);
        const stop = stopwatch();
        const acks: Array<Promise<unknown>> = [];
        for (let i = 0; i < MESSAGES; i++) {
          const payload = updatePayload(tag, i);
          if (board > 0 && i % (board + 1) !== board) payload.id = `task_${i % (board + 1)}`;
          acks.push(out.dispatch({ type: 'task.update', payload }));
        }
        await into.waitFor(start + MESSAGES);
        const rates = stop(MESSAGES);
        await Promise.all(acks);
        return rates;
      } finally {
        writer.close();
        reader.close();
        await server.close();
      }
    },
  };
}

const rawWs: Subject = {
  name: 'raw ws relay (JSON, one per frame)',
  async run(tag) {
    const server = await rawWsServer();
    const stream = `tasks/throughput-${tag}`;
    let readerSocket: WebSocket | undefined;
    let version = 1;
    server.wss.on('connection', (socket, request) => {
      if (request.url === '/reader') {
        readerSocket = socket;
        return;
      }
      socket.on('message', (data) => {
        const command = JSON.parse((data as Buffer).toString()) as { id: string; payload: { id: string; title: string } };
        readerSocket?.send(JSON.stringify(rawEvent(stream, ++version, command.payload, command.id)));
      });
    });
    const reader = new WebSocket(`${server.url}/reader`);
    const writer = new WebSocket(`${server.url}/writer`);
    try {
      await Promise.all([opened(reader), opened(writer)]);
      let received = 0;
      let last = 0;
      const done = new Promise<void>((resolve) =>
        reader.on('message', (data) => {
          const message = JSON.parse((data as Buffer).toString()) as { events: Array<{ version: number }> };
          last = message.events[0]!.version;
          if (++received === MESSAGES) resolve();
        }),
      );
      const stop = stopwatch();
      for (let i = 0; i < MESSAGES; i++) writer.send(JSON.stringify({ id: `c${i}`, stream, type: 'task.update', payload: updatePayload(tag, i) }));
      await done;
      const rates = stop(MESSAGES);
      if (last !== 1 + MESSAGES) throw new Error(`raw ws: last version ${last}, expected ${1 + MESSAGES}`);
      return rates;
    } finally {
      reader.terminate();
      writer.terminate();
      await server.close();
    }
  },
};

const socketIo: Subject = {
  name: 'Socket.IO emit + room broadcast',
  async run(tag) {
    const server = await socketIoServer();
    const stream = `tasks/throughput-${tag}`;
    let version = 1;
    server.io.on('connection', (socket) => {
      if (socket.handshake.auth['role'] === 'reader') void socket.join(stream);
      socket.on('command', (command: { id: string; payload: { id: string; title: string } }) => {
        server.io.to(stream).emit('events', rawEvent(stream, ++version, command.payload, command.id));
      });
    });
    const options = { transports: ['websocket'], reconnection: false, forceNew: true };
    const reader = socketIoClient(server.url, { ...options, auth: { role: 'reader' } });
    const writer = socketIoClient(server.url, { ...options, auth: { role: 'writer' } });
    try {
      await Promise.all([
        new Promise((resolve) => reader.once('connect', () => resolve(undefined))),
        new Promise((resolve) => writer.once('connect', () => resolve(undefined))),
      ]);
      // The join happens on the server's side of the connection: give it a round trip.
      await new Promise((resolve) => writer.timeout(5_000).emit('noop', resolve));
      let received = 0;
      let last = 0;
      const done = new Promise<void>((resolve) =>
        reader.on('events', (message: { events: Array<{ version: number }> }) => {
          last = message.events[0]!.version;
          if (++received === MESSAGES) resolve();
        }),
      );
      const stop = stopwatch();
      for (let i = 0; i < MESSAGES; i++) writer.emit('command', { id: `c${i}`, stream, type: 'task.update', payload: updatePayload(tag, i) });
      await done;
      const rates = stop(MESSAGES);
      if (last !== 1 + MESSAGES) throw new Error(`Socket.IO: last version ${last}, expected ${1 + MESSAGES}`);
      return rates;
    } finally {
      reader.close();
      writer.close();
      await server.close();
    }
  },
};

const logux: Subject = {
  name: 'Logux (@logux/server 0.14, channel + resend)',
  async run(tag) {
    const server = await loguxServer();
    const stream = `tasks/throughput-${tag}`;
    const writer = loguxClient(server.url);
    const reader = loguxClient(server.url);
    try {
      await Promise.all([writer.synchronized(), reader.synchronized()]);
      await reader.subscribe(stream);
      let received = 0;
      let last = 0;
      let acks = 0;
      let allReceived!: () => void;
      let allAcked!: () => void;
      let failed!: (error: Error) => void;
      const failure = new Promise<never>((_resolve, reject) => (failed = reject));
      const done = Promise.race([new Promise<void>((resolve) => (allReceived = resolve)), failure]);
      const acked = Promise.race([new Promise<void>((resolve) => (allAcked = resolve)), failure]);
      failure.catch(() => {});
      reader.log.on('add', (action) => {
        if (action.type !== 'task.update') return;
        last = (action as TaskAction).version;
        if (++received === MESSAGES) allReceived();
      });
      writer.log.on('add', (action) => {
        if (action.type === 'logux/processed' && ++acks === MESSAGES) allAcked();
        else if (action.type === 'logux/undo') failed(new Error(`Logux: an action was undone: ${JSON.stringify(action)}`));
      });
      const stop = stopwatch();
      for (let i = 0; i < MESSAGES; i++) {
        const action: TaskAction = { type: 'task.update', stream, version: 2 + i, payload: updatePayload(tag, i) };
        void writer.add(action);
      }
      await done;
      const rates = stop(MESSAGES);
      await acked;
      if (last !== 1 + MESSAGES) throw new Error(`Logux: last version ${last}, expected ${1 + MESSAGES}`);
      return rates;
    } finally {
      writer.close();
      reader.close();
      await server.close();
    }
  },
};

function opened(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
}

const subjects = [lockstep(jsonCodec), lockstep(msgpackCodec), lockstep(jsonCodec, smoke ? 49 : 999), rawWs, socketIo, logux];
console.error(`throughput: ${MESSAGES} updates × ${RUNS} runs${smoke ? ' (smoke)' : ''}`);
const results = await interleave(subjects, RUNS, (subject, run) => subject.run(run === WARM_UP ? 'warm' : `r${run}`), { warmUp: !smoke });
const rows = [...results].map(([subject, { medians }]) => ({ subject: subject.name, metrics: medians }));
const [json, msgpack, board] = subjects as [Subject, Subject, Subject];
const ratio = (a: Subject, b: Subject, metric: keyof Rates) => pairedRatio(results, a, b, metric);
const ratios = {
  'lockstep json / raw ws, events/s (target ≥ 0.5)': ratio(json, rawWs, 'eventsPerSecond'),
  'lockstep json / raw ws, events per CPU second': ratio(json, rawWs, 'eventsPerCpuSecond'),
  'lockstep msgpack / raw ws, events/s': ratio(msgpack, rawWs, 'eventsPerSecond'),
  'lockstep json, board of 1,000 tasks / one task, events/s': ratio(board, json, 'eventsPerSecond'),
  'lockstep json / Socket.IO, events/s (target ≥ 1)': ratio(json, socketIo, 'eventsPerSecond'),
  'lockstep json / Socket.IO, events per CPU second': ratio(json, socketIo, 'eventsPerCpuSecond'),
  'lockstep json / Logux, events/s (target ≥ 5)': ratio(json, logux, 'eventsPerSecond'),
  'lockstep json / Logux, events per CPU second': ratio(json, logux, 'eventsPerCpuSecond'),
};
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
report({
  scenario: 'throughput',
  description: `One writer pipelines ${MESSAGES} \`task.update\` commands on one stream; one other client receives the events over ws on loopback; events/s at the receiver, from the first send to the last event. One process, one core; ${smoke ? '' : 'each subject warmed up by one unmeasured run, then '}${RUNS} interleaved runs, medians; ratios are medians of the same-round ratios.`,
  units: { eventsPerSecond: 'events/s', eventsPerCpuSecond: 'events/CPU s' },
  rows,
  ratios,
  notes: [
    'Events per CPU second divide by the CPU time this process used (user + system, all threads): on a machine shared with other work it moves much less than the wall-clock rate.',
    'Lockstep per command: envelope and payload validation (zod), dedup lookup, decide, append to the memory store, evolve (immer), one `events` frame per batch; the writer is a client store that is also subscribed (it receives every event too) and keeps every command pending until its events confirm it (they stand for its ack: eventAcks, decision 56).',
    'The raw ws and Socket.IO baselines relay without validation, state, storage, acks or dedup: the ceiling of a hand-written server.',
    'Logux (`@logux/server` 0.14, `@logux/core` 0.10 clients, NODE_ENV=production): the payload checked with the same zod schema in `access`, `resend` to the stream’s channel, appended to the stream’s history in `process`, acked by `logux/processed`; its log keeps no action once sent on (its default). See docs/performance.md, "The peer: Logux".',
  ],
});
process.exit(0);
