import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtInDomains, systemClock, type Clock, type FailureLimit } from '@lockstep/core';
import { createTerminalExtension, type TerminalManager } from '@lockstep/pty';
import { Hub, announceToken, loadServerToken, runtimeDirectory, tokenAuthenticator, type HubOptions, type ServerToken } from '@lockstep/server';
import { HostCheck, createWebSocketServer } from '@lockstep/ws/server';
import { createApiHandler } from './api/apiHandler.js';
import { API_PREFIX, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, HEALTH_PATH, PROJECT_ID, WS_PATH } from './contract.js';
import { DashboardAssets, FAVICON_PATHS } from './dashboardAssets.js';
import { focusedSessionsMustExist } from './focusCheck.js';
import { Access, PAGE_CSP, setSecurityHeaders } from './http/access.js';
import { EventStream, type EventStreamOptions } from './http/eventStream.js';
import { HttpError } from './http/httpError.js';
import { RateLimiter, type RateLimit } from './http/rateLimiter.js';
import { sendJson } from './http/reply.js';
import { handleLogin, loginPathFor, loginUrl } from './login.js';
import { DEFAULT_STATUS_INTERVAL_MS } from './api/daemonRoutes.js';
import { daemonImplementation } from './daemonImplementation.js';
import { DaemonStatus } from './daemonStatus.js';
import { Profiles, type ProfileConfig } from './profiles.js';
import { sessionsRunByServer } from './sessionCheck.js';
import { SessionTerminals, type ShellCommand } from './sessionTerminals.js';
import { defaultShell } from './shell.js';
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
  /** The built-in `shell` profile's program. Default: `$SHELL`, else /bin/bash, else /bin/sh, without arguments. */
  shell?: ShellCommand;
  /** The terminals' working directory (of profiles that name none). Default: the server's working directory. */
  terminalCwd?: string;
  /**
   * What sessions may run, by profile name, besides the built-in `shell` (a profile named `shell`
   * replaces it): program, argv, working directory, environment allow-list, how it takes a prompt.
   * A client picks one with `profile` when it creates a session. Checked at start: a profile whose
   * program or directory does not exist fails the start. See docs/terminals.md, "Profiles".
   */
  profiles?: Readonly<Record<string, ProfileConfig>>;
  /** The profile of sessions that name none. Default `shell`. */
  defaultProfile?: string;
  /** How often a `GET /api/status` event stream gets the status when nothing else moved it. Default 5 s. */
  statusIntervalMs?: number;
  /** Where the dashboard's sources are (`main.tsx`, `styles.css`), and whether to build it at start. */
  dashboard?: { sourceDir?: string; buildAtStart?: boolean };
  /** Largest REST request body. Default 256 KiB. */
  maxBodyBytes?: number;
  /** REST requests per client address. Default 200 a second, bursts of 400; `false` turns it off. */
  rateLimit?: RateLimit | false;
  /** Server-Sent Events: heartbeat interval, the unsent bytes past which a stream pauses, the `retry:` hint. */
  eventStreams?: Partial<EventStreamOptions>;
  /**
   * Who may use the server (REST, Server-Sent Events, WebSocket, terminals). Default: whoever
   * presents the token — `token`, else `LOCKSTEP_TOKEN`, else the one in `tokenFile`, else one
   * generated into `<dataDir>/token` (mode 0600) and kept for the next start. With an `authenticate`
   * hook in `hubOptions`, that hook decides instead (it gets the presented token). `{ insecureNoAuth:
   * true }` serves everyone: refused unless `host` is a loopback address.
   */
  auth?: { token?: string; tokenFile?: string } | { insecureNoAuth: true };
  /** Refused tokens per client address before the address is refused outright. Default 10 a minute; `false` turns it off. */
  authFailureLimit?: FailureLimit | false;
  /**
   * Host names the HTTP and WebSocket endpoints answer to besides the listening interface's
   * (`name`, or `name:port` for a port mapped by Docker or a proxy). Pages on these hosts count as
   * this server's own.
   */
  allowedHosts?: readonly string[];
  /** Browser origins allowed besides the server's own pages (`https://tools.example.com`). */
  allowedOrigins?: readonly string[];
  /** Server-Sent Event streams open at once per client address. Default 32. */
  maxEventStreamsPerAddress?: number;
  /**
   * Where the token is left for local clients of the same user (`<dir>/servers/<port>.token`, 0600),
   * so `lockstep task …` finds it. Default: `runtimeDirectory()` (`$LOCKSTEP_RUNTIME_DIR`,
   * `$XDG_RUNTIME_DIR/lockstep` or `~/.lockstep/run`); `false` leaves it nowhere.
   */
  runtimeDir?: string | false;
  /** More hub options (lease grace, limits). */
  hubOptions?: Omit<HubOptions, 'domains' | 'store' | 'extensions' | 'clock' | 'onError'>;
}

