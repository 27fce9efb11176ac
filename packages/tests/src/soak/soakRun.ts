import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { createMemoryLink, createRandom, jsonCodec, type Codec, type Transport } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { FileEventStore, Hub } from '@lockstep/server';
import { createStdioTransport, serveStdio } from '@lockstep/stdio';
import { counterDomain } from '@lockstep/testkit';
import { webSocketConnector } from '@lockstep/ws';
import { createWebSocketServer, type LockstepWebSocketServer } from '@lockstep/ws/server';

/**
 * The soak: clients over every transport (WebSocket JSON and MessagePack, stdio framing on a Unix
 * socket, in-memory links) send a steady stream of commands to one hub on a durable file store,
 * while clients are disconnected at random and the hub is restarted on the same store, port and
 * socket. It measures heap, RSS and open file descriptors after a warm-up and at the end, and checks
 * that every client converged to the hub and that every command was applied exactly once.
 */

export interface SoakOptions {
  durationMs: number;
  /** Measurements start after this much of the run. */
  warmupMs: number;
  clients: number;
  commandsPerSecond: number;
  /** Mean time between hub restarts. */
  restartEveryMs: number;
  /** Mean number of client disconnects a second. */
  disconnectsPerSecond: number;
  seed: number;
  /** Progress lines (one every `progressEveryMs`). */
  log?: ((line: string) => void) | undefined;
  progressEveryMs?: number;
}

export interface SoakReport {
  seed: number;
  durationMs: number;
  clients: Record<Kind, number>;
  dispatched: number;
  acknowledged: number;
  /** Commands dispatched but never acknowledged by the end (must be 0). */
  unacknowledged: number;
  /** Streams whose count is not the number of commands sent to it: lost (<) or applied twice (>). */
  miscounted: Array<{ stream: string; expected: number; applied: number }>;
  /** Retained log entries carrying a command id seen twice. */
  duplicatedInLog: number;
  /** Client streams whose confirmed state or version differs from the hub's. */
  diverged: Array<{ client: number; stream: string; client_: unknown; hub: unknown }>;
  restarts: number;
  disconnects: number;
  failures: string[];
  heap: { warm: number; end: number; growth: number };
  rss: { warm: number; end: number; growth: number };
  fds: { warm: number; end: number; growth: number; byKind: { warm: Record<string, number>; end: Record<string, number> } };
}

type Kind = 'ws-json' | 'ws-msgpack' | 'stdio' | 'memory';
const KINDS: readonly Kind[] = ['ws-json', 'ws-msgpack', 'stdio', 'memory'];
const STREAMS = Array.from({ length: 10 }, (_, i) => `s${i}`);

/** `global.gc`, without starting Node with --expose-gc. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Open file descriptors of this process, by kind: sockets, pipes, files of the store, others. */
function openFds(storeDirectory: string): Record<string, number> {
  const kinds: Record<string, number> = { total: 0 };
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used, already closed
    }
    const kind = target.startsWith('socket:') ? 'sockets' : target.startsWith('pipe:') ? 'pipes' : target.startsWith(storeDirectory) ? 'store files' : 'other';
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    kinds['total']!++;
  }
  return kinds;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The hub process, restartable on the same store directory, port and socket path. */
class HubHost {
  hub: Hub | undefined;
  #store: FileEventStore | undefined;
  #ws: LockstepWebSocketServer | undefined;
  #stdio: Server | undefined;
  port = 0;
  readonly errors: string[] = [];

  constructor(
    readonly directory: string,
    readonly socketPath: string,
  ) {}

  async start(): Promise<void> {
    // Small dedup, rewrite and retention windows, so the store reaches its steady state within the
    // warm-up (5,000 command ids are 50 s at 100 commands/s; the first log rewrite comes within
    // seconds): what grows after that is a leak, not the log. Retries come within seconds, far
    // inside the dedup window.
    this.#store = await FileEventStore.open(this.directory, { maxCommandRecords: 5_000, rewriteBytes: 256 * 1024 });
    const hub = new Hub({
      domains: [counterDomain],
      store: this.#store,
      snapshotEvery: 200,
      retainEvents: 500,
      onError: (error, context) => this.errors.push(`${context}: ${String(error)}`),
    });
    this.#ws = createWebSocketServer(hub, { port: this.port, onError: (error, context) => this.errors.push(`ws ${context}: ${String(error)}`) });
    await this.#ws.ready;
    this.port = this.#ws.address().port;
    this.#stdio = createServer((socket) => {
      socket.on('error', () => {});
      serveStdio(hub, { input: socket, output: socket, guardConsole: false });
    });
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve) => this.#stdio!.listen(this.socketPath, resolve));
    this.hub = hub;
  }

  async stop(): Promise<void> {
    const hub = this.hub;
    this.hub = undefined;
    await hub?.close();
    await this.#ws?.close();
    // Resolves once the connections the hub closed have ended too.
    const stdio = this.#stdio;
    if (stdio) await new Promise<void>((resolve) => stdio.close(() => resolve()));
    await this.#store?.close();
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }
}

