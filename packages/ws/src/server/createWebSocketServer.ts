import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { FailureWindow, createJsonCodec, type Codec, type FailureLimit, type Transport } from '@lockstep/core';
import { createMsgpackCodec } from '@lockstep/core/msgpack';
import type { Identity } from '@lockstep/server';
import { WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import type WebSocket from 'ws';
import { CloseCodes } from '../closeReason.js';
import { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, SUBPROTOCOLS, type Subprotocol } from '../subprotocols.js';
import { ServerSocketTransport } from './serverSocketTransport.js';
import {
  UpgradeRefusal,
  bearerToken,
  checkOrigin,
  chooseSubprotocol,
  offeredSubprotocols,
  refuseUpgrade,
  type AllowedOrigins,
  type UpgradeRequest,
} from './upgrade.js';

/** What serves the accepted transports: a `Hub`, or anything with the same `accept`. */
export interface TransportAcceptor {
  accept(transport: Transport, options: { codec: Codec; identity?: Identity }): void;
}

export interface WebSocketServerCommonOptions {
  /**
   * Browser origins allowed to connect; others are refused with HTTP 403 at the upgrade. A request
   * without an Origin header (Node, Python, Rust clients) is always allowed. Default: every origin —
   * set this for a server that browsers reach.
   */
  allowedOrigins?: AllowedOrigins;
  /**
   * `Host` headers answered; an upgrade with another (or none) is refused with HTTP 403 before a
   * socket exists — the defence against DNS rebinding, where a page on an attacker's name that
   * resolves to this machine reaches a local server. {@link HostCheck} builds one from the
   * listening interface. Default: every host.
   */
  allowedHosts?: (host: string | undefined) => boolean;
  /** Largest message accepted, in bytes; a bigger one closes the socket with 1009. Default 1 MiB. */
  maxPayload?: number;
  /** permessage-deflate. Default off: it costs CPU and memory per connection, and lockstep frames are small. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Interval of WebSocket-level pings. A peer that has not answered the last two is terminated
   * (dead-peer detection). 0 turns it off. Default 30 s.
   */
  heartbeatMs?: number;
  /**
   * Runs at the upgrade, before the socket exists. Answer the identity, or undefined (or throw) to
   * refuse with HTTP 401. The identity is handed to the hub with the connection (`accept(…, { identity })`).
   */
  authenticate?: (request: UpgradeRequest) => Identity | undefined | Promise<Identity | undefined>;
  /**
   * Token guessing: once `authenticate` has refused `failures` upgrades from one remote address
   * within `windowMs`, further upgrades from it are refused with HTTP 429 and `Retry-After`, without
   * calling `authenticate`, until the window ends. `false` turns it off. Default 10 refusals a minute.
   */
  authFailureLimit?: FailureLimit | false;
  /**
   * WebSocket connections (and upgrades in progress) allowed at once from one remote address; more
   * are refused with HTTP 429. Behind a reverse proxy every client has the proxy's address: raise it
   * (or `Infinity`) and limit at the proxy. Default 256.
   */
  maxConnectionsPerAddress?: number;
  /** The subprotocols (codecs) accepted. Default both, `lockstep.v1.json` preferred. */
  subprotocols?: readonly Subprotocol[];
  /** How long `close()` waits for sockets to finish their closing handshake before dropping them. Default 2 s. */
  closeTimeoutMs?: number;
  /** Errors of the HTTP server and of upgrades (a throwing acceptor). Default: console.error. */
  onError?: (error: unknown, context: string) => void;
}

/** Listen on a port of its own (default host 127.0.0.1; port 0 picks a free one). */
export interface StandaloneOptions extends WebSocketServerCommonOptions {
  port: number;
  host?: string | undefined;
}
/** Attach to an existing HTTP(S) server; with `path`, only upgrades of that path are taken. */
export interface AttachedOptions extends WebSocketServerCommonOptions {
  server: HttpServer | HttpsServer;
  path?: string | undefined;
}
/** The application owns the server and calls `handleUpgrade` for the requests it routes here. */
export interface NoServerOptions extends WebSocketServerCommonOptions {
  noServer: true;
}
export type WebSocketServerOptions = StandaloneOptions | AttachedOptions | NoServerOptions;

export const WS_SERVER_DEFAULTS = {
  host: '127.0.0.1',
  maxPayload: 1024 * 1024,
  heartbeatMs: 30_000,
  closeTimeoutMs: 2_000,
  authFailureLimit: { failures: 10, windowMs: 60_000 },
  maxConnectionsPerAddress: 256,
} as const;

export interface LockstepWebSocketServer {
  /** Resolves once the server listens (at once when attached or noServer); rejects if it cannot. */
  readonly ready: Promise<void>;
  /** Where the server listens. Throws for `noServer` and before `ready`. */
  address(): { port: number; host: string };
  /** Takes over an HTTP upgrade request: checks it, then serves lockstep/1 over the socket. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** WebSocket connections not yet fully closed. */
  readonly connectionCount: number;
  /**
   * Stops accepting, closes every socket still open with 1001 (going away) and waits for them (at
   * most `closeTimeoutMs`, then drops them). Close the hub first (`await hub.close()`), so that its
   * clients are told it is shutting down; the hub is not closed here.
   */
  close(): Promise<void>;
}

/**
 * Serves lockstep/1 over WebSocket: checks each upgrade (origin, subprotocol, token), then hands the
 * socket to `hub.accept` as a Transport with the codec of the negotiated subprotocol.
 */
export function createWebSocketServer(hub: TransportAcceptor, options: WebSocketServerOptions): LockstepWebSocketServer {
  return new WebSocketServerAdapter(hub, options);
}

class WebSocketServerAdapter implements LockstepWebSocketServer {
  readonly ready: Promise<void>;
  readonly #hub: TransportAcceptor;
  readonly #options: WebSocketServerOptions;
  readonly #wss: WebSocketServer;
  readonly #codecs: Readonly<Record<Subprotocol, Codec>>;
  readonly #accepted: readonly Subprotocol[];
  readonly #transports = new Set<ServerSocketTransport>();
  /** The subprotocol chosen for each request being upgraded (ws asks for it in handleProtocols). */
  readonly #chosen = new WeakMap<IncomingMessage, Subprotocol>();
  readonly #httpServer: HttpServer | HttpsServer | undefined;
  readonly #ownsServer: boolean;
  readonly #path: string | undefined;
  readonly #heartbeat: NodeJS.Timeout | undefined;
  readonly #authFailures: FailureWindow | undefined;
  readonly #maxPerAddress: number;
  /** Open sockets and upgrades in progress, per remote address. */
  readonly #perAddress = new Map<string, number>();
  #closing: Promise<void> | undefined;
  readonly #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#routeUpgrade(request, socket, head);

  constructor(hub: TransportAcceptor, options: WebSocketServerOptions) {
    this.#hub = hub;
    this.#options = options;
    const maxPayload = options.maxPayload ?? WS_SERVER_DEFAULTS.maxPayload;
    if (!Number.isSafeInteger(maxPayload) || maxPayload < 1) throw new RangeError(`invalid maxPayload: ${maxPayload}`);
    this.#maxPerAddress = options.maxConnectionsPerAddress ?? WS_SERVER_DEFAULTS.maxConnectionsPerAddress;
    if (!(this.#maxPerAddress >= 1)) throw new RangeError(`invalid maxConnectionsPerAddress: ${this.#maxPerAddress}`);
    const authFailureLimit = options.authFailureLimit ?? WS_SERVER_DEFAULTS.authFailureLimit;
    this.#authFailures = authFailureLimit ? new FailureWindow({ now: () => Date.now() }, authFailureLimit) : undefined;
    this.#accepted = options.subprotocols ?? SUBPROTOCOLS;
    if (this.#accepted.length === 0) throw new RangeError('subprotocols must not be empty');
    // The codecs' limit matches the socket's, so a frame ws let through is never refused as too large.
    this.#codecs = {
      [JSON_SUBPROTOCOL]: createJsonCodec({ maxFrameBytes: maxPayload }),
      [MSGPACK_SUBPROTOCOL]: createMsgpackCodec({ maxFrameBytes: maxPayload }),
    };
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload,
      perMessageDeflate: options.perMessageDeflate ?? false,
      handleProtocols: (_protocols, request) => this.#chosen.get(request) ?? false,
    });

    if ('noServer' in options) {
      this.#ownsServer = false;
      this.ready = Promise.resolve();
    } else if ('server' in options) {
      this.#httpServer = options.server;
      this.#ownsServer = false;
      this.#path = options.path;
      options.server.on('upgrade', this.#onUpgrade);
      this.ready = Promise.resolve();
    } else {
      const server = createServer((_request, response) => {
        const body = `lockstep/1 over WebSocket: connect with the subprotocol ${this.#accepted.join(' or ')}\n`;
        response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'Upgrade' });
        response.end(body);
      });
      this.#httpServer = server;
      this.#ownsServer = true;
      server.on('upgrade', this.#onUpgrade);
      this.ready = new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        server.once('error', onError);
        server.listen(options.port, options.host ?? WS_SERVER_DEFAULTS.host, () => {
          server.off('error', onError);
          server.on('error', (error) => this.#report(error, 'the HTTP server'));
          resolve();
        });
      });
      // Awaiting `ready` is optional: a failure to listen must not become an unhandled rejection.
      this.ready.catch(() => {});
    }

    const heartbeatMs = options.heartbeatMs ?? WS_SERVER_DEFAULTS.heartbeatMs;
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  get connectionCount(): number {
    return this.#transports.size;
  }

  address(): { port: number; host: string } {
    const address = this.#httpServer?.address();
    if (address === undefined) throw new Error('a noServer WebSocket server has no address: the application owns the server');
    if (address === null || typeof address === 'string') throw new Error('the server is not listening on a TCP port');
    return { port: address.port, host: address.address };
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.#upgrade(request, socket, head);
  }

  #routeUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#path !== undefined && pathname(request) !== this.#path) {
      // Another 'upgrade' listener may serve that path; if there is none, nobody will answer it.
      if (this.#httpServer!.listenerCount('upgrade') <= 1) refuseUpgrade(socket, new UpgradeRefusal(404, `no WebSocket endpoint at ${pathname(request)}`));
      return;
    }
    this.handleUpgrade(request, socket, head);
  }

  async #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Until ws owns the socket, a reset by the peer must not become an uncaught 'error'.
    const ignore = () => {};
    socket.on('error', ignore);
    const address = request.socket.remoteAddress ?? '';
    if (!this.#admit(address, socket)) {
      socket.off('error', ignore);
      refuseUpgrade(socket, new UpgradeRefusal(429, `too many connections from ${address} (at most ${this.#maxPerAddress})`));
      return;
    }
    let subprotocol: Subprotocol;
    let origin: string | undefined;
    let identity: Identity | undefined;
    try {
      if (this.#closing) throw new UpgradeRefusal(503, 'the server is shutting down');
      const { allowedHosts } = this.#options;
      if (allowedHosts && !safeHostCheck(allowedHosts, request.headers.host)) {
        throw new UpgradeRefusal(403, `this server does not answer to host ${JSON.stringify(request.headers.host ?? '')}`);
      }
      origin = checkOrigin(request, this.#options.allowedOrigins);
      const offered = offeredSubprotocols(request);
      subprotocol = chooseSubprotocol(offered, this.#accepted);
      const token = bearerToken(request, offered);
      identity = await this.#authenticate(request, token, address);
      if (this.#closing) throw new UpgradeRefusal(503, 'the server is shutting down');
    } catch (error) {
      socket.off('error', ignore);
      if (error instanceof UpgradeRefusal) refuseUpgrade(socket, error);
      else {
        this.#report(error, 'checking an upgrade request');
        socket.destroy();
      }
      return;
    }
    if (socket.destroyed) return;
    this.#chosen.set(request, subprotocol);
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', ignore);
      this.#serve(ws, request, subprotocol, origin, identity);
    });
  }

  /**
   * Counts a socket against its remote address until the socket is gone, whatever becomes of the
   * upgrade; false when the address is at its limit. A method of its own so that the 'close'
   * listener, which lives as long as the connection, holds the address and nothing else: a closure
   * made inside `#upgrade` would share its scope and keep the whole upgrade request alive (headers,
   * raw headers, URL: about 1 KB a connection).
   */
  #admit(address: string, socket: Duplex): boolean {
    const open = this.#perAddress.get(address) ?? 0;
    if (open >= this.#maxPerAddress && !this.#closing) return false;
    this.#perAddress.set(address, open + 1);
    // `on`, not `once`: 'close' comes once anyway, and a `once` wrapper costs about 150 bytes a connection.
    socket.on('close', () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
    });
    return true;
  }

  async #authenticate(request: IncomingMessage, token: string | undefined, address: string): Promise<Identity | undefined> {
    const hook = this.#options.authenticate;
    if (!hook) return undefined;
    const retryAfterMs = this.#authFailures?.retryAfterMs(address) ?? 0;
    if (retryAfterMs > 0) {
      throw new UpgradeRefusal(429, `too many refused tokens from ${address}; retry later`, { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) });
    }
    const upgrade: UpgradeRequest = { headers: request.headers, remoteAddress: request.socket.remoteAddress, url: request.url ?? '/' };
    if (token !== undefined) upgrade.token = token;
    let identity: Identity | undefined;
    try {
      identity = await hook(upgrade);
    } catch {
      identity = undefined;
    }
    if (!identity) {
      this.#authFailures?.fail(address);
      throw new UpgradeRefusal(401, 'authentication failed', { 'WWW-Authenticate': 'Bearer' });
    }
    return identity;
  }

  #serve(ws: WebSocket, request: IncomingMessage, subprotocol: Subprotocol, origin: string | undefined, identity: Identity | undefined): void {
    const info: Record<string, unknown> = { transport: 'ws', remoteAddress: request.socket.remoteAddress, subprotocol };
    if (origin !== undefined) info['origin'] = origin;
    const transport = new ServerSocketTransport(ws, info, request.socket);
    if (this.#closing) {
      transport.closeWith(CloseCodes.goingAway, 'going away');
      return;
    }
    // Tracked until the socket itself is gone (not merely closing), so close() can wait for it.
    this.#transports.add(transport);
    ws.on('close', () => this.#transports.delete(transport));
    try {
      this.#hub.accept(transport, identity === undefined ? { codec: this.#codecs[subprotocol] } : { codec: this.#codecs[subprotocol], identity });
    } catch (error) {
      this.#report(error, 'accepting a connection');
      transport.closeWith(1011, 'internal error');
    }
  }

  #beat(): void {
    for (const transport of this.#transports) {
      if (transport.missedPongs >= 2) {
        transport.terminate('no answer to the last two heartbeat pings');
        continue;
      }
      transport.missedPongs++;
      transport.socket.ping();
    }
  }

  #report(error: unknown, context: string): void {
    const handler = this.#options.onError ?? ((e, c) => console.error(`[lockstep ws] ${c}:`, e));
    handler(error, context);
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    const server = this.#httpServer;
    server?.off('upgrade', this.#onUpgrade);
    const stopped = this.#ownsServer && server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();

    // Sockets the hub has closed already may still be in their closing handshake: wait for them too.
    const open = [...this.#transports];
    const allClosed = Promise.all(open.map((transport) => new Promise<void>((resolve) => transport.socket.once('close', () => resolve()))));
    for (const transport of open) transport.closeWith(CloseCodes.goingAway, 'going away');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#options.closeTimeoutMs ?? WS_SERVER_DEFAULTS.closeTimeoutMs);
    });
    if ((await Promise.race([allClosed, timeout])) === 'timeout') {
      for (const transport of open) transport.socket.terminate();
      await allClosed;
    }
    clearTimeout(timer);
    this.#wss.close();
    if (this.#ownsServer) (server as HttpServer | undefined)?.closeAllConnections();
    await stopped;
  }
}

function safeHostCheck(allowed: (host: string | undefined) => boolean, host: string | undefined): boolean {
  try {
    return allowed(host) === true;
  } catch {
    return false;
  }
}

function pathname(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
