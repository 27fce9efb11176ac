/**
 * What the WebSocket scenarios share: interleaved runs with medians, a Lockstep hub behind a
 * WebSocket server, a Socket.IO server, and the payloads every subject sends.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { tasksDomain } from '@lockstep/core';
import { Hub, type HubOptions } from '@lockstep/server';
import { createWebSocketServer, type LockstepWebSocketServer } from '@lockstep/ws/server';
import { Server as SocketIoServer, type ServerOptions as SocketIoOptions } from 'socket.io';
import { WebSocketServer } from 'ws';
import { median } from './stats.js';

/** The run number `measure` is given for a subject's warm-up run (its result is not kept). */
export const WARM_UP = -1;

/**
 * Runs `measure` for every subject, `runs` times, rotating the order each round; medians per metric.
 * With `warmUp`, every subject first runs once unmeasured (`run` is {@link WARM_UP}): the first run in
 * a process compiles its code paths and grows its heap, and would otherwise count, for whichever
 * subject comes first, what a server that has been up for a second no longer pays.
 */
export async function interleave<S extends { name: string }, M extends { [metric: string]: number }>(
  subjects: readonly S[],
  runs: number,
  measure: (subject: S, run: number) => Promise<M>,
  { warmUp = false }: { warmUp?: boolean } = {},
): Promise<Map<S, { medians: M; samples: M[] }>> {
  const samples = new Map<S, M[]>(subjects.map((subject) => [subject, []]));
  // LOCKSTEP_BENCH_SUBJECT=<text> measures only the subject of that name, or else those whose name contains it (for profiling).
  const only = process.env['LOCKSTEP_BENCH_SUBJECT'];
  const named = subjects.filter((subject) => subject.name === only);
  const chosen = !only ? subjects : named.length > 0 ? named : subjects.filter((subject) => subject.name.includes(only));
  if (warmUp) {
    for (const subject of chosen) {
      const result = await measure(subject, WARM_UP);
      console.error(
        `  warm-up ${subject.name}: ${Object.entries(result)
          .map(([key, value]) => `${key} ${round(value)}`)
          .join(', ')}`,
      );
    }
  }
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < chosen.length; k++) {
      const subject = chosen[(run + k) % chosen.length]!;
      const result = await measure(subject, run);
      samples.get(subject)!.push(result);
      console.error(
        `  run ${run + 1}/${runs} ${subject.name}: ${Object.entries(result)
          .map(([key, value]) => `${key} ${round(value)}`)
          .join(', ')}`,
      );
    }
  }
  const out = new Map<S, { medians: M; samples: M[] }>();
  for (const [subject, results] of samples) {
    if (results.length === 0) continue;
    const keys = Object.keys(results[0] ?? {}) as Array<keyof M>;
    const medians = Object.fromEntries(keys.map((key) => [key, median(results.map((result) => result[key] as number))])) as M;
    out.set(subject, { medians, samples: results });
  }
  return out;
}

