/**
 * The client side of bench/idleMemory.bench.ts, in a process of its own (its memory is not what is
 * measured): connects N clients of one kind to a server, and closes them on request.
 *
 * - lockstep: `@lockstep/client` clients over `@lockstep/ws`, each subscribed to `tasks/idle`;
 * - raw: plain `ws` connections;
 * - socketio: `socket.io-client` connections (the server puts each in a room).
 */
import { createClient, type LockstepClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { webSocketConnector } from '@lockstep/ws';
import { io as socketIoClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

let closers: Array<() => void> = [];

async function connect(kind: string, url: string, count: number): Promise<void> {
  for (let done = 0; done < count; done += 50) {
    const wave = Array.from({ length: Math.min(50, count - done) }, async () => {
      if (kind === 'lockstep') {
        const client: LockstepClient = createClient({ connect: webSocketConnector(url) });
        const stream = client.stream(tasksDomain, 'idle');
        await stream.waitFor(1);
        await client.whenIdle();
        closers.push(() => client.close());
      } else if (kind === 'raw') {
        const socket = new WebSocket(url, { perMessageDeflate: false });
        await new Promise((resolve, reject) => {
          socket.once('open', resolve);
          socket.once('error', reject);
        });
        closers.push(() => socket.terminate());
      } else {
        const socket: Socket = socketIoClient(url, { transports: ['websocket'], reconnection: false, forceNew: true });
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        closers.push(() => socket.close());
      }
    });
    await Promise.all(wave);
  }
}

process.on('message', (message: { type: string; kind: string; url: string; count: number }) => {
  if (message.type === 'connect') {
    connect(message.kind, message.url, message.count).then(
      () => process.send!({ type: 'connected' }),
      (error: unknown) => {
        console.error('idle memory clients:', error);
        process.exit(1);
      },
    );
  } else if (message.type === 'close') {
    for (const close of closers) close();
    closers = [];
    process.send!({ type: 'closed' });
  } else if (message.type === 'exit') process.exit(0);
});
process.send!({ type: 'ready' });
