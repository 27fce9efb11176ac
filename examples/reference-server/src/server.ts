import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { builtInDomains, systemClock, type Clock } from '@lockstep/core';
import { createTerminalExtension, type TerminalManager } from '@lockstep/pty';
import { Hub, type HubOptions } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';
import { createApiHandler } from './api/apiHandler.js';
import { API_PREFIX, DEFAULT_HOST, DEFAULT_PORT, PROJECT_ID, WS_PATH } from './contract.js';
import { DashboardAssets } from './dashboardAssets.js';
import { EventStream, type EventStreamOptions } from './http/eventStream.js';
import { HttpError } from './http/httpError.js';
import { RateLimiter, type RateLimit } from './http/rateLimiter.js';
import { sendJson } from './http/reply.js';
import { HostCheck } from './hostCheck.js';
import { SessionTerminals, type ShellCommand } from './sessionTerminals.js';
import { defaultShell, isGoneSessionExit } from './shell.js';
import { openStore, type StoreOption } from './store.js';

export interface ReferenceServerOptions {
  /** Default 7420 (`DEFAULT_PORT`); 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Where events live: `'memory'`, a `postgres://…` URL, or an `EventStore` you own (not closed by
   * the server). Default: the crash-safe file store in `dataDir`.
   */
  store?: StoreOption;
  /** The file store's directory. Default `.data/reference-server` (`DEFAULT_DATA_DIR`), relative to the working directory. */
  dataDir?: string;
  /** The hub's clock (command times, leases) and the rate limiter's. Default: the system clock. */
  clock?: Clock;
  /** Where the server's lines go (startup, recoveries, errors). Default: console.log. */
  log?: (line: string) => void;
  /** Terminals for the sessions of `tasks/<PROJECT_ID>`. Default on. */
  terminals?: boolean;
  /** The program each session's terminal runs. Default: `$SHELL`, else /bin/bash, else /bin/sh, without arguments. */
  shell?: ShellCommand;
  /** The terminals' working directory. Default: the server's working directory. */
  terminalCwd?: string;
  /** Where the dashboard's sources are (`main.tsx`, `styles.css`), and whether to build it at start. */
  dashboard?: { sourceDir?: string; buildAtStart?: boolean };
  /** Largest REST request body. Default 256 KiB. */
  maxBodyBytes?: number;
  /** REST requests per client address. Default 200 a second, bursts of 400; `false` turns it off. */
  rateLimit?: RateLimit | false;
  /** Server-Sent Events: heartbeat interval, the unsent bytes past which a stream pauses, the `retry:` hint. */
  eventStreams?: Partial<EventStreamOptions>;
  /** Host names (besides the loopback ones when listening on loopback) the HTTP and WebSocket endpoints answer to. */
  allowedHosts?: readonly string[];
  /** More hub options (lease grace, limits). */
  hubOptions?: Omit<HubOptions, 'domains' | 'store' | 'extensions' | 'clock' | 'onError'>;
}

export const REFERENCE_SERVER_DEFAULTS = {
  maxBodyBytes: 256 * 1024,
  rateLimit: { requestsPerSecond: 200, burst: 400 },
  eventStreams: { heartbeatMs: 15_000, highWaterBytes: 256 * 1024, retryMs: 1_000 },
} as const;

export interface ReferenceServer {
  /** `http://host:port`: the dashboard at `/`, the REST API under `/api`. */
  readonly url: string;
  /** `ws://host:port/lockstep`: lockstep/1 over WebSocket. */
  readonly wsUrl: string;
  readonly hub: Hub;
  /** The terminals the server runs (one per session of `tasks/<PROJECT_ID>`). */
  readonly terminals: TerminalManager;
  /** How the store is described in logs (a PostgreSQL password masked). */
  readonly storeDescription: string;
  readonly dashboard: DashboardAssets;
  /** The open Server-Sent Event streams (for tests and monitoring). */
  eventStreams(): ReadonlyArray<{ bufferedBytes: number }>;
  /** Stops everything: terminals (their exits recorded), clients told to reconnect elsewhere, sockets, the store. */
  close(): Promise<void>;
}

const DASHBOARD_SOURCE_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));

/**
 * `pnpm start`: one http.Server serving the dashboard (`/`), the REST + SSE API (`/api`) and
 * lockstep/1 over WebSocket (`/lockstep`), with a hub on the built-in domains, a durable store and a
 * shell terminal per session. See docs/reference-server.md.
 */
