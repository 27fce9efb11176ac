import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jsonCodec, type Transport } from '@lockstep/core';
import { createClient } from '@lockstep/client';
import { Hub } from '@lockstep/server';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { webSocketConnector } from '../index.js';
import { createWebSocketServer, type LockstepWebSocketServer, type TransportAcceptor, type WebSocketServerOptions } from './index.js';

const JSON_PROTOCOL = 'lockstep.v1.json';

/** Records what it is handed instead of serving lockstep/1. */
function recorder() {
  const transports: Transport[] = [];
  const acceptor: TransportAcceptor = { accept: (transport) => void transports.push(transport) };
  return { transports, acceptor };
}

const servers: LockstepWebSocketServer[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function standalone(options: Partial<WebSocketServerOptions> = {}, acceptor = recorder().acceptor) {
  const server = createWebSocketServer(acceptor, { port: 0, ...options });
  servers.push(server);
  await server.ready;
  return { server, url: `ws://127.0.0.1:${server.address().port}` };
}

type Outcome = { status: number; body: string; headers: Record<string, unknown> } | { open: WebSocket };

/** Tries an upgrade with a plain ws client and reports the HTTP refusal or the open socket. */
function attempt(url: string, protocols: string[] = [JSON_PROTOCOL], options: WebSocket.ClientOptions = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, options);
    sockets.push(socket);
    socket.on('open', () => resolve({ open: socket }));
    socket.on('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
    });
    socket.on('error', (error) => reject(error));
  });
}

function opened(outcome: Outcome): WebSocket {
  if (!('open' in outcome)) throw new Error(`expected an open socket, got HTTP ${outcome.status}: ${outcome.body}`);
  return outcome.open;
}

const closeOf = (socket: WebSocket) =>
  new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

