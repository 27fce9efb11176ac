/**
 * PTY → WebSocket viewer throughput, against reading the PTY directly with node-pty, in the same run:
 * a program writes `seq 1 N` (about 16 MB with the terminal's CR LF) as fast as it can, and each
 * subject is timed from the line that starts it to the last byte in the reader's hands.
 *
 * - `node-pty direct`: node-pty's own `onData`, counting bytes (the baseline: no scrollback, no JSON).
 * - `Terminal (no viewer)`: @lockstep/pty's Terminal — scrollback ring, 16 ms coalescing, release.
 * - `ws viewer ×1` / `ws viewers ×10`: a hub with the terminal extension, `terminal.attach` from raw
 *   `ws` clients that parse each JSON frame and decode its base64 — what a browser does. Bytes per
 *   second are per viewer; `aggregate` multiplies by the number of viewers.
 *
 *   node --conditions=lockstep-source --import tsx packages/pty/bench/ptyThroughput.ts
 *
 * Runs are interleaved; figures are medians. Pin to one core (`taskset -c 0`, as `pnpm bench` does):
 * the program, the hub and the viewers then share it, as they would on a loaded machine. Prints a
 * table, then one `BENCH_RESULT {json}` line for bench/run.ts. LOCKSTEP_BENCH_SMOKE=1 runs tiny sizes.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { builtInDomains } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';
import { spawn as spawnPty } from 'node-pty';
import WebSocket from 'ws';
import { createTerminalExtension, spawnTerminal, type TerminalExtension } from '../src/index.js';

const smoke = process.env.LOCKSTEP_BENCH_SMOKE === '1';
const RUNS = smoke ? 2 : 5;
const LINES = smoke ? 20_000 : 2_000_000;
const READY = 'ready\r\n';
const SCRIPT = `stty -echo; echo ready; read go; exec seq 1 ${LINES}`;
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TERM: 'xterm-256color' };

/** Bytes of `seq 1 LINES` on a terminal (each line ends CR LF). */
function seqBytes(lines: number): number {
  let total = 0;
  for (let digits = 1, low = 1; low <= lines; digits++, low *= 10) total += (Math.min(lines, low * 10 - 1) - low + 1) * (digits + 2);
  return total;
}
const TOTAL = READY.length + seqBytes(LINES);

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(1);
}

type Measure = () => Promise<number>; // seconds from "go" to the last byte

function direct(): Measure {
  return async () => {
    const pty = spawnPty('/bin/sh', ['-c', SCRIPT], { cols: 80, rows: 24, cwd: '/', env, encoding: null });
    let received = 0;
    let done: number | undefined;
    pty.onData((data) => {
      received += (data as unknown as Buffer).length;
      if (received >= TOTAL && done === undefined) done = performance.now();
    });
    const exited = new Promise<void>((resolve) => pty.onExit(() => resolve()));
    await until(() => received >= READY.length);
    const start = performance.now();
    pty.write('go\n');
    // node-pty alone may drop the last bytes on exit (see ptyDrain.ts): then the exit ends the run.
    await Promise.race([until(() => done !== undefined), exited]);
    const end = done ?? performance.now();
    await exited;
    return (end - start) / 1000;
  };
}

function terminalOnly(): Measure {
  return async () => {
    const terminal = spawnTerminal({ file: '/bin/sh', args: ['-c', SCRIPT], cwd: '/' }, { scrollbackBytes: 1 << 20, policy: { sourceEnv: env } });
    let done: number | undefined;
    terminal.onOutput(({ to }) => {
      if (to >= TOTAL && done === undefined) done = performance.now();
    });
    await until(() => terminal.written >= READY.length);
    const start = performance.now();
    terminal.write('go\n');
    await until(() => done !== undefined);
    await terminal.close();
    terminal.dispose();
    return (done! - start) / 1000;
  };
}

