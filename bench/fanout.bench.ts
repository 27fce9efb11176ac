/**
 * Fan-out (issue 8): one writer sends `task.update` commands at a steady 1,000 a second; every one
 * of N subscribers (500, and 1,000 unless LOCKSTEP_BENCH_FANOUT says otherwise) receives every
 * event. Measured: deliveries per second (events received by all subscribers together, from the
 * first command to the last delivery), command → delivery latency (p50, p99, over every delivery),
 * and the server's CPU time per delivery.
 *
 * This process is the server (a Lockstep hub, a raw `ws` broadcast, a Socket.IO room), pinned to
 * core 0 by bench/run.ts. The writer and the subscribers run in bench/fanoutLoad.ts, a process of
 * their own pinned to core 1 when the machine has two cores — see docs/performance.md for why.
 *
 * - lockstep: lockstep/1 over WebSocket (JSON); commands batch per stream while the hub is busy,
 *   each batch is encoded once and the same frame goes to every subscriber; writes are corked per tick.
 * - raw ws broadcast: the server parses each command and sends one JSON event per frame to every
 *   subscriber (stringified once per message).
 * - Socket.IO: `io.to(room).emit(…)` per command (WebSocket transport only).
 * - Logux: `@logux/server` 0.14 (bench/logux.ts): the subscribers are in the stream's channel, each
 *   action is checked in `access` (the tasks domain's zod schema) and resent to the channel, one
 *   `sync` message per action and subscriber, each answered by `synced`.
 */