interface SoakClient {
  index: number;
  kind: Kind;
  client: LockstepClient;
  streams: Array<SyncedStream<typeof counterDomain>>;
  sent: number;
}

function connector(host: HubHost, kind: Kind): { connect: () => Transport | Promise<Transport>; codec: Codec } {
  switch (kind) {
    case 'ws-json':
      return { connect: () => webSocketConnector(host.url, { codec: jsonCodec })(), codec: jsonCodec };
    case 'ws-msgpack':
      return { connect: () => webSocketConnector(host.url, { codec: msgpackCodec })(), codec: msgpackCodec };
    case 'stdio':
      return {
        connect: () => {
          const socket = netConnect(host.socketPath);
          return createStdioTransport({ input: socket, output: socket });
        },
        codec: jsonCodec,
      };
    case 'memory':
      return {
        connect: () => {
          const hub = host.hub;
          if (!hub) throw new Error('hub is restarting');
          const link = createMemoryLink();
          hub.accept(link.server);
          return link.client;
        },
        codec: jsonCodec,
      };
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const gc = exposeGc();
  const random = createRandom(options.seed);
  const log = options.log ?? (() => {});
  const directory = mkdtempSync(join(tmpdir(), 'lockstep-soak-'));
  const host = new HubHost(join(directory, 'store'), join(directory, 'stdio.sock'));
  await host.start();

  const failures: string[] = [];
  const sentTo = new Map<string, number>();
  let acknowledged = 0;
  const clients: SoakClient[] = [];
  for (let index = 0; index < options.clients; index++) {
    const kind = KINDS[index % KINDS.length]!;
    const { connect, codec } = connector(host, kind);
    const client = createClient({
      connect,
      codec,
      clientId: `soak-${index}`,
      random: createRandom(options.seed + index),
      backoff: { initialMs: 20, maxMs: 500 },
      requestTimeoutMs: 5_000,
      retryDelayMs: 100,
    });
    // Two streams per client, overlapping, so every stream has writers and readers on every transport.
    const names = [STREAMS[index % STREAMS.length]!, STREAMS[(index * 3 + 1) % STREAMS.length]!];
    const streams = [...new Set(names)].map((key) => client.stream(counterDomain, key));
    clients.push({ index, kind, client, streams, sent: 0 });
  }
  await Promise.all(clients.map((entry) => entry.client.whenIdle()));

  const started = Date.now();
  const elapsed = () => Date.now() - started;
  let restarts = 0;
  let disconnects = 0;
  let restarting: Promise<void> | undefined;
  let warm: { heap: number; rss: number; fds: Record<string, number> } | undefined;

  /** Waits until every client is online and no restart is in progress: a stable point to measure. */
  const settle = async () => {
    for (;;) {
      await restarting;
      const online = clients.every((entry) => entry.client.status.status === 'online');
      if (online && restarting === undefined) return;
      await sleep(20);
    }
  };
  const measure = async () => {
    await settle();
    gc();
    await sleep(50);
    gc();
    return { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss, fds: openFds(host.directory) };
  };

  // Commands: a steady pace, each from a random client to one of its streams.
  const dispatch = () => {
    const entry = random.pick(clients);
    const stream = random.pick(entry.streams);
    const id = `soak-${entry.index}-${entry.sent++}`;
    sentTo.set(stream.name, (sentTo.get(stream.name) ?? 0) + 1);
    stream.dispatch({ type: 'add', payload: { by: 1 } }, { id }).then(
      () => acknowledged++,
      (error: unknown) => failures.push(`${id}: ${String(error)}`),
    );
  };
  let nextRestart = options.restartEveryMs * (0.5 + random.next());
  let lastProgress = 0;
  const tickMs = 10;
  let dispatchedSoFar = 0;
  while (elapsed() < options.durationMs) {
    await sleep(tickMs);
    // Paced by the clock, not by the ticks: a slow tick sends what is due.
    const due = Math.floor((elapsed() * options.commandsPerSecond) / 1_000);
    for (; dispatchedSoFar < due; dispatchedSoFar++) dispatch();
    if (random.chance((options.disconnectsPerSecond * tickMs) / 1_000)) {
      random.pick(clients).client.disconnect('soak: random disconnect');
      disconnects++;
    }
    if (restarting === undefined && elapsed() >= nextRestart) {
      restarts++;
      restarting = (async () => {
        await host.stop();
        await sleep(random.int(200));
        await host.start();
      })().finally(() => {
        restarting = undefined;
      });
      nextRestart = elapsed() + options.restartEveryMs * (0.5 + random.next());
    }
    if (warm === undefined && elapsed() >= options.warmupMs) {
      warm = await measure();
      log(`warm at ${(elapsed() / 1000).toFixed(0)} s: heap ${mb(warm.heap)}, rss ${mb(warm.rss)}, fds ${JSON.stringify(warm.fds)}`);
    }
    if (elapsed() - lastProgress >= (options.progressEveryMs ?? 60_000)) {
      lastProgress = elapsed();
      const usage = process.memoryUsage();
      log(
        `${(elapsed() / 1000).toFixed(0)} s: ${acknowledged} acked, ${restarts} restarts, ${disconnects} disconnects, heap ${mb(usage.heapUsed)}, rss ${mb(usage.rss)}, fds ${JSON.stringify(openFds(host.directory))}`,
      );
    }
  }
  await restarting;
  // Quiesce: every pending command acknowledged, every stream caught up.
  await Promise.all(clients.map((entry) => entry.client.whenIdle()));
  await settle();
  const end = await measure();
  warm ??= end;

  // Exactly once: each stream's count is the number of commands sent to it.
  const hub = host.hub!;
  const miscounted: SoakReport['miscounted'] = [];
  let duplicatedInLog = 0;
  for (const key of STREAMS) {
    const name = `counter/${key}`;
    const { state, version } = await hub.read(name);
    const applied = (state as { n: number }).n;
    const expected = sentTo.get(name) ?? 0;
    if (applied !== expected || version !== expected) miscounted.push({ stream: name, expected, applied });
    const retained = await hub.store.read(name, 1, Number.MAX_SAFE_INTEGER);
    const ids = new Set(retained.map((event) => event.commandId));
    duplicatedInLog += retained.length - ids.size;
  }
  // Convergence: every client's confirmed state is the hub's.
  const diverged: SoakReport['diverged'] = [];
  for (const entry of clients) {
    for (const stream of entry.streams) {
      const truth = await hub.read(stream.name);
      const confirmed = stream.confirmed;
      if (confirmed.version !== truth.version || JSON.stringify(confirmed.state) !== JSON.stringify(truth.state)) {
        diverged.push({ client: entry.index, stream: stream.name, client_: confirmed, hub: truth });
      }
    }
  }
  const dispatched = clients.reduce((sum, entry) => sum + entry.sent, 0);
  for (const entry of clients) entry.client.close();
  await host.stop();
  rmSync(directory, { recursive: true, force: true });
  failures.push(...host.errors);

  const growth = (from: number, to: number) => (to - from) / from;
  return {
    seed: options.seed,
    durationMs: elapsed(),
    clients: Object.fromEntries(KINDS.map((kind) => [kind, clients.filter((entry) => entry.kind === kind).length])) as Record<Kind, number>,
    dispatched,
    acknowledged,
    unacknowledged: dispatched - acknowledged,
    miscounted,
    duplicatedInLog,
    diverged,
    restarts,
    disconnects,
    failures,
    heap: { warm: warm.heap, end: end.heap, growth: growth(warm.heap, end.heap) },
    rss: { warm: warm.rss, end: end.rss, growth: growth(warm.rss, end.rss) },
    fds: { warm: warm.fds['total']!, end: end.fds['total']!, growth: end.fds['total']! - warm.fds['total']!, byKind: { warm: warm.fds, end: end.fds } },
  };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function formatReport(report: SoakReport): string {
  const pct = (value: number) => `${(value * 100).toFixed(1)}%`;
  return [
    `soak (seed ${report.seed}): ${(report.durationMs / 1000).toFixed(0)} s, clients ${JSON.stringify(report.clients)}`,
    `  commands: ${report.dispatched} dispatched, ${report.acknowledged} acknowledged, ${report.unacknowledged} unacknowledged`,
    `  chaos: ${report.restarts} hub restarts, ${report.disconnects} client disconnects`,
    `  exactly once: ${report.miscounted.length} streams miscounted, ${report.duplicatedInLog} duplicated log entries`,
    `  divergence: ${report.diverged.length} client streams differ from the hub`,
    `  heap after gc: ${mb(report.heap.warm)} → ${mb(report.heap.end)} (${pct(report.heap.growth)})`,
    `  rss: ${mb(report.rss.warm)} → ${mb(report.rss.end)} (${pct(report.rss.growth)})`,
    `  file descriptors: ${report.fds.warm} → ${report.fds.end} (${report.fds.growth >= 0 ? '+' : ''}${report.fds.growth}; ${JSON.stringify(report.fds.byKind.warm)} → ${JSON.stringify(report.fds.byKind.end)})`,
    `  failures: ${report.failures.length}${report.failures.length > 0 ? ` (first: ${report.failures[0]})` : ''}`,
  ].join('\n');
}
