/**
 * The load side of bench/throughputProcesses.bench.ts, in a process of its own pinned to core 1:
 * one writer pipelines `commands` `task.update`s, one reader receives them; answers the events/s at
 * the reader (first send to last event) and this process's CPU use.
 *
 * - lockstep: raw lockstep/1 peers over `ws` (JSON) that ask for batches, as `@lockstep/client`
 *   does: the writer sends its commands joined in frames of up to 512 messages and 64 KiB (what the
 *   client makes of a loop of dispatches) and counts the acks; the reader is subscribed.
 * - raw: the relay's writer sends one command per frame and counts the acks; the reader.
 * - logux: two `@logux/core` clients, as in the in-process scenario (bench/logux.ts).
 *
 * The lockstep and raw peers do not parse what they receive: they find each `"version":N` in the
 * bytes (acks and events both carry one), so this process stays cheap and the server is measured.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { updatePayload } from './harness.js';
import { loguxClient, type TaskAction } from './logux.js';
import type { ServerKind } from './throughputServer.js';

export interface LoadRun {
  type: 'run';
  kind: ServerKind;
  url: string;
  tag: string;
  commands: number;
}

export interface LoadResult {
  type: 'result';
  eventsPerSecond: number;
  /** This process's CPU time over the run, as a fraction of one core. */
  loadCpu: number;
}

const VERSION_KEY = Buffer.from('"version":');
const BATCH_MESSAGES = 512;
const BATCH_BYTES = 64 * 1024;

/** Calls `found` with every number that follows `"version":` in the frame. */
function scanVersions(frame: Buffer, found: (version: number) => void): void {
  let at = frame.indexOf(VERSION_KEY);
  while (at !== -1) {
    let i = at + VERSION_KEY.length;
    let version = 0;
    for (let c = frame[i]!; c >= 48 && c <= 57; c = frame[++i]!) version = version * 10 + (c - 48);
    found(version);
    at = frame.indexOf(VERSION_KEY, i);
  }
}

function open(url: string, protocol: string | undefined, onFrame: (frame: Buffer) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = protocol ? new WebSocket(url, protocol, { perMessageDeflate: false }) : new WebSocket(url, { perMessageDeflate: false });
    socket.on('message', (data) => onFrame(data as Buffer));
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A promise with its resolve and reject. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Runs `send`, then waits for the reader's last event (timed) and the writer's last ack. */
async function timed(commands: number, send: () => void, lastEvent: Promise<void>, lastAck: Promise<void>): Promise<LoadResult> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  send();
  await lastEvent;
  const seconds = (performance.now() - start) / 1_000;
  await lastAck;
  const used = process.cpuUsage(cpu);
  const wall = (performance.now() - start) / 1_000;
  return { type: 'result', eventsPerSecond: commands / seconds, loadCpu: (used.user + used.system) / 1e6 / wall };
}

