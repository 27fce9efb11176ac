import { jsonCodec, type Codec, type Transport, type TransportState } from '@lockstep/core';
import type { Identity } from '@lockstep/server';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { describeTransportConformance } from '@lockstep/testkit';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createWebSocketServer, type LockstepWebSocketServer, type WebSocketServerOptions } from './server/index.js';
import { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, bearerSubprotocol, subprotocolForCodec, webSocketConnector, webSocketTransport } from './index.js';

/** A standalone server whose "hub" only records the transports it is given. */
async function capturingServer(options: Partial<WebSocketServerOptions> = {}) {
  const accepted: Array<{ transport: Transport; codec: Codec; identity?: Identity | undefined }> = [];
  const waiting: Array<(transport: Transport) => void> = [];
  const server = createWebSocketServer(
    {
      accept(transport, { codec, identity }) {
        accepted.push({ transport, codec, identity });
        waiting.shift()?.(transport);
      },
    },
    { port: 0, ...options },
  );
  await server.ready;
  const { port } = server.address();
  let taken = 0;
  return {
    server,
    accepted,
    url: `ws://127.0.0.1:${port}`,
    /** The server end of the next connection. */
    next: () => {
      const index = taken++;
      return index < accepted.length ? Promise.resolve(accepted[index]!.transport) : new Promise<Transport>((resolve) => waiting.push(resolve));
    },
  };
}

for (const codec of [jsonCodec, msgpackCodec]) {
  describeTransportConformance(`ws transport (${codec.name})`, async () => {
    const { server, url, next } = await capturingServer();
    const client = webSocketTransport(url, { codec });
    return { client, server: await next(), dispose: () => server.close() };
  });
}

const settled = (transport: Transport) => firstValueFrom(transport.state.pipe(filter((state) => state.status !== 'connecting')));
const closed = async (transport: Transport) =>
  firstValueFrom(transport.state.pipe(filter((state): state is Extract<TransportState, { status: 'closed' }> => state.status === 'closed')));

describe('webSocketTransport', () => {
  const servers: LockstepWebSocketServer[] = [];
  const raw: WebSocketServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
    await Promise.all(raw.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  async function start(options: Partial<WebSocketServerOptions> = {}) {
    const started = await capturingServer(options);
    servers.push(started.server);
    return started;
  }

  it('picks the subprotocol from the codec name and the server the matching codec', async () => {
    expect(subprotocolForCodec(jsonCodec)).toBe(JSON_SUBPROTOCOL);
    expect(subprotocolForCodec(msgpackCodec)).toBe(MSGPACK_SUBPROTOCOL);
    expect(() => subprotocolForCodec({ ...jsonCodec, name: 'cbor' })).toThrow(/no WebSocket subprotocol for the codec "cbor"/);
    const { url, next, accepted } = await start();
    for (const codec of [jsonCodec, msgpackCodec]) {
      const client = webSocketTransport(url, { codec });
      const server = await next();
      expect(await settled(client)).toEqual({ status: 'open' });
      expect(server.info).toMatchObject({ transport: 'ws', subprotocol: subprotocolForCodec(codec), remoteAddress: '127.0.0.1' });
      expect(accepted.at(-1)!.codec.name).toBe(codec.name);
      client.close();
    }
  });

  it('starts connecting, and reports a refused handshake as closed with the reason', async () => {
    const { url } = await start({ allowedOrigins: ['https://app.example'] });
    const client = webSocketTransport(url, { headers: { Origin: 'https://evil.example' } });
    expect(await firstValueFrom(client.state)).toEqual({ status: 'connecting' });
    const state = await closed(client);
    expect(state).toMatchObject({ code: 1006, reason: 'Unexpected server response: 403' });
    expect(client.send('late')).toBe(false);
  });

  it('reports a connection refused by the network as closed', async () => {
    const { url, server } = await start();
    await server.close();
    const state = await closed(webSocketTransport(url));
    expect(state.code).toBe(1006);
    expect(state.reason).toMatch(/ECONNREFUSED/);
  });

  it('closes when the server selects another subprotocol than the codec needs', async () => {
    // A server that selects the last entry offered: here the bearer entry, never a codec.
    const rogue = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (offered) => [...offered].at(-1) ?? false });
    raw.push(rogue);
    await new Promise((resolve) => rogue.once('listening', resolve));
    const port = (rogue.address() as { port: number }).port;
    const client = webSocketTransport(`ws://127.0.0.1:${port}`, { token: 't' });
    const state = await closed(client);
    expect(state).toMatchObject({ code: 1002 });
    expect(state.reason).toMatch(/the server selected the subprotocol "lockstep\.bearer\.dA", not lockstep\.v1\.json/);
  });

  it('queues frames sent while connecting and sends them once open', async () => {
    const { url, next } = await start();
    const client = webSocketTransport(url);
    expect(client.send('early 1')).toBe(true);
    expect(client.send('early 2')).toBe(true);
    const server = await next();
    const frames: unknown[] = [];
    server.frames.subscribe((frame) => frames.push(frame));
    await settled(client);
    client.send('late');
    await expect.poll(() => frames).toEqual(['early 1', 'early 2', 'late']);
    client.close();
  });

  it('sends a token as a bearer subprotocol entry and headers on the upgrade request', async () => {
    const seen: Array<{ token: string | undefined; header: string | undefined }> = [];
    const { url, next, accepted } = await start({
      authenticate: ({ token, headers }) => {
        seen.push({ token, header: headers['x-tenant'] as string | undefined });
        return { id: token ?? 'anonymous' };
      },
    });
    const token = 'ünïcode token/with+symbols= and spaces';
    const client = webSocketTransport(url, { token, headers: { 'X-Tenant': 'acme' } });
    const server = await next();
    expect(await settled(client)).toEqual({ status: 'open' });
    expect(seen).toEqual([{ token, header: 'acme' }]);
    expect(accepted.find((entry) => entry.transport === server)!.identity).toEqual({ id: token });
    expect(server.info).not.toHaveProperty('identity');
    expect(bearerSubprotocol(token)).toMatch(/^lockstep\.bearer\.[A-Za-z0-9_-]+$/);
    client.close();
  });

  it('reports bufferedAmount, and the peer close code and reason', async () => {
    const { url, next } = await start();
    const client = webSocketTransport(url);
    const server = await next();
    await settled(client);
    expect(client.bufferedAmount).toBe(0);
    expect(server.bufferedAmount).toBe(0);
    server.close('bye now');
    expect(await closed(client)).toEqual({ status: 'closed', reason: 'bye now', code: 1000 });
  });

  it('webSocketConnector opens a new transport on every call, with options computed per call', async () => {
    const { url, next, accepted } = await start({ authenticate: ({ token }) => (token ? { id: token } : undefined) });
    let call = 0;
    const connect = webSocketConnector(url, async () => ({ token: `token-${++call}` }));
    const first = await connect();
    const firstServer = await next();
    const second = await connect();
    const secondServer = await next();
    expect(first).not.toBe(second);
    await Promise.all([settled(first), settled(second)]);
    const identityOf = (transport: Transport) => accepted.find((entry) => entry.transport === transport)!.identity;
    expect(identityOf(firstServer)).toEqual({ id: 'token-1' });
    expect(identityOf(secondServer)).toEqual({ id: 'token-2' });
    first.close();
    second.close();
  });
});
