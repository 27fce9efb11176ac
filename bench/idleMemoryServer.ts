/**
 * The server side of bench/idleMemory.bench.ts: one subject's server in a fresh process started with
 * --expose-gc, so what it holds per connection can be measured after full collections.
 *
 * Messages (IPC): { type: 'measure' } → { type: 'memory', heapUsed, rss, external, connections }.
 */
import { HUB_DEFAULTS } from '@lockstep/server';
import { lockstepServer, rawWsServer, socketIoServer } from './harness.js';

type Kind = 'lockstep' | 'raw' | 'socketio';
const kind = process.argv[2] as Kind;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('idleMemoryServer needs --expose-gc');

let connections: () => number;
let url: string;
if (kind === 'lockstep') {
  // The hub's default limits (the benchmarks' servers otherwise turn the rate limit off): a
  // connection's token bucket is part of what it costs.
  const server = await lockstepServer({ rateLimit: HUB_DEFAULTS.rateLimit });
  // The stream the clients subscribe to: a few tasks, loaded before the baseline.
  await server.hub.execute({ id: 'idle-create', stream: 'tasks/idle', type: 'task.create', payload: { id: 'task_idle', title: 'Idle' } });
  connections = () => server.hub.connectionCount;
  url = server.url;
} else if (kind === 'raw') {
  const server = await rawWsServer();
  // An idle connection the way a hand-written server keeps it: in a set, with a message handler.
  const sockets = new Set<unknown>();
  server.wss.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('message', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  connections = () => sockets.size;
  url = server.url;
} else {
  const server = await socketIoServer();
  server.io.on('connection', (socket) => void socket.join('tasks/idle'));
  connections = () => server.io.engine.clientsCount;
  url = server.url;
}

/** Full collections until the heap stops shrinking, then the figures. */
async function measure() {
  let previous = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage().heapUsed;
    if (used >= previous * 0.999) break;
    previous = used;
  }
  const usage = process.memoryUsage();
  return { type: 'memory', heapUsed: usage.heapUsed, rss: usage.rss, external: usage.external, connections: connections() };
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'measure') void measure().then((result) => process.send!(result));
  else if (message.type === 'exit') process.exit(0);
});
process.send!({ type: 'ready', url });
