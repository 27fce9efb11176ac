import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defineDomain, orchestrationDomain, type Transport } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { Hub, type HubOptions } from '@lockstep/server';
import { serveStdio } from '@lockstep/stdio';
import { counterDomain } from '@lockstep/testkit';
import { createWebSocketServer, type LockstepWebSocketServer, type WebSocketServerOptions } from '@lockstep/ws/server';
import type WebSocket from 'ws';
import { expect, onTestFinished } from 'vitest';
import { z } from 'zod';
import { RawPeer } from '../wsPeer.js';
import { StdioPeer } from './stdioPeer.js';

/**
 * The world every attack runs in: one hub served over WebSocket (both codecs) and over stdio framing
 * on a Unix socket, two well-behaved clients (one per transport) that must keep being served
 * whatever the attacker does, and the streams the attacker goes after, whose state and version must
 * not change.
 */

export type TransportKind = 'ws-json' | 'ws-msgpack' | 'stdio';
export const TRANSPORT_KINDS: readonly TransportKind[] = ['ws-json', 'ws-msgpack', 'stdio'];

/** Events big enough to fill socket buffers quickly, and snapshots big enough to hurt. */
export const blobDomain = defineDomain({
  name: 'blob',
  initialState: () => ({ count: 0, text: '' }),
  commands: { put: z.object({ text: z.string().max(900_000) }) },
  events: { stored: z.object({ text: z.string() }) },
  decide: { put: ({ text }) => [{ type: 'stored', data: { text } }] },
  evolve: {
    stored: (draft, { text }) => {
      draft.count += 1;
      draft.text = text;
    },
  },
});

export const ATTACK_DOMAINS = [counterDomain, orchestrationDomain, blobDomain];
/** The streams attackers go after: none of them may change. */
export const TARGET_STREAMS = ['counter/x', 'counter/forbidden', 'orchestration/default', 'blob/big'];

/** A peer speaking lockstep/1 by hand over one of the transports. */
export interface Peer {
  readonly kind: TransportKind;
  /** Sends one transport frame as it is (a WebSocket message; over stdio, a Content-Length frame). */
  sendFrame(frame: string | Uint8Array): void;
  send(message: unknown): void;
  request(method: string, params?: unknown): number;
  next(): Promise<any>;
  response(id: number | string | null): Promise<{ response: any; before: any[] }>;
  call(method: string, params?: unknown): Promise<any>;
  readonly unread: number;
  /** Resolves when the connection is gone; `code` is the WebSocket close code. */
  readonly closed: Promise<{ code?: number; reason: string }>;
  terminate(): void;
}

export interface WsPeer extends Peer {
  readonly raw: RawPeer;
  readonly socket: WebSocket;
}

export interface StdioAttackPeer extends Peer {
  readonly raw: StdioPeer;
  /** Writes bytes outside any framing. */
  writeRaw(bytes: string | Uint8Array): void;
}

export interface WorldOptions {
  hub?: Partial<HubOptions>;
  ws?: Partial<WebSocketServerOptions>;
}

export interface World {
  readonly hub: Hub;
  readonly url: string;
  readonly wsServer: LockstepWebSocketServer;
  readonly stdioPath: string;
  /** Server ends of every accepted connection, in order. */
  readonly transports: Transport[];
  /** What reached the hub's onError: must stay empty (a bad message is answered, never a crash). */
  readonly errors: unknown[];
  connect(kind: 'stdio', options?: ConnectOptions): Promise<StdioAttackPeer>;
  connect(kind: 'ws-json' | 'ws-msgpack', options?: ConnectOptions): Promise<WsPeer>;
  connect(kind: TransportKind, options?: ConnectOptions): Promise<Peer>;
  /** The state and version of every target stream. */
  targets(): Promise<unknown[]>;
}

export interface ConnectOptions {
  /** Says hello with this client id (and token) before answering. */
  clientId?: string;
  token?: string;
  /** WebSocket upgrade options (headers, localAddress, …). */
  wsOptions?: WebSocket.ClientOptions;
}

/** Starts a world; everything is closed when the current test finishes. */
export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const errors: unknown[] = [];
  const hub = new Hub({
    domains: ATTACK_DOMAINS,
    authorize: (_identity, stream, action) => !(stream === 'counter/forbidden' && action === 'write'),
    onError: (error) => errors.push(error),
    ...options.hub,
  });
  const transports: Transport[] = [];
  const wsServer = createWebSocketServer(
    {
      accept: (transport, acceptOptions) => {
        transports.push(transport);
        hub.accept(transport, acceptOptions);
      },
    },
    { port: 0, ...options.ws },
  );
  const directory = mkdtempSync(join(tmpdir(), 'lockstep-attack-'));
  const stdioPath = join(directory, 'stdio.sock');
  const stdioServer: Server = createServer((socket) => {
    socket.on('error', () => {});
    const served = serveStdio(hub, { input: socket, output: socket, guardConsole: false });
    transports.push(served.transport);
  });
  await new Promise<void>((resolve) => stdioServer.listen(stdioPath, resolve));
  const peers: Peer[] = [];
  onTestFinished(async () => {
    for (const peer of peers) peer.terminate();
    await hub.close();
    await wsServer.close();
    await new Promise<void>((resolve) => stdioServer.close(() => resolve()));
    rmSync(directory, { recursive: true, force: true });
  });
  await wsServer.ready;
  const url = `ws://127.0.0.1:${wsServer.address().port}`;

  const connect = async (kind: TransportKind, connectOptions: ConnectOptions = {}): Promise<Peer> => {
    const peer = kind === 'stdio' ? stdioPeer(await StdioPeer.connect(stdioPath)) : wsPeer(kind, await connectWs(url, kind, connectOptions.wsOptions));
    peers.push(peer);
    if (connectOptions.clientId !== undefined || connectOptions.token !== undefined) {
      const params: Record<string, unknown> = { protocol: 1 };
      if (connectOptions.clientId !== undefined) params['clientId'] = connectOptions.clientId;
      if (connectOptions.token !== undefined) params['token'] = connectOptions.token;
      const hello = await peer.call('hello', params);
      expect(hello.result, JSON.stringify(hello)).toBeDefined();
    }
    return peer;
  };

  return {
    hub,
    url,
    wsServer,
    stdioPath,
    transports,
    errors,
    connect: connect as World['connect'],
    targets: () => Promise.all(TARGET_STREAMS.map((stream) => hub.read(stream))),
  };
}

