import { ErrorCodes, defineDomain, orchestrationDomain, type Clock, type Transport } from '@lockstep/core';
import { Hub, type HubOptions } from '@lockstep/server';
import { createWebSocketServer, type LockstepWebSocketServer, type WebSocketServerOptions } from '@lockstep/ws/server';
import { counterDomain } from '@lockstep/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { RawPeer } from './wsPeer.js';

/**
 * Untrusted input over real WebSockets: each bad message is answered with its documented error (or
 * the socket is refused or closed as documented), while another client on the same hub keeps being
 * served and no stream changes.
 */

const counter = counterDomain;

/** Events big enough to fill socket buffers quickly (the slow-consumer case). */
const blob = defineDomain({
  name: 'blob',
  initialState: () => ({ count: 0 }),
  commands: { put: z.object({ text: z.string().max(200_000) }) },
  events: { stored: z.object({ text: z.string() }) },
  decide: { put: ({ text }) => [{ type: 'stored', data: { text } }] },
  evolve: {
    stored: (draft) => {
      draft.count += 1;
    },
  },
});

const STREAMS = ['counter/x', 'counter/forbidden', 'orchestration/default'];

interface World {
  hub: Hub;
  url: string;
  wsServer: LockstepWebSocketServer;
  /** The server ends of the connections, in the order they were accepted. */
  transports: Transport[];
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function world(hubOptions: Partial<HubOptions> = {}, wsOptions: Partial<WebSocketServerOptions> = {}): Promise<World> {
  const errors: unknown[] = [];
  const hub = new Hub({
    domains: [counter, orchestrationDomain, blob],
    authorize: (_identity, stream, action) => !(stream === 'counter/forbidden' && action === 'write'),
    onError: (error) => errors.push(error),
    ...hubOptions,
  });
  const transports: Transport[] = [];
  const wsServer = createWebSocketServer(
    {
      accept: (transport, options) => {
        transports.push(transport);
        hub.accept(transport, options);
      },
    },
    { port: 0, ...wsOptions },
  );
  cleanups.push(async () => {
    await hub.close();
    await wsServer.close();
    // A bad message must be answered, never reach the hub's error handler as a crash.
    expect(errors).toEqual([]);
  });
  await wsServer.ready;
  return { hub, wsServer, transports, url: `ws://127.0.0.1:${wsServer.address().port}` };
}

async function peer(url: string, protocols?: string[], clientId?: string): Promise<RawPeer> {
  const msgpack = protocols?.[0] === 'lockstep.v1.msgpack';
  const connected = await RawPeer.connect(url, protocols, {}, msgpack ? msgpackCodec : undefined);
  cleanups.push(() => void connected.socket.terminate());
  if (clientId !== undefined) {
    const hello = await connected.call('hello', { protocol: 1, clientId });
    expect(hello.result).toBeDefined();
  }
  return connected;
}

/** A well-behaved client subscribed to counter/x: it must keep being served whatever others send. */
async function bystander(url: string) {
  const client = await peer(url, undefined, 'bystander');
  const subscribed = await client.call('subscribe', { stream: 'counter/x' });
  let version: number = subscribed.result.version;
  let commands = 0;
  return {
    client,
    /** One command; checks its events arrive before its ack and the versions follow on. */
    async served(): Promise<void> {
      const { response, before } = await client.response(
        client.request('command', { id: `bystander:${++commands}`, stream: 'counter/x', type: 'add', payload: { by: 1 } }),
      );
      expect(before).toEqual([
        { jsonrpc: '2.0', method: 'events', params: { stream: 'counter/x', events: [expect.objectContaining({ version: version + 1 })] } },
      ]);
      expect(response.result).toEqual({ id: `bystander:${commands}`, stream: 'counter/x', version: version + 1 });
      version += 1;
    },
  };
}

async function readAll(hub: Hub): Promise<unknown[]> {
  return Promise.all(STREAMS.map((stream) => hub.read(stream)));
}

type Send = (attacker: RawPeer) => void;
const text =
  (frame: string): Send =>
  (attacker) =>
    attacker.sendRaw(frame);
const request = (method: string, params: unknown, id = 'bad'): Send => text(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
const command = (fields: Record<string, unknown>): Send =>
  request('command', { id: 'cmd-bad', stream: 'counter/x', type: 'add', payload: { by: 1 }, ...fields });

/** [case, subprotocol, what is sent, expected JSON-RPC error code, expected response id] */
const badMessages: Array<[string, 'json' | 'msgpack', Send, number, string | number | null]> = [
  ['non-JSON text', 'json', text('this is { not json'), ErrorCodes.PARSE_ERROR, null],
  ['binary garbage on a JSON connection', 'json', (a) => a.sendRaw(Uint8Array.of(0xff, 0xfe, 0x00, 0x80, 0xc3)), ErrorCodes.PARSE_ERROR, null],
  ['valid UTF-8 bytes that are not JSON on a JSON connection', 'json', (a) => a.sendRaw(new TextEncoder().encode('{"jsonrpc":')), ErrorCodes.PARSE_ERROR, null],
  ['a text frame on a msgpack connection', 'msgpack', text('{"jsonrpc":"2.0","id":1,"method":"ping"}'), ErrorCodes.PARSE_ERROR, null],
  ['binary garbage on a msgpack connection', 'msgpack', (a) => a.sendRaw(Uint8Array.of(0xc1, 0xff, 0x00)), ErrorCodes.PARSE_ERROR, null],
  ['JSON-RPC 1.0', 'json', text('{"jsonrpc":"1.0","id":7,"method":"ping","params":{}}'), ErrorCodes.INVALID_REQUEST, 7],
  ['a batch', 'json', text('[{"jsonrpc":"2.0","id":1,"method":"ping"}]'), ErrorCodes.INVALID_REQUEST, null],
  ['a bare string', 'json', text('"hello"'), ErrorCodes.INVALID_REQUEST, null],
  ['null', 'json', text('null'), ErrorCodes.INVALID_REQUEST, null],
  ['an id that is an object', 'json', text('{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}'), ErrorCodes.INVALID_REQUEST, null],
  ['a method that is a number', 'json', text('{"jsonrpc":"2.0","id":"m","method":42}'), ErrorCodes.INVALID_REQUEST, 'm'],
  ['an unknown method', 'json', request('frobnicate', {}), ErrorCodes.METHOD_NOT_FOUND, 'bad'],
  ['a method named __proto__', 'json', request('__proto__', {}), ErrorCodes.METHOD_NOT_FOUND, 'bad'],
  ['subscribe to a malformed stream name', 'json', request('subscribe', { stream: '../../etc/passwd' }), ErrorCodes.INVALID_PARAMS, 'bad'],
  ['a command without an id', 'json', request('command', { stream: 'counter/x', type: 'add', payload: { by: 1 } }), ErrorCodes.INVALID_PARAMS, 'bad'],
  ['a payload failing the domain schema', 'json', command({ payload: { by: 'lots' } }), ErrorCodes.INVALID_PARAMS, 'bad'],
  ['an unknown command type', 'json', command({ type: 'multiply' }), ErrorCodes.INVALID_PARAMS, 'bad'],
  ['a command on a forbidden stream', 'json', command({ stream: 'counter/forbidden' }), ErrorCodes.FORBIDDEN, 'bad'],
  ['a command on a stream of an unknown domain', 'json', command({ stream: 'nope/x' }), ErrorCodes.UNKNOWN_STREAM, 'bad'],
  [
    'params hidden under a __proto__ key',
    'json',
    text('{"jsonrpc":"2.0","id":"p","method":"subscribe","params":{"__proto__":{"stream":"counter/x"}}}'),
    ErrorCodes.INVALID_PARAMS,
    'p',
  ],
  ['a message hidden under a __proto__ key', 'json', text('{"__proto__":{"jsonrpc":"2.0","id":"q","method":"ping"}}'), ErrorCodes.INVALID_REQUEST, null],
  [
    'a __proto__ entity id',
    'json',
    request('command', { id: 'proto-1', stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId: '__proto__', desired: 3 } }),
    ErrorCodes.INVALID_PARAMS,
    'bad',
  ],
  [
    'a __proto__ key in msgpack',
    'msgpack',
    (a) => a.sendRaw(msgpackCodec.encode({ jsonrpc: '2.0', id: 'r', method: 'ping', params: JSON.parse('{"__proto__":{"x":1}}') })),
    ErrorCodes.PARSE_ERROR,
    null,
  ],
  ...(['-1', '1.5', '1152921504606846976'] as const).flatMap((version): typeof badMessages => [
    [
      `subscribe since ${version}`,
      'json',
      text(`{"jsonrpc":"2.0","id":"s","method":"subscribe","params":{"stream":"counter/x","since":${version}}}`),
      ErrorCodes.INVALID_PARAMS,
      's',
    ],
    [
      `expectedVersion ${version}`,
      'json',
      text(
        `{"jsonrpc":"2.0","id":"e","method":"command","params":{"id":"ev-1","stream":"counter/x","type":"add","payload":{"by":1},"expectedVersion":${version}}}`,
      ),
      ErrorCodes.INVALID_PARAMS,
      'e',
    ],
  ]),
];

describe('bad input over WebSocket', () => {
  it.each(badMessages)('%s: answered with its error, others served, nothing changed', async (_name, codec, send, code, id) => {
    const { hub, url } = await world();
    const watcher = await bystander(url);
    await watcher.served();
    const attacker = await peer(url, [`lockstep.v1.${codec}`], 'attacker');
    const before = await readAll(hub);

    send(attacker);
    const { response, before: notifications } = await attacker.response(id);
    expect(notifications).toEqual([]);
    expect(response.error.code).toBe(code);
    expect(typeof response.error.message).toBe('string');

    // Still connected and served, and so is everyone else; nothing changed.
    expect((await attacker.call('ping', {})).result).toEqual({ time: expect.any(Number) });
    expect(await readAll(hub)).toEqual(before);
    await watcher.served();
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it('an oversized frame closes that socket with 1009; the hub and other clients carry on', async () => {
    const { hub, url } = await world({}, { maxPayload: 64 * 1024 });
    const watcher = await bystander(url);
    const attacker = await peer(url, undefined, 'attacker');
    const before = await readAll(hub);
    const huge = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'command',
      params: { id: 'big', stream: 'counter/x', type: 'add', payload: { by: 1, pad: 'x'.repeat(64 * 1024) } },
    });
    attacker.sendRaw(huge);
    expect(await attacker.closed).toMatchObject({ code: 1009 });
    await expect.poll(() => hub.connectionCount).toBe(1);
    expect(await readAll(hub)).toEqual(before);
    await watcher.served();
  });

  it('a frame just under maxPayload is served', async () => {
    const { url } = await world({}, { maxPayload: 64 * 1024 });
    const attacker = await peer(url, undefined, 'big-but-fine');
    const frame = JSON.stringify({ jsonrpc: '2.0', id: 'ok', method: 'ping', params: { pad: 'x'.repeat(60 * 1024) } });
    attacker.sendRaw(frame);
    expect((await attacker.response('ok')).response.result).toEqual({ time: expect.any(Number) });
  });

  it('refuses a foreign Origin with 403 and a missing or unknown subprotocol with 400 before any socket exists', async () => {
    const { hub, url } = await world({}, { allowedOrigins: ['https://dashboard.example'] });
    const watcher = await bystander(url);
    await expect(RawPeer.connect(url, ['lockstep.v1.json'], { origin: 'https://evil.example' })).rejects.toThrow('Unexpected server response: 403');
    await expect(RawPeer.connect(url, [])).rejects.toThrow('Unexpected server response: 400');
    await expect(RawPeer.connect(url, ['lockstep.v9.json', 'graphql-ws'])).rejects.toThrow('Unexpected server response: 400');
    const allowed = await peer(url, ['lockstep.v1.json'], undefined);
    expect(allowed.socket.protocol).toBe('lockstep.v1.json');
    expect(hub.connectionCount).toBe(2);
    await watcher.served();
  });

  it('a client sending 1,000 messages at once is answered RATE_LIMITED past its burst, then closed; others are served', async () => {
    // A stopped clock: the bucket never refills, so the counts do not depend on how fast frames arrive.
    const stopped: Clock = {
      now: () => 1_000_000,
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    };
    const { hub, url } = await world({ clock: stopped, rateLimit: { messagesPerSecond: 50, burst: 100 } });
    const watcher = await bystander(url);
    const attacker = await peer(url, undefined, 'flooder');
    const before = await readAll(hub);
    const answers: any[] = [];
    attacker.socket.on('message', (data) => answers.push(JSON.parse((data as Buffer).toString())));
    for (let i = 0; i < 1_000; i++) attacker.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'ping', params: {} }));
    const closed = await attacker.closed;
    expect(closed).toEqual({ code: 1000, reason: 'rate limit exceeded' });
    const served = answers.filter((answer) => answer.result !== undefined);
    const limited = answers.filter((answer) => answer.error?.code === ErrorCodes.RATE_LIMITED);
    // hello took one token of the burst of 100: pings 0–98 were within it, 99 and on were refused
    // (the refusals are answered at once, the pings once handled, so a connection closed in the same
    // tick may leave some pings unanswered), and the 101st refusal closed the connection.
    expect(served.every((answer) => answer.id < 99)).toBe(true);
    expect(limited.map((answer) => answer.id)).toEqual(Array.from({ length: 100 }, (_, i) => 99 + i));
    expect(limited[0]).toMatchObject({ error: { message: expect.any(String), data: { retryAfterMs: expect.any(Number) } } });
    expect(await readAll(hub)).toEqual(before);
    await watcher.served();
  });

  it('a client that never says hello is closed after helloTimeoutMs; others are served', async () => {
    const { hub, url } = await world({ helloTimeoutMs: 100 });
    const watcher = await bystander(url);
    const silent = await peer(url);
    expect(await silent.closed).toEqual({ code: 1000, reason: 'no hello within 100 ms' });
    expect(hub.connectionCount).toBe(1);
    await watcher.served();
  });

  it('a client that stops reading is shed and resynced once it reads again; others are never held back', async () => {
    const maxBufferedBytes = 256 * 1024;
    const { hub, url, transports } = await world({ maxBufferedBytes });
    const stream = 'blob/big';
    const slow = await peer(url, undefined, 'slow');
    const slowEnd = transports[0]!;
    const start = await slow.call('subscribe', { stream });
    let version: number = start.result.version;
    const resyncs: any[] = [];
    // Stop reading: the hub's writes pile up in the kernel, then in the socket's buffer.
    (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

    const writer = await peer(url, undefined, 'writer');
    await writer.call('subscribe', { stream });
    const text = 'y'.repeat(100_000);
    let commands = 0;
    const put = async () => {
      const { response, before } = await writer.response(writer.request('command', { id: `put-${++commands}`, stream, type: 'put', payload: { text } }));
      expect(response.result).toMatchObject({ version: commands });
      // The writer gets its own events before each ack: the slow client never holds it back.
      expect(before.map((message) => message.params.events[0].version)).toEqual([commands]);
    };
    // Write until the slow client's unsent bytes pass the bound, then once more so the hub notices.
    while ((slowEnd.bufferedAmount ?? 0) <= maxBufferedBytes) await put();
    for (let i = 0; i < 5; i++) await put();
    const head = (await hub.read(stream)).version;

    // Read again: whatever was buffered arrives, then a resync; resubscribing from the last version
    // applied brings the rest.
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    for (;;) {
      const message = await slow.next();
      if (message.method === 'events') {
        for (const event of message.params.events) {
          expect(event.version).toBe(version + 1);
          version = event.version;
        }
      } else if (message.method === 'resync') {
        resyncs.push(message.params);
        break;
      }
    }
    expect(resyncs).toEqual([{ stream, reason: 'slowConsumer' }]);
    expect(version).toBeLessThan(head);
    const resumed = await slow.call('subscribe', { stream, since: version });
    version = resumed.result.version;
    while (version < head) {
      const message = await slow.next();
      for (const event of message.params.events) {
        expect(event.version).toBe(version + 1);
        version = event.version;
      }
    }
    expect(version).toBe(head);
    expect(hub.connectionCount).toBe(2);
  });
});