export const REFERENCE_SERVER_DEFAULTS = {
  authFailureLimit: { failures: 10, windowMs: 60_000 },
  maxEventStreamsPerAddress: 32,
  maxBodyBytes: 256 * 1024,
  rateLimit: { requestsPerSecond: 200, burst: 400 },
  eventStreams: { heartbeatMs: 15_000, highWaterBytes: 256 * 1024, retryMs: 1_000 },
} as const;

export interface ReferenceServer {
  /** `http://host:port`: the dashboard at `/`, the REST API under `/api`. */
  readonly url: string;
  /** `ws://host:port/lockstep`: lockstep/1 over WebSocket. */
  readonly wsUrl: string;
  /** The token clients present; undefined when an `authenticate` hook decides, or with `insecureNoAuth`. */
  readonly token: string | undefined;
  /** Where the token came from (`environment`, `file`, `generated`, `option`) and the file that holds it. */
  readonly tokenSource: Pick<ServerToken, 'source' | 'file'> | undefined;
  /** `http://host:port/login#<token>`: opens the dashboard signed in. Undefined without a token. */
  readonly loginUrl: string | undefined;
  readonly hub: Hub;
  /** The terminals the server runs (one per session of `tasks/<PROJECT_ID>`). */
  readonly terminals: TerminalManager;
  /** The profiles sessions may run (undefined with `terminals: false`). */
  readonly profiles: Profiles | undefined;
  /** Uptime, programs, totals (`GET /api/status`), and the session terminals (`daemon.sessions`). */
  readonly daemon: DaemonStatus;
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
  const hosts = new HostCheck(host, { allowedHosts: options.allowedHosts ?? [], allowedOrigins: options.allowedOrigins ?? [] });
  const insecure = options.auth !== undefined && 'insecureNoAuth' in options.auth && options.auth.insecureNoAuth;
  if (insecure && !isLoopback(host)) {
    throw new Error(`refusing to serve ${host} without authentication: insecureNoAuth is for loopback addresses only`);
  }
  const customAuthenticate = options.hubOptions?.authenticate;
  const runsTerminals = options.terminals ?? true;
  const terminalCwd = options.terminalCwd ?? process.cwd();
  const shell = options.shell ?? (runsTerminals ? defaultShell() : undefined);
  // Checked before anything opens: a profile that cannot run fails the start, not a session later.
  const profiles = runsTerminals
    ? Profiles.create({
        shell: shell!,
        cwd: terminalCwd,
        ...(options.profiles !== undefined && { profiles: options.profiles }),
        ...(options.defaultProfile !== undefined && { defaultProfile: options.defaultProfile }),
      })
    : undefined;
  const tokenOptions = options.auth !== undefined && !('insecureNoAuth' in options.auth) ? options.auth : {};
  // The store first: it refuses a data directory that holds anything but a store (a new token file among it).
  const store = await openStore(options.store, options.dataDir, log);
  let serverToken: ServerToken | undefined;
  try {
    serverToken =
      insecure || customAuthenticate
        ? undefined
        : await loadServerToken({
            token: tokenOptions.token,
            tokenFile: tokenOptions.tokenFile,
            defaultFile: join(options.dataDir ?? DEFAULT_DATA_DIR, 'token'),
          });
  } catch (error) {
    await store.close();
    throw error;
  }
  const authenticate = insecure ? undefined : (customAuthenticate ?? tokenAuthenticator(serverToken!.token));