export async function startReferenceServer(options: ReferenceServerOptions = {}): Promise<ReferenceServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const report = (error: unknown, context: string) => log(`error ${context}: ${error instanceof Error ? error.message : String(error)}`);
  const clock = options.clock ?? systemClock;
  const host = options.host ?? DEFAULT_HOST;
  const store = await openStore(options.store, options.dataDir, log);

  const shell = options.shell ?? defaultShell();
  const terminalExtension = createTerminalExtension({
    hub: () => hub,
    policy: { executables: [shell.file], cwd: options.terminalCwd ?? process.cwd() },
    onError: (error, context) => {
      // A deleted session's terminal is killed; recording its exit in the (gone) session is refused.
      if (!isGoneSessionExit(error, context)) report(error, context);
    },
  });
  const hub = new Hub({ ...options.hubOptions, domains: builtInDomains, store: store.store, clock, extensions: [terminalExtension], onError: report });

  const dashboard = new DashboardAssets({ sourceDir: options.dashboard?.sourceDir ?? DASHBOARD_SOURCE_DIR, log });
  const streamOptions: EventStreamOptions = { ...REFERENCE_SERVER_DEFAULTS.eventStreams, ...options.eventStreams };
  const openStreams = new Set<EventStream>();
  const rateLimit = options.rateLimit ?? REFERENCE_SERVER_DEFAULTS.rateLimit;
  const api = createApiHandler(
    {
      hub,
      openEventStream(request, response) {
        const stream = new EventStream(request, response, streamOptions);
        openStreams.add(stream);
        stream.onClose(() => openStreams.delete(stream));
        return stream;
      },
    },
    {
      maxBodyBytes: options.maxBodyBytes ?? REFERENCE_SERVER_DEFAULTS.maxBodyBytes,
      rateLimiter: rateLimit === false ? undefined : new RateLimiter(rateLimit, clock),
      onError: report,
    },
  );

  const hosts = new HostCheck(host, options.allowedHosts ?? []);
  const http = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      report(error, `${request.method} ${request.url}`);
      if (!response.headersSent) sendJson(request, response, { status: 500, body: HttpError.from(error).toJSON() });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!hosts.allowsHost(request.headers.host)) {
      const refusal = HttpError.of(403, 'FORBIDDEN', `this server does not answer to host ${JSON.stringify(request.headers.host ?? '')}`);
      sendJson(request, response, { status: refusal.status, body: refusal.toJSON() });
      return;
    }
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    if (pathname === API_PREFIX || pathname.startsWith(`${API_PREFIX}/`)) return api(request, response);
    if (await dashboard.handle(request, response, pathname)) return;
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    response.end(`not found: ${pathname} (the dashboard is at /, the API at ${API_PREFIX}, WebSocket at ${WS_PATH})\n`);
  }

  const wsServer = createWebSocketServer(hub, { server: http, path: WS_PATH, allowedOrigins: (origin) => hosts.allowsOrigin(origin), onError: report });
  let sessionTerminals: SessionTerminals | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? DEFAULT_PORT, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    hosts.listening((http.address() as AddressInfo).port);
    if (options.terminals ?? true) {
      sessionTerminals = await SessionTerminals.start({ hub, terminals: terminalExtension.terminals, project: PROJECT_ID, shell, onError: report });
    }
  } catch (error) {
    await hub.close();
    await wsServer.close();
    http.close();
    await store.close();
    throw error;
  }
  if (options.dashboard?.buildAtStart) void dashboard.build();

  const { port } = http.address() as AddressInfo;
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${authority}`,
    wsUrl: `ws://${authority}${WS_PATH}`,
    hub,
    terminals: terminalExtension.terminals,
    storeDescription: store.description,
    dashboard,
    eventStreams: () => [...openStreams].map((stream) => ({ bufferedBytes: stream.bufferedBytes })),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        await sessionTerminals?.close();
        for (const stream of [...openStreams]) stream.close();
        // Terminals end first (the hub closes its extensions while it still records their exits),
        // then every client is told the hub is going away, then the sockets close.
        await hub.close();
        await wsServer.close();
        http.closeAllConnections();
        await stopped;
        await store.close();
      })();
      return closing;
    },
  };
}
