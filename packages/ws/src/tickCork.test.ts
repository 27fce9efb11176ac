import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Frame } from '@lockstep/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ServerSocketTransport } from './server/serverSocketTransport.js';
import { webSocketTransport } from './webSocketTransport.js';

/** A ws server on loopback whose accepted sockets (and their upgrade requests) the test receives. */
async function server(): Promise<{ url: string; accepted: Promise<{ ws: WebSocket; request: IncomingMessage }> }> {
  const wss = new WebSocketServer({ port: 0, handleProtocols: (protocols) => [...protocols][0] ?? false });
  onTestFinished(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const accepted = new Promise<{ ws: WebSocket; request: IncomingMessage }>((resolve) => wss.once('connection', (ws, request) => resolve({ ws, request })));
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, accepted };
}

/** Counts the chunks a TCP socket reads: frames written in one `writev` arrive as one chunk on loopback. */
function chunks(socket: Socket): { count: () => number } {
  let count = 0;
  socket.on('data', () => void count++);
  return { count: () => count };
}

const FRAMES = Array.from({ length: 20 }, (_, i) => `frame ${i}`);

describe('frames sent in one tick leave in one write, through the public socket', () => {
  it('server transport: corks the upgrade request socket for the tick, then lets it out', async () => {
    const { url, accepted } = await server();
    const client = new WebSocket(url);
    onTestFinished(() => client.terminate());
    const clientStream = new Promise<Socket>((resolve) => client.once('upgrade', (response) => resolve(response.socket)));
    await new Promise((resolve) => client.once('open', resolve));
    const received: string[] = [];
    client.on('message', (data) => received.push((data as Buffer).toString()));
    const read = chunks(await clientStream);
    const { ws, request } = await accepted;
    const transport = new ServerSocketTransport(ws, {}, request.socket);
    for (const frame of FRAMES) transport.send(frame);
    expect(request.socket.writableCorked).toBe(1);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(request.socket.writableCorked).toBe(0);
    for (let i = 0; i < 500 && received.length < FRAMES.length; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(received).toEqual(FRAMES);
    expect(read.count()).toBe(1);
  });

  it('client transport: finds its TCP socket from the upgrade response and corks it', async () => {
    const { url, accepted } = await server();
    const transport = webSocketTransport(url);
    onTestFinished(() => transport.close());
    await new Promise<void>((resolve) => transport.state.subscribe((state) => state.status === 'open' && resolve()));
    const { ws, request } = await accepted;
    const received: Frame[] = [];
    ws.on('message', (data) => received.push((data as Buffer).toString()));
    const read = chunks(request.socket);
    for (const frame of FRAMES) transport.send(frame);
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (let i = 0; i < 500 && received.length < FRAMES.length; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(received).toEqual(FRAMES);
    expect(read.count()).toBe(1);
  });
});