import { fork } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WARM_UP, interleave, lockstepServer, pairedRatio, rawEvent, rawWsServer, round, socketIoServer } from './harness.js';
import type { FanoutResult, FanoutRun, FanoutSubject } from './fanoutLoad.js';
import { loguxServer } from './logux.js';
import { report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 3;
const RATE = 1_000;
const COMMANDS = smoke ? 100 : 3_000;
const SIZES = smoke ? [20] : (process.env['LOCKSTEP_BENCH_FANOUT'] ?? '500,1000').split(',').map(Number);

const cores = cpus().length;
const loadFile = fileURLToPath(new URL('./fanoutLoad.ts', import.meta.url));
// The load process on the other core (children of a pinned process inherit its core otherwise).
const pinLoad = cores >= 2 ? ['taskset', '-c', '1'] : [];
const load = fork(loadFile, [], {
  execPath: pinLoad.length ? pinLoad[0] : process.execPath,
  execArgv: pinLoad.length ? [...pinLoad.slice(1), process.execPath, ...process.execArgv] : process.execArgv,
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const messages: Array<(message: unknown) => void> = [];
load.on('message', (message) => messages.shift()?.(message));
const next = <T>() => new Promise<T>((resolve) => messages.push(resolve as (message: unknown) => void));
load.on('exit', (code) => {
  if (code !== 0 && code !== null) {
    console.error(`fanout: the load process exited with ${code}`);
    process.exit(1);
  }
});
await next<{ type: 'ready' }>();

interface Server {
  url: string;
  close(): Promise<void>;
}

async function lockstepSide(): Promise<Server> {
  return lockstepServer();
}

async function rawSide(): Promise<Server> {
  const server = await rawWsServer();
  const subscribers = new Set<import('ws').WebSocket>();
  let version = 1;
  server.wss.on('connection', (socket, request) => {
    if (request.url === '/sub') {
      subscribers.add(socket);
      socket.on('close', () => subscribers.delete(socket));
      return;
    }
    socket.on('message', (data) => {
      const command = JSON.parse((data as Buffer).toString()) as { id: string; stream: string; payload: { id: string; title: string } };
      const text = JSON.stringify(rawEvent(command.stream, ++version, command.payload, command.id));
      for (const subscriber of subscribers) subscriber.send(text);
    });
  });
  return server;
}

async function socketIoSide(stream: string): Promise<Server> {
  const server = await socketIoServer();
  let version = 1;
  server.io.on('connection', (socket) => {
    if (socket.handshake.auth['role'] === 'sub') void socket.join(stream);
    socket.on('command', (command: { id: string; payload: { id: string; title: string } }) => {
      server.io.to(stream).emit('events', rawEvent(stream, ++version, command.payload, command.id));
    });
  });
  return server;
}

interface Subject {
  name: string;
  kind: FanoutSubject;
  subscribers: number;
}

interface Metrics {
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
  serverCpuPerDelivery: number;
  eventsPerFrame: number;
  loadCpu: number;
  [key: string]: number;
}

async function measure(subject: Subject, run: number): Promise<Metrics> {
  const warmUp = run === WARM_UP;
  const tag = `${warmUp ? 'warm' : `r${run}`}n${subject.subscribers}`;
  const stream = `tasks/fanout-${tag}`;
  const server =
    subject.kind === 'lockstep'
      ? await lockstepSide()
      : subject.kind === 'raw'
        ? await rawSide()
        : subject.kind === 'logux'
          ? await loguxServer()
          : await socketIoSide(stream);
  try {
    const cpu = process.cpuUsage();
    const request: FanoutRun = {
      type: 'run',
      subject: subject.kind,
      url: server.url,
      stream,
      tag,
      subscribers: subject.subscribers,
      // A third of the commands warms up both processes' code paths and heaps.
      commands: warmUp ? Math.ceil(COMMANDS / 3) : COMMANDS,
      rate: RATE,
      drainTimeoutMs: 60_000,
    };
    load.send(request);
    const result = await next<FanoutResult>();
    const used = process.cpuUsage(cpu);
    if (result.incomplete > 0 || result.resyncs > 0) {
      console.error(
        `  ${subject.name}: ${result.incomplete} subscribers incomplete, ${result.resyncs} resyncs, ${result.deliveries}/${result.expected} deliveries`,
      );
    }
    return {
      deliveriesPerSecond: result.deliveries / result.seconds,
      p50: result.p50,
      p99: result.p99,
      // Includes connecting the subscribers, the same for every subject.
      serverCpuPerDelivery: (used.user + used.system) / result.deliveries,
      // How many events a subscriber's frame carried on average: what batching under load achieved.
      eventsPerFrame: result.deliveries / result.frames,
      loadCpu: result.loadCpu,
      complete: result.deliveries / result.expected,
    };
  } finally {
    await server.close();
  }
}

const subjects: Subject[] = SIZES.flatMap((subscribers) => [
  { name: `lockstep ×${subscribers}`, kind: 'lockstep' as const, subscribers },
  { name: `raw ws broadcast ×${subscribers}`, kind: 'raw' as const, subscribers },
  { name: `Socket.IO room ×${subscribers}`, kind: 'socketio' as const, subscribers },
  { name: `Logux channel ×${subscribers}`, kind: 'logux' as const, subscribers },
]);
console.error(
  `fan-out: ${COMMANDS} commands at ${RATE}/s to ${SIZES.join(' and ')} subscribers × ${RUNS} runs${smoke ? ' (smoke)' : ''}; load process ${pinLoad.length ? 'on core 1' : 'on the same core'}`,
);
const results = new Map<Subject, { medians: Metrics; samples: Metrics[] }>();
for (const size of SIZES) {
  const group = subjects.filter((subject) => subject.subscribers === size);
  for (const [subject, result] of await interleave(group, RUNS, measure, { warmUp: !smoke })) results.set(subject, result);
}
load.send({ type: 'exit' });

const rows = [...results].map(([subject, { medians }]) => ({ subject: subject.name, metrics: medians }));
const ratios: Record<string, number> = {};
for (const size of SIZES) {
  const [lockstep, raw, socketIo, logux] = subjects.filter((subject) => subject.subscribers === size) as [Subject, Subject, Subject, Subject];
  ratios[`×${size}: lockstep / raw ws deliveries/s (target ≥ 1)`] = pairedRatio(results, lockstep, raw, 'deliveriesPerSecond');
  ratios[`×${size}: lockstep / Socket.IO p99 (target < 1, and p99 ≤ 25 ms)`] = pairedRatio(results, lockstep, socketIo, 'p99');
  ratios[`×${size}: lockstep / Logux p99 (target < 1)`] = pairedRatio(results, lockstep, logux, 'p99');
  ratios[`×${size}: lockstep / Logux deliveries/s`] = pairedRatio(results, lockstep, logux, 'deliveriesPerSecond');
  ratios[`×${size}: lockstep / raw ws server CPU per delivery`] = pairedRatio(results, lockstep, raw, 'serverCpuPerDelivery');
}
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
report({
  scenario: 'fan-out',
  description: `One writer at a steady ${RATE} commands/s (${COMMANDS} commands), every subscriber receives every event over ws on loopback. Server in this process (core 0), writer and subscribers in another (${pinLoad.length ? 'core 1' : 'same core'}); ${smoke ? '' : `each subject warmed up by one unmeasured run of ${Math.ceil(COMMANDS / 3)} commands, then `}${RUNS} interleaved runs, medians.`,
  units: {
    deliveriesPerSecond: 'deliveries/s',
    p50: 'ms',
    p99: 'ms',
    serverCpuPerDelivery: 'µs',
    eventsPerFrame: 'events',
    loadCpu: 'cores',
    complete: 'fraction',
  },
  rows,
  ratios,
  notes: [
    `Offered load: ${RATE} × subscribers deliveries/s. A server that keeps up delivers about that; one that falls behind delivers its capacity, and its latency grows for as long as the run lasts.`,
    'Latency: from the writer sending a command to a subscriber reading the frame that holds its event, over every delivery. Server CPU per delivery includes accepting the connections (the same work for every subject).',
    `A run gives up 60 s after its last command; a delivery that had not come by then counts with the time until then, so for a subject with \`complete\` below 1 the p50 and p99 are lower bounds.`,
    'Logux: `@logux/server` 0.14, a channel per stream, `access` with the tasks domain’s zod schema, `resend` to the channel; its subscribers speak its protocol directly (each `sync` answered by `synced`), as the other subjects’ do. Logux has no stream version: the writer numbers its actions.',
    '`loadCpu` is the load process’s CPU use in cores: near 1 means the subscribers, not the server, were the limit.',
  ],
});