export function connectWs(url: string, kind: 'ws-json' | 'ws-msgpack', options: WebSocket.ClientOptions = {}): Promise<RawPeer> {
  const subprotocol = kind === 'ws-json' ? 'lockstep.v1.json' : 'lockstep.v1.msgpack';
  return RawPeer.connect(url, [subprotocol], options, kind === 'ws-msgpack' ? msgpackCodec : undefined);
}

function wsPeer(kind: 'ws-json' | 'ws-msgpack', raw: RawPeer): WsPeer {
  return {
    kind,
    raw,
    socket: raw.socket,
    sendFrame: (frame) => raw.sendRaw(frame),
    send: (message) => raw.send(message),
    request: (method, params) => raw.request(method, params),
    next: () => raw.next(),
    response: (id) => raw.response(id),
    call: (method, params) => raw.call(method, params),
    get unread() {
      return raw.unread;
    },
    closed: raw.closed,
    terminate: () => raw.socket.terminate(),
  };
}

function stdioPeer(raw: StdioPeer): StdioAttackPeer {
  return {
    kind: 'stdio',
    raw,
    sendFrame: (frame) => raw.sendFrame(frame),
    writeRaw: (bytes) => raw.writeRaw(bytes),
    send: (message) => raw.send(message),
    request: (method, params) => raw.request(method, params),
    next: () => raw.next(),
    response: (id) => raw.response(id),
    call: (method, params) => raw.call(method, params),
    get unread() {
      return raw.unread;
    },
    closed: raw.closed,
    terminate: () => raw.terminate(),
  };
}

/**
 * Two well-behaved clients, one over WebSocket and one over stdio, each on a stream of its own.
 * `served()` has each round-trip a command: its events arrive before its ack, versions follow on.
 * `roundTrip()` times one command of the WebSocket one, for latency comparisons.
 */
export async function bystanders(world: World) {
  const clients = await Promise.all(
    (['ws-json', 'stdio'] as const).map(async (kind) => {
      const peer = await world.connect(kind, { clientId: `bystander-${kind}` });
      const stream = `counter/bystander-${kind}`;
      const subscribed = await peer.call('subscribe', { stream });
      return { peer, stream, prefix: `bystander-${kind}`, version: subscribed.result.version as number, commands: 0 };
    }),
  );
  const roundTrip = async (client: (typeof clients)[number]): Promise<number> => {
    const id = `${client.prefix}:${++client.commands}`;
    const start = performance.now();
    const { response, before } = await client.peer.response(client.peer.request('command', { id, stream: client.stream, type: 'add', payload: { by: 1 } }));
    const elapsed = performance.now() - start;
    expect(before).toEqual([
      { jsonrpc: '2.0', method: 'events', params: { stream: client.stream, events: [expect.objectContaining({ version: client.version + 1 })] } },
    ]);
    expect(response.result).toEqual({ id, stream: client.stream, version: client.version + 1 });
    client.version += 1;
    return elapsed;
  };
  return {
    async served(): Promise<void> {
      for (const client of clients) await roundTrip(client);
    },
    roundTrip: () => roundTrip(clients[0]!),
  };
}

const PROTOTYPE_BASELINE = Object.getOwnPropertyNames(Object.prototype).sort();

/** Object.prototype (and what a fresh object inherits) is exactly as it was when this module loaded. */
export function expectPrototypeClean(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_BASELINE);
  expect(Object.keys(Object.prototype)).toEqual([]);
  const fresh: Record<string, unknown> = {};
  for (const key of ['polluted', 'isAdmin', 'x']) expect(fresh[key]).toBeUndefined();
}

/** The standard closing checks of an attack: others served, targets unchanged, nothing crashed. */
export async function expectUnharmed(world: World, before: unknown[], others: { served(): Promise<void> }): Promise<void> {
  await others.served();
  expect(await world.targets()).toEqual(before);
  expectPrototypeClean();
  expect(world.errors).toEqual([]);
}

/** Reads until every id has its response; answers them in the order of `ids`. */
export async function collect(peer: Peer, ids: number[]): Promise<any[]> {
  const waiting = new Set(ids);
  const byId = new Map<number, any>();
  while (waiting.size > 0) {
    const message = await peer.next();
    if (typeof message.id === 'number' && waiting.delete(message.id)) byId.set(message.id, message);
  }
  return ids.map((id) => byId.get(id));
}