  let sessionTerminals: SessionTerminals | undefined;
  const terminalExtension = createTerminalExtension({
    hub: () => hub,
    // Only the profiles' programs, with the environment each profile allows (`Profiles.launch`).
    policy: { executables: profiles?.executables ?? [], cwd: terminalCwd, inheritEnv: [], env: {} },
    // SessionTerminals records the sessions' lifecycle (profiles, signals, nothing at shutdown).
    recordSessions: false,
    onError: report,
  });
  const hub = new Hub({
    ...options.hubOptions,
    ...(authenticate && { authenticate }),
    domains: builtInDomains,
    store: store.store,
    clock,
    services: [terminalExtension],
    onError: report,
    checkCommand: focusedSessionsMustExist(
      (): Hub => hub,
      profiles
        ? sessionsRunByServer({ project: PROJECT_ID, profiles, issued: (id) => sessionTerminals?.issued(id) ?? false, then: options.hubOptions?.checkCommand })
        : options.hubOptions?.checkCommand,
    ),
  });
  const access = new Access({
    hosts,
    authenticate: authenticate && ((token, info) => hub.authenticate(token, undefined, info)),
    failureLimit: options.authFailureLimit ?? REFERENCE_SERVER_DEFAULTS.authFailureLimit,
    cookieName: () => `lockstep-token-${(http.address() as AddressInfo | null)?.port ?? 0}`,
    clock,
  });

  const dashboard = new DashboardAssets({ sourceDir: options.dashboard?.sourceDir ?? DASHBOARD_SOURCE_DIR, log });
  const streamOptions: EventStreamOptions = { ...REFERENCE_SERVER_DEFAULTS.eventStreams, ...options.eventStreams };
  const openStreams = new Set<EventStream>();
  const streamsPerAddress = new Map<string, number>();
  const maxStreamsPerAddress = options.maxEventStreamsPerAddress ?? REFERENCE_SERVER_DEFAULTS.maxEventStreamsPerAddress;
  const rateLimit = options.rateLimit ?? REFERENCE_SERVER_DEFAULTS.rateLimit;
  const daemon = new DaemonStatus({ hub, project: PROJECT_ID, terminals: terminalExtension.terminals, profiles, sessions: () => sessionTerminals });
  // Seed 003's requests as typed methods (`daemon.*`) on the WebSocket, beside REST: the hub's
  // authentication, `authorize` hook (as `call`), rate limits and reconnects apply as to any method.
  const daemonMethods = daemonImplementation({ hub, daemon, terminals: terminalExtension.terminals, onError: report });
  hub.serve(daemonMethods.service, daemonMethods.handlers, daemonMethods.options);
  const api = createApiHandler(
    {
      hub,
      daemon,
      statusIntervalMs: options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS,
      openEventStream(request, response) {
        const address = request.socket.remoteAddress ?? 'unknown';
        const open = streamsPerAddress.get(address) ?? 0;
        if (open >= maxStreamsPerAddress) {
          throw HttpError.of(
            429,
            'RATE_LIMITED',
            `too many event streams from this address (at most ${maxStreamsPerAddress}); close one first`,
            {
              maxEventStreamsPerAddress: maxStreamsPerAddress,
              retryAfterMs: 1_000,
            },
            { 'Retry-After': '1' },
          );
        }
        const stream = new EventStream(request, response, streamOptions);
        streamsPerAddress.set(address, open + 1);
        openStreams.add(stream);
        stream.onClose(() => {
          openStreams.delete(stream);
          const left = (streamsPerAddress.get(address) ?? 1) - 1;
          if (left > 0) streamsPerAddress.set(address, left);
          else streamsPerAddress.delete(address);
        });
        return stream;
      },
    },
    {
      maxBodyBytes: options.maxBodyBytes ?? REFERENCE_SERVER_DEFAULTS.maxBodyBytes,
      rateLimiter: rateLimit === false ? undefined : new RateLimiter(rateLimit, clock),
      onError: report,
    },
  );

