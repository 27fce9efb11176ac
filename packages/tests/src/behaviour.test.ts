import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectSocket, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { createMemoryLink, jsonCodec, type Codec, type Frame, type Transport } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { createStdioTransport, serveStdio } from '@lockstep/stdio';
import { counterDomain } from '@lockstep/testkit';
import { webSocketTransport } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { describe, expect, it, onTestFinished } from 'vitest';

/**
 * One behaviour suite, every transport: the core client/hub cases — connect, subscribe and snapshot,
 * dispatch and ack, events fanned out to a second client, reconnect and resync with `since` — run
 * over the in-memory link, WebSocket (JSON and msgpack, real sockets on loopback) and stdio framing
 * (a real Unix domain socket, served by `serveStdio`). The cases see only `connect`, `cut` and what
 * the client sent, so a new transport is one more entry in TRANSPORTS.
 */

interface Served {
  /** A fresh connection to the hub: what a client's `connect` option returns. */
  connect(): Transport | Promise<Transport>;
  codec: Codec;
}

interface TransportKind {
  name: string;
  /** Serves `hub` over the transport; what it opened is closed when the case finishes. */
  serve(hub: Hub): Promise<Served>;
}

const TRANSPORTS: TransportKind[] = [
  {
    name: 'memory',
    async serve(hub) {
      return {
        codec: jsonCodec,
        connect: () => {
          const link = createMemoryLink();
          hub.accept(link.server);
          return link.client;
        },
      };
    },
  },
  ...[jsonCodec, msgpackCodec].map((codec): TransportKind => ({
    name: `ws (${codec.name})`,
    async serve(hub) {
      const server = createWebSocketServer(hub, { port: 0 });
      onTestFinished(() => server.close());
      await server.ready;
      const url = `ws://127.0.0.1:${server.address().port}`;
      return { codec, connect: () => webSocketTransport(url, { codec }) };
    },
  })),
  {
    name: 'stdio',
    async serve(hub) {
      const directory = mkdtempSync(join(tmpdir(), 'lockstep-behaviour-'));
      const path = join(directory, 'stdio.sock');
      const sockets = new Set<Socket>();
      const server = createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        serveStdio(hub, { input: socket, output: socket, guardConsole: false });
      });
      await new Promise<void>((resolve) => server.listen(path, resolve));
      onTestFinished(async () => {
        for (const socket of sockets) socket.destroy();
        rmSync(directory, { recursive: true, force: true });
        await new Promise((resolve) => server.close(resolve));
      });
      return {
        codec: jsonCodec,
        connect: () =>
          new Promise<Transport>((resolve, reject) => {
            const socket = connectSocket(path);
            sockets.add(socket);
            socket.once('error', reject);
            socket.once('connect', () => resolve(createStdioTransport({ input: socket, output: socket })));
          }),
      };
    },
  },
];

/** Polls `condition` until it holds (a failure message after `timeoutMs`: no timing is asserted). */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const synced = (stream: SyncedStream<typeof counterDomain>) =>
  stream.getStatus().status === 'online' && stream.getStatus().lag === 0 && stream.getStatus().pending === 0;

let commands = 0;
const add = (stream: string, by: number) => ({ id: `hub-${++commands}`, stream, type: 'add', payload: { by } });