export function round(value: number): string {
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** An HTTP server on a free loopback port that remembers its TCP sockets (to count bytes written). */
export interface CountingHttpServer {
  server: HttpServer;
  port: number;
  /** Bytes written to every socket the server ever accepted. */
  bytesWritten(): number;
  close(): Promise<void>;
}

export async function countingHttpServer(): Promise<CountingHttpServer> {
  const server = createServer((_request, response) => response.writeHead(404).end());
  const sockets = new Set<Socket>();
  let closedBytes = 0;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      closedBytes += socket.bytesWritten;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    bytesWritten: () => {
      let total = closedBytes;
      for (const socket of sockets) total += socket.bytesWritten;
      return total;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface LockstepServer {
  hub: Hub;
  ws: LockstepWebSocketServer;
  http: CountingHttpServer;
  url: string;
  close(): Promise<void>;
}

/** A hub serving the built-in tasks domain over WebSocket, with no rate limit (benchmarks flood it). */
export async function lockstepServer(options: Partial<HubOptions> = {}): Promise<LockstepServer> {
  const hub = new Hub({ domains: [tasksDomain], rateLimit: false, ...options });
  const http = await countingHttpServer();
  // Every benchmark client connects from 127.0.0.1: no cap on connections per address.
  const ws = createWebSocketServer(hub, {
    server: http.server,
    heartbeatMs: 0,
    maxPayload: 64 * 1024 * 1024,
    maxConnectionsPerAddress: Number.POSITIVE_INFINITY,
  });
  await ws.ready;
  return {
    hub,
    ws,
    http,
    url: `ws://127.0.0.1:${http.port}`,
    async close() {
      await hub.close();
      await ws.close();
      await http.close();
    },
  };
}

/** A `ws` server on its own counting HTTP server. */
export async function rawWsServer(): Promise<{ wss: WebSocketServer; http: CountingHttpServer; url: string; close(): Promise<void> }> {
  const http = await countingHttpServer();
  const wss = new WebSocketServer({ server: http.server, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  return {
    wss,
    http,
    url: `ws://127.0.0.1:${http.port}`,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await http.close();
    },
  };
}

/** A Socket.IO server (WebSocket transport only: polling would only make it slower). */
export async function socketIoServer(
  options: Partial<SocketIoOptions> = {},
): Promise<{ io: SocketIoServer; http: CountingHttpServer; url: string; close(): Promise<void> }> {
  const http = await countingHttpServer();
  const io = new SocketIoServer(http.server, { transports: ['websocket'], perMessageDeflate: false, maxHttpBufferSize: 64 * 1024 * 1024, ...options });
  return {
    io,
    http,
    url: `http://127.0.0.1:${http.port}`,
    async close() {
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => void io.close(() => resolve()));
      await http.close().catch(() => {});
    },
  };
}

/** The task every scenario updates, and the update of run `run`, message `i` (a new title each time, so every command is a change). */
export const TASK_ID = 'task_bench';
export const updatePayload = (tag: string, i: number) => ({ id: TASK_ID, title: `Benchmark title ${tag}.${i}` });

/**
 * The event a hand-written server would broadcast for that update: the same fields Lockstep's
 * `task.updated` carries, so the baselines move as many bytes.
 */
export function rawEvent(stream: string, version: number, payload: { id: string; title: string }, commandId: string) {
  const now = Date.now();
  return { stream, events: [{ version, type: 'task.updated', data: { id: payload.id, changes: { title: payload.title }, at: now }, time: now, commandId }] };
}

/** Polls `condition` every millisecond (for setup steps, never inside a timed section that matters). */
export async function until(condition: () => boolean, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

/**
 * The median over runs of `a`'s metric divided by `b`'s in the same round: steadier than a ratio
 * of medians when the machine's load drifts between rounds. NaN when either was not measured.
 */
export function pairedRatio<S, M extends Record<string, number>>(results: Map<S, { samples: M[] }>, a: S, b: S, metric: keyof M): number {
  const x = results.get(a)?.samples;
  const y = results.get(b)?.samples;
  if (!x || !y) return Number.NaN;
  const ratios: number[] = [];
  for (let run = 0; run < Math.min(x.length, y.length); run++) ratios.push((x[run]![metric] as number) / (y[run]![metric] as number));
  return median(ratios);
}

/**
 * A benchmark's child process (a server or a load generator, `file` relative to bench/) that answers
 * one message per request, in order, over IPC. `pinTo`: run it under `taskset` on that core.
 * `server`: run the compiled packages (no source condition: tsx's keepNames would add a `name`
 * property to many functions, memory per stream the published code does not spend), with
 * `--expose-gc` and `serverFlags`. A child that fails ends the benchmark (`label` says which).
 */
export class BenchChild {
  readonly #process: ChildProcess;
  readonly #waiting: Array<(message: Record<string, unknown>) => void> = [];
  /** The child's first message: it is up. */
  readonly ready: Promise<Record<string, unknown>>;

  constructor(file: string, args: string[], options: { label: string; pinTo?: number; server?: boolean; serverFlags?: string[] }) {
    const pin = options.pinTo !== undefined ? ['taskset', '-c', String(options.pinTo)] : [];
    const execArgv = options.server
      ? [...process.execArgv.filter((arg) => arg !== '--conditions=lockstep-source'), '--expose-gc', ...(options.serverFlags ?? [])]
      : process.execArgv;
    this.#process = fork(fileURLToPath(new URL(file, import.meta.url)), args, {
      execPath: pin.length ? pin[0] : process.execPath,
      execArgv: pin.length ? [...pin.slice(1), process.execPath, ...execArgv] : execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#process.on('message', (message) => this.#waiting.shift()?.(message as Record<string, unknown>));
    this.#process.on('exit', (code) => {
      if (code !== 0 && code !== null) {
        console.error(`${options.label}: ${file} exited with ${code}`);
        process.exit(1);
      }
    });
    this.ready = this.#next();
  }

  #next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const answer = this.#next();
    this.#process.send(message);
    return answer;
  }

  exit(): Promise<void> {
    return new Promise((resolve) => {
      this.#process.once('exit', () => resolve());
      this.#process.send({ type: 'exit' });
    });
  }
}
