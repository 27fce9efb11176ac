/**
 * The load side of bench/fanout.bench.ts, in a process of its own (on another core when there is
 * one): N subscribers and one writer over plain `ws` sockets, speaking each subject's wire protocol
 * directly — lockstep/1 JSON-RPC, a hand-written JSON relay, Socket.IO's engine.io protocol, or
 * Logux's protocol (version 5: `connect`, `sync`, `synced`, `ping`) — so every subject gets the same
 * cheap receivers and the hub process is what is measured.
 *
 * A receiver does not parse frames, nor even turn them into strings: it finds each `"version":N` in
 * the bytes of an events frame and records the time since the command that produced that version
 * was sent (same process, same clock). The cheaper the receivers, the later this process becomes
 * the limit instead of the server.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export type FanoutSubject = 'lockstep' | 'raw' | 'socketio' | 'logux';

export interface FanoutRun {
  type: 'run';
  subject: FanoutSubject;
  url: string;
  stream: string;
  tag: string;
  subscribers: number;
  commands: number;
  /** Commands per second, sent on schedule whatever the answers do. */
  rate: number;
  /** How long to wait for the last deliveries after the last command, before giving up. */
  drainTimeoutMs: number;
}

export interface FanoutResult {
  type: 'result';
  deliveries: number;
  /** Frames that carried at least one of the run's events, over all subscribers. */
  frames: number;
  expected: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
  /** Subscribers that did not receive the last version in time. */
  incomplete: number;
  /** Notifications other than events that a lockstep subscriber received (resync: it was shed). */
  resyncs: number;
  /** CPU time of this process over the run, as a fraction of one core. */
  loadCpu: number;
}

const EVENTS_PREFIX = Buffer.from('{"jsonrpc":"2.0","method":"events"');
const VERSION_KEY = Buffer.from('"version":');
/** Event versions start here: version 1 is the task.create every run begins with. */
const FIRST = 2;

/** Calls `found` with every number that follows `"version":` in the frame. */
function scanVersions(frame: Buffer, found: (version: number) => void): void {
  let at = frame.indexOf(VERSION_KEY);
  while (at !== -1) {
    let i = at + VERSION_KEY.length;
    let version = 0;
    for (let c = frame[i]!; c >= 48 && c <= 57; c = frame[++i]!) version = version * 10 + (c - 48);
    found(version);
    at = frame.indexOf(VERSION_KEY, i);
  }
}

const LOGUX_SYNC = Buffer.from('["sync",');
const isLoguxSync = (frame: Buffer) => frame.length > LOGUX_SYNC.length && frame.compare(LOGUX_SYNC, 0, LOGUX_SYNC.length, 0, LOGUX_SYNC.length) === 0;
/** The `added` number of a Logux `sync` message: what its `synced` answer must carry. */
function loguxAdded(frame: Buffer): number {
  let added = 0;
  for (let i = LOGUX_SYNC.length, c = frame[i]!; c >= 48 && c <= 57; c = frame[++i]!) added = added * 10 + (c - 48);
  return added;
}
let loguxNodes = 0;
/** The writer's `connected` time from the Logux server: its meta times are relative to it. */
let loguxBaseTime = 0;

const isEvents = (frame: Buffer) =>
  frame.length >= EVENTS_PREFIX.length && frame.compare(EVENTS_PREFIX, 0, EVENTS_PREFIX.length, 0, EVENTS_PREFIX.length) === 0;

