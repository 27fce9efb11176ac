/**
 * Logux, the closest peer (issue 18, item 5): a `@logux/server` 0.14 server and `@logux/core` 0.10
 * clients, set up the way the benchmarks compare them with Lockstep — see docs/performance.md,
 * "The peer: Logux", for the setup and why it is fair.
 *
 * - `BaseServer` (what `Server` is made of, minus its console reporter, which writes a line per
 *   action, and its process-wide signal handlers) with its default `MemoryStore` as the log store,
 *   on a counting HTTP server, `NODE_ENV=production`.
 * - One channel per stream (`tasks/:project`); a client subscribes with `logux/subscribe`, and with
 *   `since` when it comes back: the channel's `load` sends it, one action each, what it missed.
 * - `task.update` actions: `access` validates the payload with the zod schema of Lockstep's own
 *   tasks domain (`tasksDomain.parseCommand`), `resend` sends the action to its stream's channel,
 *   `process` appends it to the stream's history — the application's store, what `load` reads.
 * - The log keeps no client action once it is sent on (no `reasons`: Logux's default). Keeping
 *   them there, with a reason and an index per stream, makes every add scan the whole log
 *   (`MemoryStore.add` walks its entries to find the insertion point): 5–7k events/s fell to
 *   1.0–1.4k with 5,000 kept. `LOCKSTEP_BENCH_LOGUX_KEEP=1` turns that on, to see it.
 *
 * Logux has no stream version: the writer numbers its actions (`version`), and the server relays
 * them as they are.
 */
import { ClientNode, Log, MemoryStore, WsConnection, type Action, type Meta } from '@logux/core';
import { BaseServer } from '@logux/server';
import { tasksDomain } from '@lockstep/core';
import WebSocket from 'ws';
import { countingHttpServer, type CountingHttpServer } from './harness.js';

// What the issue asks of the peer; @logux/core's Log skips its development checks in production.
process.env['NODE_ENV'] = 'production';

export const LOGUX_SUBPROTOCOL = 1;
const keepInLog = process.env['LOCKSTEP_BENCH_LOGUX_KEEP'] === '1';

/** A task action as Logux relays it: the stream it belongs to, the writer's number, the payload. */
export interface TaskAction extends Action {
  type: 'task.update' | 'task.create';
  stream: string;
  version: number;
  payload: { id: string; title: string };
}

export interface LoguxSubscribe extends Action {
  type: 'logux/subscribe';
  channel: string;
  since?: { id: string; time: number };
}

/** One stream's history: every action with its id and time, in the order the server processed them. */
export type History = Array<{ action: TaskAction; id: string; time: number }>;

export interface LoguxServer {
  server: BaseServer;
  http: CountingHttpServer;
  url: string;
  /** The application's store: each stream's actions (what `process` appends and `load` reads). */
  history(stream: string): History;
  close(): Promise<void>;
}

export async function loguxServer(): Promise<LoguxServer> {
  const http = await countingHttpServer();
  const server = new BaseServer({
    subprotocol: LOGUX_SUBPROTOCOL,
    minSubprotocol: LOGUX_SUBPROTOCOL,
    server: http.server,
    disableHttpServer: true,
    env: 'production',
    store: new MemoryStore(),
  });
  // Every benchmark client is let in, as the Lockstep hub of the benchmarks lets everyone in.
  server.auth(() => true);

  const streams = new Map<string, History>();
  const history = (stream: string) => {
    let list = streams.get(stream);
    if (!list) streams.set(stream, (list = []));
    return list;
  };

  if (keepInLog) {
    server.on('preadd', (action, meta) => {
      // Not the copies `load` sends back to one client (those carry `clients`).
      if (action.type !== 'task.update' || meta.clients) return;
      const stream = (action as TaskAction).stream;
      meta.reasons.push(stream);
      meta.indexes = [stream];
    });
  }

  server.type<TaskAction>('task.update', {
    access(_ctx, action) {
      if (typeof action.stream !== 'string' || !action.stream.startsWith('tasks/')) return false;
      try {
        tasksDomain.parseCommand('task.update', action.payload);
        return true;
      } catch {
        return false;
      }
    },
    resend(_ctx, action) {
      return { channel: action.stream };
    },
    process(_ctx, action, meta) {
      history(action.stream).push({ action, id: meta.id, time: meta.time });
    },
  });

  server.channel<{ project: string }, Record<string, never>, LoguxSubscribe>('tasks/:project', {
    access() {
      return true;
    },
    load(_ctx, action) {
      // What the subscriber missed (everything, on a first subscribe), one action each, in order.
      const list = history(action.channel);
      const since = action.since;
      let from = 0;
      if (since) {
        from = list.length;
        while (from > 0 && list[from - 1]!.time > since.time) from--;
      }
      return list.slice(from).map((entry) => ({ ...entry.action }));
    },
  });

  await server.listen();
  return {
    server,
    http,
    url: `ws://127.0.0.1:${http.port}`,
    history,
    async close() {
      await server.destroy();
      await http.close();
    },
  };
}