  const http = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      report(error, `${request.method} ${request.url}`);
      if (!response.headersSent) sendJson(request, response, { status: 500, body: HttpError.from(error).toJSON() });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    setSecurityHeaders(response);
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    const isApi = pathname === API_PREFIX || pathname.startsWith(`${API_PREFIX}/`);
    let identity;
    try {
      access.checkSite(request);
      if (pathname === HEALTH_PATH) {
        // Public: it says the process answers, and nothing else (see docs/reference-server.md).
        if (request.method !== 'GET' && request.method !== 'HEAD') {
          throw HttpError.of(405, 'METHOD_NOT_FOUND', `${HEALTH_PATH} answers GET and HEAD`, { allowed: ['GET', 'HEAD'] }, { Allow: 'GET, HEAD' });
        }
        sendJson(
          request,
          response,
          daemon.closing ? { status: 503, body: { status: 'closing' }, headers: { 'Retry-After': '1' } } : { status: 200, body: { status: 'ok' } },
        );
        request.resume();
        return;
      }
      if (await handleLogin(request, response, pathname, access)) return;
      // The icon is public: the login page shows it too, and it tells nothing.
      if (FAVICON_PATHS.has(pathname) && (await dashboard.handle(request, response, pathname))) return;
      ({ identity } = await access.check(request));
    } catch (error) {
      const refusal = HttpError.from(error);
      // A person opening the dashboard without the cookie is shown the login page, which comes back here.
      if (!isApi && refusal.status === 401 && request.method === 'GET' && request.headers.authorization === undefined) {
        response.writeHead(303, { Location: loginPathFor(request.url ?? '/'), 'Cache-Control': 'no-store' });
        response.end();
        return;
      }
      sendJson(request, response, { status: refusal.status, body: refusal.toJSON(), headers: { ...refusal.headers } });
      request.resume();
      return;
    }
    if (isApi) return api(request, response, identity);
    // The dashboard's page loads its script and styles from here and opens its socket here.
    response.setHeader('Content-Security-Policy', PAGE_CSP);
    if (await dashboard.handle(request, response, pathname)) return;
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    response.end(`not found: ${pathname} (the dashboard is at /, the API at ${API_PREFIX}, WebSocket at ${WS_PATH})\n`);
  }

  const wsServer = createWebSocketServer(hub, {
    server: http,
    path: WS_PATH,
    allowedHosts: (hostHeader) => hosts.allowsHost(hostHeader),
    allowedOrigins: (origin) => hosts.allowsOrigin(origin),
    // The bearer header or subprotocol entry, else the dashboard's login cookie.
    ...(authenticate && {
      authenticate: (upgrade) =>
        hub
          .authenticate(upgrade.token ?? access.cookieToken(upgrade.headers.cookie), undefined, { transport: 'ws', remoteAddress: upgrade.remoteAddress })
          .catch(() => undefined),
    }),
    ...(options.authFailureLimit !== undefined && { authFailureLimit: options.authFailureLimit }),
    onError: report,
  });
  let withdrawToken: (() => Promise<void>) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? DEFAULT_PORT, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    hosts.listening((http.address() as AddressInfo).port);
    const runtimeDir = options.runtimeDir ?? runtimeDirectory();
    if (serverToken && runtimeDir !== false) withdrawToken = await announceToken((http.address() as AddressInfo).port, serverToken.token, runtimeDir);
    if (profiles) {
      sessionTerminals = await SessionTerminals.start({ hub, terminals: terminalExtension.terminals, project: PROJECT_ID, profiles, onError: report });
    }
  } catch (error) {
    await withdrawToken?.();
    await hub.close();
    await wsServer.close();
    http.close();
    await store.close();
    throw error;
  }
  if (options.dashboard?.buildAtStart) void dashboard.build();

  const { port } = http.address() as AddressInfo;
  // On every interface, the URLs name loopback: 0.0.0.0 is no host a browser may send.
  const shownHost = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const authority = `${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  let closing: Promise<void> | undefined;
  const url = `http://${authority}`;
  return {
    url,
    wsUrl: `ws://${authority}${WS_PATH}`,
    token: serverToken?.token,
    tokenSource: serverToken && { source: serverToken.source, ...(serverToken.file !== undefined && { file: serverToken.file }) },
    loginUrl: serverToken && loginUrl(url, serverToken.token),
    hub,
    terminals: terminalExtension.terminals,
    profiles,
    daemon,
    storeDescription: store.description,
    dashboard,
    eventStreams: () => [...openStreams].map((stream) => ({ bufferedBytes: stream.bufferedBytes })),
    close() {
      closing ??= (async () => {
        daemon.markClosing();
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        await sessionTerminals?.close();
        for (const stream of [...openStreams]) stream.close();
        // Terminals end first (the hub closes its extensions while it still records their exits),
        // then every client is told the hub is going away, then the sockets close.
        await hub.close();
        await wsServer.close();
        http.closeAllConnections();
        await stopped;
        await withdrawToken?.();
        await store.close();
      })();
      return closing;
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
