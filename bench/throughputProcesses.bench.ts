/**
 * Throughput with every server in its own process (issue 18): the in-process throughput scenario
 * measures the writer's client, the server and the reader's client on one core; here each server —
 * a Lockstep hub, the raw ws relay (acking each command) and Logux — runs in a process of its own
 * pinned to core 0 (bench/throughputServer.ts), and the writer and the reader run in one load
 * process pinned to core 1 (bench/throughputLoad.ts), so the server has a core to itself.
 *
 * One writer pipelines `task.update` commands on one stream; one reader receives the events;
 * events/s at the reader, from the first send to the last event. Also: the server's CPU time per
 * event, and the load process's CPU use (near 1: the load, not the server, was the limit).
 *
 * This process only coordinates (it is idle while a run goes). Subjects alternate, one unmeasured
 * warm-up run each, several runs, medians; ratios are medians of the same-round ratios.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WARM_UP, interleave, pairedRatio, round } from './harness.js';
import { report, smoke } from './stats.js';
import type { LoadResult, LoadRun } from './throughputLoad.js';
import type { ServerKind, ServerReply, ServerRequest } from './throughputServer.js';

const RUNS = smoke ? 1 : 9;
const COMMANDS = smoke ? 300 : 20_000;

const twoCores = cpus().length >= 2;

/** A child process pinned to `core` (when the machine has two), with request/answer over IPC. */
function child<Request, Reply>(file: string, args: string[], core: number) {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const pin = twoCores ? ['taskset', '-c', String(core)] : [];
  const proc: ChildProcess = fork(path, args, {
    execPath: pin.length ? pin[0] : process.execPath,
    execArgv: pin.length ? [...pin.slice(1), process.execPath, ...process.execArgv] : process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: Array<(reply: Reply) => void> = [];
  proc.on('message', (message) => waiting.shift()?.(message as Reply));
  proc.on('exit', (code) => {
    if (code !== 0 && code !== null) {
      console.error(`throughput (processes): ${file} ${args.join(' ')} exited with ${code}`);
      process.exit(1);
    }
  });
  const next = () => new Promise<Reply>((resolve) => waiting.push(resolve));
  return {
    ready: next(),
    request(message: Request): Promise<Reply> {
      const reply = next();
      proc.send(message as object);
      return reply;
    },
    exit: () => proc.send({ type: 'exit' }),
  };
}

interface Subject {
  name: string;
  kind: ServerKind;
}

interface Metrics {
  [metric: string]: number;
  eventsPerSecond: number;
  /** The server process's CPU time per event (start to stop of its server: the run and its acks). */
  serverCpuPerEvent: number;
  loadCpu: number;
}

const subjects: Subject[] = [
  { name: 'lockstep hub (raw lockstep/1 peers, batches)', kind: 'lockstep' },
  { name: 'raw ws relay with acks (one per frame)', kind: 'raw' },
  { name: 'Logux (@logux/server 0.14, @logux/core clients)', kind: 'logux' },
];
// A process per server; a smoke run shares one between them, to start in about a second less.
const shared = smoke ? child<ServerRequest, ServerReply>('./throughputServer.ts', [], 0) : undefined;
const servers = new Map(subjects.map((subject) => [subject.kind, shared ?? child<ServerRequest, ServerReply>('./throughputServer.ts', [subject.kind], 0)]));
const load = child<LoadRun | { type: 'exit' }, LoadResult>('./throughputLoad.ts', [], 1);
await Promise.all([load.ready, ...new Set([...servers.values()].map((server) => server.ready))]);

async function measure(subject: Subject, run: number): Promise<Metrics> {
  const server = servers.get(subject.kind)!;
  const started = await server.request({ type: 'start', kind: subject.kind });
  if (started.type !== 'listening') throw new Error(`throughput (processes): ${subject.kind} answered ${started.type}`);
  const commands = run === WARM_UP ? Math.ceil(COMMANDS / 3) : COMMANDS;
  const result = await load.request({ type: 'run', kind: subject.kind, url: started.url, tag: run === WARM_UP ? 'warm' : `r${run}`, commands });
  const stopped = await server.request({ type: 'stop' });
  if (stopped.type !== 'stopped') throw new Error(`throughput (processes): ${subject.kind} answered ${stopped.type}`);
  return { eventsPerSecond: result.eventsPerSecond, serverCpuPerEvent: (stopped.cpuSeconds * 1e6) / commands, loadCpu: result.loadCpu };
}

console.error(
  `throughput, servers in their own processes: ${COMMANDS} updates × ${RUNS} runs${smoke ? ' (smoke)' : ''}; servers ${twoCores ? 'on core 0, load on core 1' : 'and load on the same core'}`,
);
const results = await interleave(subjects, RUNS, measure, { warmUp: !smoke });
load.exit();
for (const server of new Set(servers.values())) server.exit();

const rows = [...results].map(([subject, { medians }]) => ({ subject: subject.name, metrics: medians }));
const [lockstep, raw, logux] = subjects as [Subject, Subject, Subject];
const ratios = {
  'lockstep / raw relay, events/s (target ≥ 0.9)': pairedRatio(results, lockstep, raw, 'eventsPerSecond'),
  'lockstep / Logux, events/s (target ≥ 5)': pairedRatio(results, lockstep, logux, 'eventsPerSecond'),
  'lockstep / raw relay, server CPU per event': pairedRatio(results, lockstep, raw, 'serverCpuPerEvent'),
  'lockstep / Logux, server CPU per event': pairedRatio(results, lockstep, logux, 'serverCpuPerEvent'),
};
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
report({
  scenario: 'throughput, server in its own process',
  description: `One writer pipelines ${COMMANDS} \`task.update\` commands on one stream; one reader receives the events over ws on loopback; events/s at the reader, from the first send to the last event. Each server in a process of its own (${twoCores ? 'core 0' : 'same core'}), writer and reader in a load process (${twoCores ? 'core 1' : 'same core'}); ${smoke ? '' : `each subject warmed up by one unmeasured run of ${Math.ceil(COMMANDS / 3)} commands, then `}${RUNS} interleaved runs, medians; ratios are medians of the same-round ratios.`,
  units: { eventsPerSecond: 'events/s', serverCpuPerEvent: 'µs', loadCpu: 'cores' },
  rows,
  ratios,
  notes: [
    'Lockstep: the hub of the in-process scenario (validation, dedup, decide, append to the memory store, evolve), an ack per command to the writer; the load speaks lockstep/1 with batches, as `@lockstep/client` does (frames of up to 512 messages, 64 KiB).',
    'Raw relay: parses each command, sends the reader one JSON event and the writer one ack, each in a frame of its own; no validation, state or storage.',
    'Logux: `@logux/server` 0.14 (`access` with the tasks domain’s zod schema, `resend` to the stream’s channel, `process` records it, `logux/processed` acks it), two `@logux/core` clients in the load process. See docs/performance.md, "The peer: Logux".',
    'The lockstep and raw peers find each `"version":N` in the bytes instead of parsing (acks and events both carry one); `loadCpu` near 1 means the load, not the server, was the limit.',
  ],
});
process.exit(0);