async function connectViewer(url: string, terminalId: string): Promise<{ received(): number; close(): void }> {
  const socket = new WebSocket(url, ['lockstep.v1.json']);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let received = 0;
  const answers = new Map<number, () => void>();
  socket.on('message', (data) => {
    const message = JSON.parse((data as Buffer).toString()) as { id?: number; method?: string; params?: { data: string } };
    if (message.id !== undefined) answers.get(message.id)?.();
    else if (message.method === 'terminal.output') received += Buffer.from(message.params!.data, 'base64').length;
  });
  const request = (id: number, method: string, params: unknown) =>
    new Promise<void>((resolve) => {
      answers.set(id, resolve);
      socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  await request(1, 'hello', { protocol: 1 });
  await request(2, 'terminal.attach', { terminalId });
  return { received: () => received, close: () => socket.close() };
}

function viewers(count: number): Measure {
  return async () => {
    let hub: Hub | undefined;
    const extension: TerminalExtension = createTerminalExtension({ hub: () => hub!, scrollbackBytes: 32 * 1024 * 1024, policy: { sourceEnv: env } });
    hub = new Hub({ domains: builtInDomains, services: [extension] });
    const server = createWebSocketServer(hub, { port: 0 });
    await server.ready;
    const terminal = await extension.terminals.spawn({ id: 'bench', file: '/bin/sh', args: ['-c', SCRIPT], cwd: '/' });
    const url = `ws://127.0.0.1:${server.address().port}`;
    const clients = await Promise.all(Array.from({ length: count }, () => connectViewer(url, 'bench')));
    await until(() => terminal.written >= READY.length);
    await until(() => clients.every((client) => client.received() >= READY.length));
    const start = performance.now();
    terminal.write('go\n');
    await until(() => clients.every((client) => client.received() >= TOTAL));
    const seconds = (performance.now() - start) / 1000;
    for (const client of clients) client.close();
    await hub.close();
    await server.close();
    return seconds;
  };
}

const subjects: Array<{ name: string; viewers: number; measure: Measure }> = [
  { name: 'node-pty direct', viewers: 1, measure: direct() },
  { name: 'Terminal (no viewer)', viewers: 1, measure: terminalOnly() },
  { name: 'ws viewer ×1', viewers: 1, measure: viewers(1) },
  { name: 'ws viewers ×10', viewers: 10, measure: viewers(10) },
];

const samples = new Map<string, number[]>(subjects.map((subject) => [subject.name, []]));
for (let run = 0; run < RUNS; run++) {
  for (const subject of subjects) samples.get(subject.name)!.push(await subject.measure());
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
const rows = subjects.map((subject) => {
  const seconds = median(samples.get(subject.name)!);
  const perViewer = TOTAL / seconds / 1e6;
  return { subject: subject.name, metrics: { 'MB/s per reader': perViewer, 'MB/s aggregate': perViewer * subject.viewers, 'ms total': seconds * 1000 } };
});
const rate = (name: string) => rows.find((row) => row.subject === name)!.metrics['MB/s per reader'];
const result = {
  scenario: 'PTY → WebSocket viewer throughput',
  description: `\`seq 1 ${LINES}\` (${(TOTAL / 1e6).toFixed(1)} MB through the terminal) read by node-pty directly, by a Terminal, and by raw ws viewers of the hub (JSON frames, base64 data, decoded); ${RUNS} interleaved runs, medians.`,
  units: { 'MB/s per reader': 'MB/s', 'MB/s aggregate': 'MB/s', 'ms total': 'ms' },
  rows,
  ratios: {
    'ws viewer ×1 / node-pty direct': rate('ws viewer ×1') / rate('node-pty direct'),
    'Terminal / node-pty direct': rate('Terminal (no viewer)') / rate('node-pty direct'),
    'ws viewers ×10 aggregate / node-pty direct': (rate('ws viewers ×10') * 10) / rate('node-pty direct'),
  },
  notes: ['every figure includes the program writing its output; one core for the program, the hub and the viewers when pinned'],
};

console.table(rows.map((row) => ({ subject: row.subject, ...Object.fromEntries(Object.entries(row.metrics).map(([k, v]) => [k, Number(v.toFixed(1))])) })));
console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
process.exit(0);