describe.each(TRANSPORTS)('client and hub over $name', (kind) => {
  /** A hub served over the transport, and clients of it that record every message they send. */
  async function world() {
    const hub = new Hub({ domains: [counterDomain], store: new MemoryEventStore() });
    const served = await kind.serve(hub);
    const clients: LockstepClient[] = [];
    onTestFinished(async () => {
      for (const client of clients) client.close();
      await hub.close();
    });
    const client = () => {
      const sent: any[] = [];
      const transports: Transport[] = [];
      const c = createClient({
        codec: served.codec,
        backoff: { initialMs: 20, maxMs: 200 },
        connect: async () => {
          const transport = recording(await served.connect(), served.codec, sent);
          transports.push(transport);
          return transport;
        },
      });
      clients.push(c);
      return {
        client: c,
        sent,
        /** Closes the current connection under the client, as a network failure would. */
        cut: () => transports.at(-1)!.close('cut by the test'),
        connections: () => transports.length,
      };
    };
    return { hub, client };
  }

  async function expectSame(hub: Hub, stream: SyncedStream<typeof counterDomain>): Promise<void> {
    const { state, version } = await hub.read(stream.name);
    expect(stream.confirmed).toEqual({ state, version });
    expect(stream.getSnapshot()).toEqual(state);
  }

  it('connects: hello is answered and the client is online with the hub', async () => {
    const { hub, client } = await world();
    const { client: c, sent } = client();
    await until(() => c.status.status === 'online', 'online');
    expect(c.status.serverId).toBe(hub.serverId);
    expect(sent[0]).toMatchObject({ method: 'hello', params: { protocol: 1 } });
  });

  it('subscribes and receives the stream as the hub has it', async () => {
    const { hub, client } = await world();
    for (const by of [1, 2, 3]) await hub.execute(add('counter/snap', by));
    const s = client().client.stream(counterDomain, 'snap');
    await until(() => synced(s), 'synced');
    await expectSame(hub, s);
    expect(s.getSnapshot()).toEqual({ n: 6 });
  });

  it('dispatches a command and is acknowledged with its version', async () => {
    const { hub, client } = await world();
    const s = client().client.stream(counterDomain, 'ack');
    await until(() => synced(s), 'synced');
    const done = s.dispatch({ type: 'add', payload: { by: 5 } });
    expect(s.getSnapshot()).toEqual({ n: 5 });
    await expect(done).resolves.toEqual({ id: expect.any(String), stream: 'counter/ack', version: 1 });
    await until(() => synced(s), 'settled');
    await expectSame(hub, s);
    await expect(s.dispatch({ type: 'add', payload: { by: -10 } })).rejects.toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'counter.negative' } });
  });

  it('fans the events of one client out to another', async () => {
    const { hub, client } = await world();
    const a = client().client.stream(counterDomain, 'fan');
    const b = client().client.stream(counterDomain, 'fan');
    await until(() => synced(a) && synced(b), 'both synced');
    await a.dispatch({ type: 'add', payload: { by: 2 } });
    await a.dispatch({ type: 'add', payload: { by: 3 } });
    await until(() => b.confirmed.version === 2, 'b sees both events');
    expect(b.getSnapshot()).toEqual({ n: 5 });
    await expectSame(hub, b);
  });

  it('reconnects after a cut and resyncs from its version with `since`', async () => {
    const { hub, client } = await world();
    const { client: c, sent, cut, connections } = client();
    const s = c.stream(counterDomain, 'resync');
    await s.dispatch({ type: 'add', payload: { by: 1 } });
    await until(() => synced(s), 'synced');
    cut();
    await until(() => c.status.status !== 'online', 'offline after the cut');
    // Written while the client is away: it learns of them by resyncing.
    for (const by of [10, 20]) await hub.execute(add('counter/resync', by));
    await until(() => connections() === 2 && synced(s) && s.confirmed.version === 3, 'resynced');
    const subscribes = sent.filter((message) => message.method === 'subscribe' && message.params.stream === 'counter/resync');
    expect(subscribes.map((message) => message.params.since)).toEqual([undefined, 1]);
    await expectSame(hub, s);
    expect(s.getSnapshot()).toEqual({ n: 31 });
  });
});

/** `inner`, with every message sent through it decoded into `sent` (batches flattened). */
function recording(inner: Transport, codec: Codec, sent: unknown[]): Transport {
  return {
    frames: inner.frames,
    state: inner.state,
    ...(inner.info && { info: inner.info }),
    send(frame: Frame) {
      const decoded = codec.decode(frame);
      sent.push(...(Array.isArray(decoded) ? decoded : [decoded]));
      return inner.send(frame);
    },
    close: (reason) => inner.close(reason),
  };
}