describe('createWebSocketServer: forms', () => {
  it('standalone listens on 127.0.0.1 by default and answers plain HTTP with 426', async () => {
    const { server } = await standalone();
    expect(server.address()).toEqual({ host: '127.0.0.1', port: expect.any(Number) });
    const response = await new Promise<{ status: number; body: string }>((resolve) => {
      get(`http://127.0.0.1:${server.address().port}/`, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(response.status).toBe(426);
    expect(response.body).toContain('lockstep.v1.json');
  });

  it('standalone rejects ready when the port is taken', async () => {
    const { server } = await standalone();
    const second = createWebSocketServer(recorder().acceptor, { port: server.address().port });
    await expect(second.ready).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await second.close();
  });

  it('attaches to an http.Server at a path, refusing other paths with 404', async () => {
    const http = createServer((_request, response) => response.end('app'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const { transports, acceptor } = recorder();
    const wsServer = createWebSocketServer(acceptor, { server: http, path: '/sync' });
    servers.push(wsServer);
    await wsServer.ready;
    const { port } = http.address() as AddressInfo;
    expect(wsServer.address().port).toBe(port);
    opened(await attempt(`ws://127.0.0.1:${port}/sync?tenant=acme`));
    expect(await attempt(`ws://127.0.0.1:${port}/elsewhere`)).toMatchObject({ status: 404 });
    expect(transports).toHaveLength(1);
  });

  it('leaves upgrades of other paths to the other listeners of the server', async () => {
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const other = new WebSocketServer({ noServer: true });
    onTestFinished(() => void other.close());
    http.on('upgrade', (request, socket, head) => {
      if (request.url === '/other')
        other.handleUpgrade(request, socket, head, (ws) => ws.on('message', (data) => ws.send(`other endpoint: ${(data as Buffer).toString()}`)));
    });
    servers.push(createWebSocketServer(recorder().acceptor, { server: http, path: '/sync' }));
    const { port } = http.address() as AddressInfo;
    const socket = opened(await attempt(`ws://127.0.0.1:${port}/other`, []));
    const message = new Promise<string>((resolve) => socket.once('message', (data) => resolve((data as Buffer).toString())));
    socket.send('hi');
    expect(await message).toBe('other endpoint: hi');
  });

  it('noServer: serves the upgrades the application hands to handleUpgrade', async () => {
    const { transports, acceptor } = recorder();
    const wsServer = createWebSocketServer(acceptor, { noServer: true });
    servers.push(wsServer);
    expect(() => wsServer.address()).toThrow(/noServer/);
    const http = createServer();
    http.on('upgrade', (request, socket, head) => wsServer.handleUpgrade(request, socket, head));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const socket = opened(await attempt(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/anything`));
    expect(socket.protocol).toBe(JSON_PROTOCOL);
    expect(transports).toHaveLength(1);
    expect(wsServer.connectionCount).toBe(1);
    // Once closed, upgrades the application still hands over are refused.
    await wsServer.close();
    expect(await attempt(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/anything`)).toMatchObject({
      status: 503,
      body: 'the server is shutting down\n',
    });
  });
});

describe('createWebSocketServer: upgrade checks', () => {
  it('selects a lockstep subprotocol, in the client order, and never the bearer entry', async () => {
    const { url } = await standalone();
    expect(opened(await attempt(url, ['lockstep.bearer.dA', 'lockstep.v1.msgpack', JSON_PROTOCOL])).protocol).toBe('lockstep.v1.msgpack');
    expect(opened(await attempt(url, ['chat', JSON_PROTOCOL])).protocol).toBe(JSON_PROTOCOL);
  });

  it('refuses a missing or unknown subprotocol with 400 and names the supported ones', async () => {
    const { url } = await standalone();
    const missing = await attempt(url, []);
    expect(missing).toMatchObject({ status: 400, headers: { 'x-lockstep-subprotocols': 'lockstep.v1.json, lockstep.v1.msgpack' } });
    expect((missing as { body: string }).body).toBe(
      'no subprotocol was offered: offer one of lockstep.v1.json, lockstep.v1.msgpack in Sec-WebSocket-Protocol\n',
    );
    const unknown = await attempt(url, ['lockstep.v2.json', 'lockstep.bearer.dA']);
    expect(unknown).toMatchObject({ status: 400 });
    expect((unknown as { body: string }).body).toMatch(/^unsupported subprotocol lockstep\.v2\.json: offer one of/);
  });

  it('accepts only the configured subprotocols', async () => {
    const { url } = await standalone({ subprotocols: ['lockstep.v1.msgpack'] });
    expect(await attempt(url, [JSON_PROTOCOL])).toMatchObject({ status: 400 });
    expect(opened(await attempt(url, ['lockstep.v1.msgpack'])).protocol).toBe('lockstep.v1.msgpack');
  });

  it('refuses a foreign Origin with 403 and allows listed ones, a predicate, and no Origin at all', async () => {
    const { url } = await standalone({ allowedOrigins: ['https://app.example'] });
    expect(await attempt(url, [JSON_PROTOCOL], { origin: 'https://evil.example' })).toMatchObject({
      status: 403,
      body: 'origin https://evil.example is not allowed\n',
    });
    opened(await attempt(url, [JSON_PROTOCOL], { origin: 'https://app.example' }));
    opened(await attempt(url));
    const byPredicate = await standalone({ allowedOrigins: (origin) => origin.endsWith('.trusted.example') });
    opened(await attempt(byPredicate.url, [JSON_PROTOCOL], { origin: 'https://a.trusted.example' }));
    expect(await attempt(byPredicate.url, [JSON_PROTOCOL], { origin: 'https://trusted.example.evil' })).toMatchObject({ status: 403 });
  });

  it('authenticates at the upgrade from the Authorization header or the bearer subprotocol entry, else 401', async () => {
    const seen: Array<string | undefined> = [];
    const { url } = await standalone({
      authenticate: async ({ token }) => {
        seen.push(token);
        if (token === 'boom') throw new Error('hook failed');
        return token === 'good' || token === 'ünï' ? { id: `user:${token}` } : undefined;
      },
    });
    opened(await attempt(url, [JSON_PROTOCOL], { headers: { Authorization: 'Bearer good' } }));
    opened(await attempt(url, [JSON_PROTOCOL, `lockstep.bearer.${Buffer.from('ünï').toString('base64url')}`]));
    for (const refused of [
      await attempt(url),
      await attempt(url, [JSON_PROTOCOL], { headers: { Authorization: 'Bearer bad' } }),
      await attempt(url, [JSON_PROTOCOL], { headers: { Authorization: 'Bearer boom' } }),
      await attempt(url, [JSON_PROTOCOL], { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }),
      await attempt(url, [JSON_PROTOCOL, 'lockstep.bearer.not*base64']),
    ]) {
      expect(refused).toMatchObject({ status: 401, headers: { 'www-authenticate': 'Bearer' } });
    }
    expect(seen).toEqual(['good', 'ünï', undefined, 'bad', 'boom']);
  });

  it('hands the identity established at the upgrade to the hub, for authorize', async () => {
    const seen: Array<string | undefined> = [];
    const hub = new Hub({
      domains: [],
      // Not consulted for a connection whose transport carries an identity already.
      authenticate: () => undefined,
      authorize: (identity) => {
        seen.push(identity?.id);
        return identity?.id === 'alice';
      },
    });
    onTestFinished(() => hub.close());
    const { url } = await standalone({ authenticate: ({ token }) => (token === 'alice-token' ? { id: 'alice' } : undefined) }, hub);
    const client = createClient({ connect: webSocketConnector(url, { token: 'alice-token' }) });
    onTestFinished(() => client.close());
    await firstValueFrom(client.status$.pipe(filter((status) => status.status === 'online')));
    const socket = opened(await attempt(url, [JSON_PROTOCOL], { headers: { Authorization: 'Bearer alice-token' } }));
    const answers: unknown[] = [];
    socket.on('message', (data) => answers.push(JSON.parse((data as Buffer).toString())));
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1 } }));
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'subscribe', params: { stream: 'nope/x' } }));
    await expect.poll(() => answers.length).toBe(2);
    // Authorized as alice (then refused only because no such domain is served).
    expect(answers[1]).toMatchObject({ id: 2, error: { code: -32004 } });
    expect(seen).toEqual(['alice']);
  });

  it('leaves permessage-deflate off unless enabled', async () => {
    const off = await standalone();
    expect(opened(await attempt(off.url)).extensions).toBe('');
    const on = await standalone({ perMessageDeflate: true });
    expect(opened(await attempt(on.url)).extensions).toContain('permessage-deflate');
  });

  it('closes the socket with 1011 when the acceptor throws, and reports it', async () => {
    const errors: string[] = [];
    const { url } = await standalone(
      { onError: (_error, context) => errors.push(context) },
      {
        accept: () => {
          throw new Error('broken acceptor');
        },
      },
    );
    const socket = opened(await attempt(url));
    expect(await closeOf(socket)).toEqual({ code: 1011, reason: 'internal error' });
    expect(errors).toEqual(['accepting a connection']);
  });
});