/** Opens a socket; `onMessage` is attached at once (a server may speak first, in the upgrade's own packet). */
function open(url: string, protocols: string | undefined, onMessage: (frame: Buffer, socket: WebSocket) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = protocols ? new WebSocket(url, protocols, { perMessageDeflate: false }) : new WebSocket(url, { perMessageDeflate: false });
    socket.on('message', (data) => onMessage(data as Buffer, socket));
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A one-connection wire client for each subject: connect, then send commands. */
interface Link {
  socket: WebSocket;
  ready: Promise<void>;
}

/** Connects a socket for `subject`; `onFrame` sees every frame after the handshake. */
async function connect(run: FanoutRun, role: 'writer' | 'sub', onFrame: (frame: Buffer) => void): Promise<Link> {
  let ready!: () => void;
  let failed!: (error: Error) => void;
  const handshake = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  if (run.subject === 'lockstep') {
    const socket = await open(run.url, 'lockstep.v1.json', (frame) => {
      if (isEvents(frame)) return onFrame(frame);
      const message = JSON.parse(frame.toString()) as { id?: number; error?: unknown; method?: string };
      if (message.error !== undefined && (message.id === 1 || message.id === 2)) failed(new Error(`lockstep handshake: ${JSON.stringify(message.error)}`));
      else if (role === 'writer' ? message.id === 1 : message.id === 2) ready();
      onFrame(frame);
    });
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1 } }));
    if (role === 'sub') socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'subscribe', params: { stream: run.stream } }));
    return { socket, ready: handshake };
  }
  if (run.subject === 'raw') {
    const socket = await open(`${run.url}/${role}`, undefined, onFrame);
    return { socket, ready: Promise.resolve() };
  }
  if (run.subject === 'logux') {
    // Logux: `connect` → `connected`; a subscriber then syncs a `logux/subscribe` and is ready at its
    // `logux/processed`. Every `sync` the server sends is answered with `synced` (the server keeps a
    // timer per unanswered one), every `ping` with `pong`.
    const node = `bench:${role}${++loguxNodes}`;
    let subscribeId = '';
    const socket = await open(run.url, undefined, (frame, socket) => {
      if (isLoguxSync(frame)) {
        socket.send(`["synced",${loguxAdded(frame)}]`);
        if (subscribeId && frame.includes('"logux/processed"') && frame.includes(subscribeId)) {
          subscribeId = '';
          ready();
        }
        return onFrame(frame);
      }
      const message = JSON.parse(frame.toString()) as [string, ...unknown[]];
      if (message[0] === 'connected') {
        const baseTime = (message[3] as [number, number])[1];
        if (role === 'writer') {
          loguxBaseTime = baseTime;
          return ready();
        }
        const time = Date.now() - baseTime;
        subscribeId = `${node} 1"`;
        socket.send(JSON.stringify(['sync', 1, { type: 'logux/subscribe', channel: run.stream }, { id: [time, 1], time }]));
      } else if (message[0] === 'ping') socket.send(JSON.stringify(['pong', message[1]]));
      else if (message[0] === 'error') failed(new Error(`logux: ${frame.toString()}`));
    });
    socket.send(JSON.stringify(['connect', 5, node, 0, { subprotocol: 1 }]));
    return { socket, ready: handshake };
  }
  // Socket.IO over its WebSocket transport: engine.io packets (0 open, 2 ping, 3 pong, 4 message),
  // socket.io packets inside (0 connect, 2 event).
  const socket = await open(`${run.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, undefined, (frame, socket) => {
    // 0x34 0x32: "42", an event.
    if (frame[0] === 0x34 && frame[1] === 0x32) return onFrame(frame);
    const text = frame.toString();
    if (text === '2') socket.send('3');
    else if (text.startsWith('0')) socket.send(`40${JSON.stringify({ role })}`);
    else if (text.startsWith('40')) ready();
  });
  return { socket, ready: handshake };
}

function commandFrame(run: FanoutRun, seq: number, payload: unknown, type = 'task.update'): string {
  const command = { id: `${run.tag}-${seq}`, stream: run.stream, type, payload };
  if (run.subject === 'lockstep') return JSON.stringify({ jsonrpc: '2.0', id: 100 + seq, method: 'command', params: command });
  if (run.subject === 'raw') return JSON.stringify(command);
  if (run.subject === 'logux') {
    // Logux has no stream version: the writer numbers its actions as the versions would go.
    // Meta times are relative to the server's `connected` time; the id is [time, sequence].
    const time = Date.now() - loguxBaseTime;
    return JSON.stringify(['sync', seq + 2, { type, stream: run.stream, version: FIRST + seq, payload }, { id: [time, seq + 2], time }]);
  }
  return `42${JSON.stringify(['command', command])}`;
}

function quantileSorted(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function execute(run: FanoutRun): Promise<FanoutResult> {
  const sentAt = new Float64Array(run.commands);
  const latencies = new Float64Array(run.commands * run.subscribers);
  let deliveries = 0;
  let frames = 0;
  let resyncs = 0;
  let lastDelivery = 0;
  const last = new Int32Array(run.subscribers);
  const lastVersion = FIRST + run.commands - 1;
  let complete = 0;
  let allDelivered: () => void = () => {};
  const delivered = new Promise<void>((resolve) => (allDelivered = resolve));

  // The writer first creates the task (version 1), so subscribers start from a snapshot of it.
  let created: () => void = () => {};
  const taskCreated = new Promise<void>((resolve) => (created = resolve));
  const writer = await connect(run, 'writer', (frame) => {
    if (run.subject === 'lockstep' && frame.includes('"id":99,')) created();
  });
  await writer.ready;
  const task = { id: 'task_bench', title: 'Fan-out' };
  if (run.subject === 'lockstep') {
    writer.socket.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 99,
        method: 'command',
        params: { id: `${run.tag}-create`, stream: run.stream, type: 'task.create', payload: task },
      }),
    );
    await taskCreated;
  }

  const subscribers: Link[] = [];
  for (let s = 0; s < run.subscribers; s++) {
    const index = s;
    const link = await connect(run, 'sub', (frame) => {
      if (run.subject === 'lockstep' && !isEvents(frame)) {
        if (frame.includes('"method":"resync"')) resyncs++;
        return;
      }
      const now = performance.now();
      const before = deliveries;
      scanVersions(frame, (version) => {
        const seq = version - FIRST;
        if (seq < 0 || seq >= run.commands) return;
        latencies[deliveries++] = now - sentAt[seq]!;
        last[index] = version;
        if (version === lastVersion && ++complete === run.subscribers) allDelivered();
      });
      if (deliveries > before) frames++;
      lastDelivery = now;
    });
    subscribers.push(link);
    // Connect in waves, not all at once: the backlog of a listening socket is finite.
    if (s % 50 === 49) await Promise.all(subscribers.slice(s - 49).map((sub) => sub.ready));
  }
  await Promise.all(subscribers.map((sub) => sub.ready));
  // Socket.IO joins rooms on the server's side: one round trip of the writer lets those finish.
  await new Promise((resolve) => setTimeout(resolve, 200));

  const cpu = process.cpuUsage();
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(run.commands, Math.floor(((performance.now() - start) * run.rate) / 1_000) + 1);
      while (sent < due) {
        sentAt[sent] = performance.now();
        writer.socket.send(commandFrame(run, sent, { ...task, title: `Fan-out ${run.tag}.${sent}` }));
        sent++;
      }
      if (sent < run.commands) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([delivered, new Promise<void>((resolve) => (timer = setTimeout(resolve, run.drainTimeoutMs)))]);
  clearTimeout(timer);
  const used = process.cpuUsage(cpu);
  const gaveUp = performance.now();
  const wall = (gaveUp - start) / 1_000;
  const seconds = (lastDelivery - start) / 1_000;

  for (const sub of subscribers) sub.socket.terminate();
  writer.socket.terminate();
  // A delivery that never came counts with the time until the run gave up on it (each subscriber
  // receives in order, so what it misses is everything after its last version): with any missing,
  // p50/p99 are lower bounds rather than the figures of the deliveries that happened to be fast.
  let missing = 0;
  for (let s = 0; s < run.subscribers && complete < run.subscribers; s++) {
    for (let version = Math.max(last[s]! + 1, FIRST); version <= lastVersion; version++) latencies[deliveries + missing++] = gaveUp - sentAt[version - FIRST]!;
  }
  const recorded = latencies.subarray(0, deliveries + missing).sort();
  return {
    type: 'result',
    deliveries,
    frames,
    expected: run.commands * run.subscribers,
    seconds,
    p50: quantileSorted(recorded, 0.5),
    p99: quantileSorted(recorded, 0.99),
    max: quantileSorted(recorded, 1),
    incomplete: run.subscribers - complete,
    resyncs,
    loadCpu: (used.user + used.system) / 1e6 / wall,
  };
}

process.on('message', (message: FanoutRun | { type: 'exit' }) => {
  if (message.type === 'exit') process.exit(0);
  execute(message).then(
    (result) => process.send!(result),
    (error: unknown) => {
      console.error('fanout load:', error);
      process.exit(1);
    },
  );
});
process.send!({ type: 'ready' });
