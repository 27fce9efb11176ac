/**
 * The client side of bench/streams.bench.ts, in a process of its own (its memory is not what is
 * measured): one raw lockstep/1 connection over `ws` that touches N distinct streams once each —
 * a subscribe then an unsubscribe (`subscribe`), or one `task.create` (`command`) — in pipelined
 * windows of 500, then closes.
 *
 * Message (IPC): `{ type: 'touch', url, mode, prefix, count }` → `{ type: 'touched', seconds,
 * firstUs, lastUs }`: the whole run, and the time per stream of the first 1,000 and of the last 1,000
 * streams (the load cost with a nearly empty hub and with a full one).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const WINDOW = 500;

interface Touch {
  type: 'touch';
  url: string;
  mode: 'subscribe' | 'command';
  prefix: string;
  count: number;
}

async function touch({ url, mode, prefix, count }: Touch) {
  const socket = new WebSocket(url, 'lockstep.v1.json', { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const waiting = new Map<number, (error: unknown) => void>();
  socket.on('message', (data) => {
    const text = (data as Buffer).toString();
    const decoded = JSON.parse(text) as Message | Message[];
    for (const message of Array.isArray(decoded) ? decoded : [decoded]) {
      if (message.id === undefined || message.id === null) continue;
      waiting.get(message.id)?.(message.error);
      waiting.delete(message.id);
    }
  });
  let nextId = 1;
  const call = (method: string, params: unknown) =>
    new Promise<void>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (error) => (error === undefined ? resolve() : reject(new Error(`${method}: ${JSON.stringify(error)}`))));
      socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  const touchAll = async (from: number, to: number) => {
    for (let start = from; start < to; start += WINDOW) {
      const indexes = Array.from({ length: Math.min(WINDOW, to - start) }, (_, i) => start + i);
      if (mode === 'command') {
        await Promise.all(
          indexes.map((i) =>
            call('command', { id: `${prefix}-${i}`, stream: `tasks/${prefix}${i}`, type: 'task.create', payload: { id: 'task_1', title: 'touched once' } }),
          ),
        );
      } else {
        await Promise.all(indexes.map((i) => call('subscribe', { stream: `tasks/${prefix}${i}` })));
        await Promise.all(indexes.map((i) => call('unsubscribe', { stream: `tasks/${prefix}${i}` })));
      }
    }
  };
  await call('hello', { protocol: 1 });
  const started = performance.now();
  const first = Math.min(1_000, count);
  await touchAll(0, first);
  const firstDone = performance.now();
  const lastFrom = Math.max(first, count - 1_000);
  await touchAll(first, lastFrom);
  const lastStarted = performance.now();
  await touchAll(lastFrom, count);
  const done = performance.now();
  socket.close();
  await new Promise((resolve) => socket.once('close', resolve));
  return {
    type: 'touched',
    seconds: (done - started) / 1000,
    firstUs: ((firstDone - started) * 1000) / first,
    lastUs: count > lastFrom ? ((done - lastStarted) * 1000) / (count - lastFrom) : Number.NaN,
  };
}

interface Message {
  id?: number | null;
  error?: unknown;
}

process.on('message', (message: Touch | { type: 'exit' }) => {
  if (message.type === 'exit') process.exit(0);
  touch(message).then(
    (result) => process.send!(result),
    (error: unknown) => {
      console.error('streams load:', error);
      process.exit(1);
    },
  );
});
process.send!({ type: 'ready' });