describe('createWebSocketServer: heartbeat and shutdown', () => {
  it('terminates a peer that stops answering pings and keeps one that answers', async () => {
    const { transports, acceptor } = recorder();
    const { url, server } = await standalone({ heartbeatMs: 20 }, acceptor);
    const alive = opened(await attempt(url));
    const dead = opened(await attempt(url, [JSON_PROTOCOL], { autoPong: false }));
    const [aliveEnd, deadEnd] = transports as [Transport, Transport];
    const deadState = await firstValueFrom(deadEnd.state.pipe(filter((state) => state.status === 'closed')));
    expect(deadState).toEqual({ status: 'closed', reason: 'no answer to the last two heartbeat pings', code: 1006 });
    expect(await closeOf(dead)).toMatchObject({ code: 1006 });
    expect(await firstValueFrom(aliveEnd.state)).toEqual({ status: 'open' });
    expect(alive.readyState).toBe(WebSocket.OPEN);
    await expect.poll(() => server.connectionCount).toBe(1);
  });

  it('close() closes every socket with 1001 going away, stops listening and refuses late upgrades', async () => {
    const { url, server } = await standalone();
    const a = opened(await attempt(url));
    const b = opened(await attempt(url));
    const closes = Promise.all([closeOf(a), closeOf(b)]);
    await server.close();
    expect(await closes).toEqual([
      { code: 1001, reason: 'going away' },
      { code: 1001, reason: 'going away' },
    ]);
    expect(server.connectionCount).toBe(0);
    await expect(attempt(url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await server.close();
  });

  it('after hub.close(), clients got the shutdown notification before the socket closed', async () => {
    const hub = new Hub({ domains: [] });
    const { url, server } = await standalone({}, hub);
    const socket = opened(await attempt(url));
    const messages: string[] = [];
    socket.on('message', (data) => messages.push((data as Buffer).toString()));
    const closing = closeOf(socket);
    await hub.close();
    await server.close();
    expect(await closing).toEqual({ code: 1000, reason: 'hub is shutting down' });
    expect(messages.map((message) => JSON.parse(message) as unknown)).toEqual([
      { jsonrpc: '2.0', method: 'shutdown', params: { reason: 'hub is shutting down' } },
    ]);
  });

  it('drops sockets that do not finish the closing handshake within closeTimeoutMs', async () => {
    const { transports, acceptor } = recorder();
    const { url, server } = await standalone({ closeTimeoutMs: 50 }, acceptor);
    const socket = opened(await attempt(url));
    // Stop reading: the close frame is never answered.
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    await server.close();
    expect(server.connectionCount).toBe(0);
    expect(await firstValueFrom(transports[0]!.state)).toMatchObject({ status: 'closed', code: 1001 });
  });

  it('serves lockstep/1 with a real client end to end (hello over json)', async () => {
    const hub = new Hub({ domains: [] });
    onTestFinished(() => hub.close());
    const { url } = await standalone({}, hub);
    const client = createClient({ connect: webSocketConnector(url, { codec: jsonCodec }) });
    onTestFinished(() => client.close());
    const online = await firstValueFrom(client.status$.pipe(filter((status) => status.status === 'online')));
    expect(online.serverId).toBe(hub.serverId);
  });
});
