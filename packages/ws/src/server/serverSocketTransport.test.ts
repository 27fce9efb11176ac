import type { Frame, TransportListener, TransportState } from '@lockstep/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ServerSocketTransport } from './serverSocketTransport.js';

/** A real socket pair: the accepted end wrapped in a ServerSocketTransport, and the client end. */
async function pair(): Promise<{ transport: ServerSocketTransport; client: WebSocket }> {
  const wss = new WebSocketServer({ port: 0 });
  onTestFinished(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', (socket) => resolve(socket)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
  onTestFinished(() => client.terminate());
  await new Promise((resolve) => client.once('open', resolve));
  return { transport: new ServerSocketTransport(await accepted, {}), client };
}

/** A listener that records what it hears. */
function recording() {
  const heard: Array<Frame | TransportState> = [];
  const listener: TransportListener = { onFrame: (frame) => void heard.push(frame), onClose: (state) => void heard.push(state) };
  return { heard, listener };
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(condition()).toBe(true);
};

describe('ServerSocketTransport.listen: frames and the close to one listener, without subscriptions', () => {
  it('hands the listener every frame in order, then the close once, alongside rxjs subscribers', async () => {
    const { transport, client } = await pair();
    const { heard, listener } = recording();
    transport.listen(listener);
    const viaRx: Frame[] = [];
    transport.frames.subscribe((frame) => viaRx.push(frame));
    client.send('one');
    client.send(Buffer.from([1, 2]));
    client.send('three');
    await until(() => heard.length === 3);
    expect(heard.slice(0, 3)).toEqual(['one', new Uint8Array([1, 2]), 'three']);
    expect(viaRx).toEqual(heard);
    transport.close('done here');
    expect(heard.slice(3)).toEqual([{ status: 'closed', reason: 'done here', code: 1000 }]);
    transport.close('again');
    expect(heard).toHaveLength(4);
  });

  it('stops with listen(undefined): later frames and the close reach it no more', async () => {
    const { transport, client } = await pair();
    const { heard, listener } = recording();
    transport.listen(listener);
    client.send('before');
    await until(() => heard.length === 1);
    transport.listen(undefined);
    const viaRx: Frame[] = [];
    transport.frames.subscribe((frame) => viaRx.push(frame));
    client.send('after');
    await until(() => viaRx.length === 1);
    client.close(1000, 'bye');
    await until(() => !transport.isOpen);
    expect(heard).toEqual(['before']);
  });

  it('tells a listener that comes after the close at once, with the peer close reason', async () => {
    const { transport, client } = await pair();
    client.close(4001, 'gone');
    await until(() => !transport.isOpen);
    const { heard, listener } = recording();
    transport.listen(listener);
    expect(heard).toEqual([{ status: 'closed', reason: expect.stringContaining('gone'), code: 4001 }]);
  });
});