export interface LoguxClient {
  node: ClientNode;
  log: Log;
  connection: WsConnection;
  /** Resolves once the node is connected and authenticated (again, after `reconnect`). */
  synchronized(): Promise<void>;
  /** Adds an action to the client's log: the node sends it to the server. */
  add(action: Action): Promise<Meta | false>;
  /** Subscribes to a channel; resolves when the server has processed it (after `load`). */
  subscribe(channel: string, since?: { id: string; time: number }): Promise<void>;
  disconnect(): void;
  reconnect(): Promise<void>;
  close(): void;
}

let clients = 0;

/**
 * A `@logux/core` client: a `ClientNode` with a memory log over `WsConnection` (`ws`). It sends what
 * is added to its log, with the meta the server accepts (`id`, `time`), as `@logux/client` does.
 */
export function loguxClient(url: string, user = 'bench'): LoguxClient {
  const nodeId = `${user}:c${++clients}`;
  const log = new Log({ nodeId, store: new MemoryStore() });
  const connection = new WsConnection(url, WebSocket, { perMessageDeflate: false });
  const node = new ClientNode(nodeId, log, connection, {
    subprotocol: LOGUX_SUBPROTOCOL,
    // The meta the server accepts from a client: `id` and `time` (the server sets the rest).
    onSend: (action, meta) => [action, { id: meta.id, time: meta.time } as Meta],
  });
  let closed = false;
  node.catch((error) => {
    if (!closed) console.error(`logux client ${nodeId}:`, error);
  });
  // The server answers an action of this client with `logux/processed`, or `logux/undo` when it refuses it.
  const answers = new Map<string, { resolve(): void; reject(error: Error): void }>();
  log.on('add', (action) => {
    if (action.type === 'logux/processed') answers.get((action as Action & { id: string }).id)?.resolve();
    else if (action.type === 'logux/undo') answers.get((action as Action & { id: string }).id)?.reject(new Error(`logux: ${JSON.stringify(action)}`));
  });
  const synchronized = () =>
    new Promise<void>((resolve, reject) => {
      if (node.authenticated && node.state !== 'connecting') return resolve();
      const stop = node.on('state', () => {
        if (node.authenticated && (node.state === 'synchronized' || node.state === 'sending')) {
          stop();
          resolve();
        } else if (node.state === 'disconnected' && closed) {
          stop();
          reject(new Error('closed'));
        }
      });
    });
  void connection.connect();
  return {
    node,
    log,
    connection,
    synchronized,
    add: (action) => log.add(action),
    async subscribe(channel, since) {
      const action: LoguxSubscribe = since ? { type: 'logux/subscribe', channel, since } : { type: 'logux/subscribe', channel };
      const id = log.generateId();
      const done = new Promise<void>((resolve, reject) => answers.set(id, { resolve, reject }));
      try {
        await log.add(action, { id });
        await done;
      } finally {
        answers.delete(id);
      }
    },
    disconnect: () => connection.disconnect(),
    async reconnect() {
      await connection.connect();
      await synchronized();
    },
    close() {
      closed = true;
      node.destroy();
    },
  };
}