async function lockstep(run: LoadRun): Promise<LoadResult> {
  const stream = `tasks/throughput-${run.tag}`;
  const last = 1 + run.commands;
  const writerReady = deferred();
  const readerReady = deferred();
  const created = deferred();
  const lastEvent = deferred();
  const lastAck = deferred();
  let acks = 0;
  let subscribed = false;
  const fail = (frame: Buffer) => {
    const error = new Error(`lockstep: ${frame.toString().slice(0, 500)}`);
    for (const waiting of [writerReady, readerReady, created, lastEvent, lastAck]) waiting.reject(error);
  };
  const writer = await open(run.url, 'lockstep.v1.json', (frame) => {
    if (frame.includes('"error":')) return fail(frame);
    if (frame.includes('"id":1,')) return writerReady.resolve();
    if (frame.includes('"id":99,')) return created.resolve();
    scanVersions(frame, () => {
      if (++acks === run.commands) lastAck.resolve();
    });
  });
  const reader = await open(run.url, 'lockstep.v1.json', (frame) => {
    if (frame.includes('"error":')) return fail(frame);
    if (!subscribed) {
      if (frame.includes('"id":2,')) {
        subscribed = true;
        readerReady.resolve();
      }
      return;
    }
    scanVersions(frame, (version) => {
      if (version === last) lastEvent.resolve();
    });
  });
  try {
    const hello = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'hello', params: { protocol: 1, capabilities: { batch: true } } });
    writer.send(hello(1));
    await writerReady.promise;
    writer.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 99,
        method: 'command',
        params: { id: `${run.tag}-create`, stream, type: 'task.create', payload: { id: 'task_bench', title: 'Benchmark' } },
      }),
    );
    await created.promise;
    reader.send(hello(1));
    reader.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'subscribe', params: { stream } }));
    await readerReady.promise;
    return await timed(
      run.commands,
      () => {
        let batch: string[] = [];
        let bytes = 0;
        const flush = () => {
          writer.send(batch.length === 1 ? batch[0]! : `[${batch.join(',')}]`);
          batch = [];
          bytes = 0;
        };
        for (let i = 0; i < run.commands; i++) {
          const message = JSON.stringify({
            jsonrpc: '2.0',
            id: 100 + i,
            method: 'command',
            params: { id: `${run.tag}-${i}`, stream, type: 'task.update', payload: updatePayload(run.tag, i) },
          });
          if (batch.length > 0 && (batch.length === BATCH_MESSAGES || bytes + message.length + 1 > BATCH_BYTES)) flush();
          batch.push(message);
          bytes += message.length + 1;
        }
        if (batch.length > 0) flush();
      },
      lastEvent.promise,
      lastAck.promise,
    );
  } finally {
    writer.terminate();
    reader.terminate();
  }
}

async function raw(run: LoadRun): Promise<LoadResult> {
  const stream = `tasks/throughput-${run.tag}`;
  const last = 1 + run.commands;
  const lastEvent = deferred();
  const lastAck = deferred();
  let acks = 0;
  const reader = await open(`${run.url}/reader`, undefined, (frame) =>
    scanVersions(frame, (version) => {
      if (version === last) lastEvent.resolve();
    }),
  );
  const writer = await open(`${run.url}/writer`, undefined, (frame) =>
    scanVersions(frame, () => {
      if (++acks === run.commands) lastAck.resolve();
    }),
  );
  try {
    return await timed(
      run.commands,
      () => {
        for (let i = 0; i < run.commands; i++) writer.send(JSON.stringify({ id: `c${i}`, stream, type: 'task.update', payload: updatePayload(run.tag, i) }));
      },
      lastEvent.promise,
      lastAck.promise,
    );
  } finally {
    writer.terminate();
    reader.terminate();
  }
}

async function logux(run: LoadRun): Promise<LoadResult> {
  const stream = `tasks/throughput-${run.tag}`;
  const last = 1 + run.commands;
  const writer = loguxClient(run.url);
  const reader = loguxClient(run.url);
  const lastEvent = deferred();
  const lastAck = deferred();
  let acks = 0;
  try {
    await Promise.all([writer.synchronized(), reader.synchronized()]);
    await reader.subscribe(stream);
    reader.log.on('add', (action) => {
      if (action.type === 'task.update' && (action as TaskAction).version === last) lastEvent.resolve();
    });
    writer.log.on('add', (action) => {
      if (action.type === 'logux/processed' && ++acks === run.commands) lastAck.resolve();
      else if (action.type === 'logux/undo') {
        const error = new Error(`Logux: an action was undone: ${JSON.stringify(action)}`);
        lastEvent.reject(error);
        lastAck.reject(error);
      }
    });
    return await timed(
      run.commands,
      () => {
        for (let i = 0; i < run.commands; i++) {
          const action: TaskAction = { type: 'task.update', stream, version: 2 + i, payload: updatePayload(run.tag, i) };
          void writer.add(action);
        }
      },
      lastEvent.promise,
      lastAck.promise,
    );
  } finally {
    writer.close();
    reader.close();
  }
}

process.on('message', (message: LoadRun | { type: 'exit' }) => {
  if (message.type === 'exit') process.exit(0);
  const run = message.kind === 'lockstep' ? lockstep : message.kind === 'raw' ? raw : logux;
  run(message).then(
    (result) => process.send!(result),
    (error: unknown) => {
      console.error('throughput load:', error);
      process.exit(1);
    },
  );
});
process.send!({ type: 'ready' });
