/**
 * Command → ack round trips over stdio pipes to a child process, sequential (one in flight):
 *
 *   - lockstep client → hub child:   `stream.dispatch()` until it resolves (its events applied: with
 *                                    eventAcks they are its ack);
 *   - stdio transport → hub child:   a raw `command` request over Lockstep's stdio transport;
 *   - vscode-jsonrpc → hub child:    a raw `command` request to the same kind of hub child;
 *   - vscode-jsonrpc → echo child:   the baseline — a vscode-jsonrpc server that answers at once.
 *
 * Subjects run interleaved (run 1 of each, run 2 of each, …) over processes started once; figures
 * are the medians over runs of each run's p50 and p99. For a stable ratio pin everything to one
 * core: `taskset -c 0 node --conditions=lockstep-source --import tsx packages/stdio/bench/stdioRoundTrip.ts`
 * (children inherit the pinning). `LOCKSTEP_BENCH_SMOKE=1` runs tiny sizes.
 *
 * Prints a table on stderr, and one `BENCH_RESULT <json>` line on stdout for the bench runner.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { orchestrationDomain } from '@lockstep/core';
import { createStdioTransport } from '@lockstep/stdio';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';

const smoke = process.env['LOCKSTEP_BENCH_SMOKE'] === '1';
const ROUND_TRIPS = smoke ? 50 : 2_000;
const WARMUP = smoke ? 20 : 500;
const RUNS = smoke ? 2 : 7;

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/${name}`, import.meta.url));
type HubProcess = ChildProcessByStdio<Writable, Readable, null>;
const children: HubProcess[] = [];

function spawnChild(file: string): HubProcess {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', tsx, fixture(file)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    // The hub's default rate limit (1,000 messages a second) would throttle back-to-back round trips.
    env: { ...process.env, LOCKSTEP_FIXTURE_NO_RATE_LIMIT: '1' },
  });
  children.push(child);
  return child;
}

function vscodeConnection(child: HubProcess): MessageConnection {
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.listen();
  return connection;
}

interface Subject {
  name: string;
  /** One round trip; `i` makes each command different. */
  roundTrip(i: number): Promise<unknown>;
  close(): Promise<void> | void;
}

async function lockstepClient(): Promise<Subject> {
  const child = spawnChild('hubChild.ts');
  const client = createClient({ connect: () => createStdioTransport({ input: child.stdout, output: child.stdin }) });
  const stream = client.stream(orchestrationDomain, 'bench');
  await client.whenIdle();
  return {
    name: 'lockstep client → hub child',
    roundTrip: (i) => stream.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: 'w', desired: i % 1_000 } }),
    close: () => client.close(),
  };
}

async function transportToHub(): Promise<Subject> {
  const child = spawnChild('hubChild.ts');
  const transport = createStdioTransport({ input: child.stdout, output: child.stdin });
  const waiting = new Map<number, () => void>();
  transport.frames.subscribe((frame) => {
    const message = JSON.parse(frame as string) as { id?: number };
    if (typeof message.id === 'number') waiting.get(message.id)?.();
  });
  let id = 0;
  const request = (method: string, params: unknown) =>
    new Promise<void>((resolve) => {
      const requestId = ++id;
      waiting.set(requestId, () => {
        waiting.delete(requestId);
        resolve();
      });
      transport.send(JSON.stringify({ jsonrpc: '2.0', id: requestId, method, params }));
    });
  await request('hello', { protocol: 1 });
  return {
    name: 'lockstep stdio transport → hub child',
    roundTrip: (i) =>
      request('command', {
        id: `transport-${id}`,
        stream: 'orchestration/bench',
        type: 'workspace.setDesired',
        payload: { workspaceId: 'w', desired: i % 1_000 },
      }),
    close: () => transport.close(),
  };
}

async function vscodeToHub(): Promise<Subject> {
  const connection = vscodeConnection(spawnChild('hubChild.ts'));
  await connection.sendRequest('hello', { protocol: 1 });
  let id = 0;
  return {
    name: 'vscode-jsonrpc → hub child',
    roundTrip: (i) =>
      connection.sendRequest('command', {
        id: `raw-${id++}`,
        stream: 'orchestration/bench',
        type: 'workspace.setDesired',
        payload: { workspaceId: 'w', desired: i % 1_000 },
      }),
    close: () => connection.dispose(),
  };
}

async function vscodeEcho(): Promise<Subject> {
  const connection = vscodeConnection(spawnChild('echoChild.ts'));
  await connection.sendRequest('ping', {});
  let id = 0;
  return {
    name: 'vscode-jsonrpc → echo child (baseline)',
    roundTrip: (i) =>
      connection.sendRequest('command', {
        id: `echo-${id++}`,
        stream: 'orchestration/bench',
        type: 'workspace.setDesired',
        payload: { workspaceId: 'w', desired: i % 1_000 },
      }),
    close: () => connection.dispose(),
  };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

async function measure(subject: Subject, count: number, offset: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await subject.roundTrip(offset + i);
    samples.push((performance.now() - start) * 1_000);
  }
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
}

try {
  const subjects = [await lockstepClient(), await transportToHub(), await vscodeToHub(), await vscodeEcho()];
  const runs = new Map<Subject, Array<{ p50: number; p99: number }>>(subjects.map((subject) => [subject, []]));
  for (const subject of subjects) await measure(subject, WARMUP, 0);
  for (let run = 0; run < RUNS; run++) {
    for (const subject of subjects) runs.get(subject)!.push(await measure(subject, ROUND_TRIPS, (run + 1) * ROUND_TRIPS));
  }
  const rows = subjects.map((subject) => {
    const results = runs.get(subject)!;
    return {
      subject: subject.name,
      metrics: {
        p50: quantile(
          results.map((r) => r.p50),
          0.5,
        ),
        p99: quantile(
          results.map((r) => r.p99),
          0.5,
        ),
      },
    };
  });
  for (const subject of subjects) await subject.close();

  const [lockstep, , rawHub, echo] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
  const ratios = {
    'p50 lockstep client / vscode-jsonrpc echo': lockstep.metrics.p50 / echo.metrics.p50,
    'p99 lockstep client / vscode-jsonrpc echo': lockstep.metrics.p99 / echo.metrics.p99,
    'p50 hub child / echo child (same vscode-jsonrpc client)': rawHub.metrics.p50 / echo.metrics.p50,
  };
  const width = Math.max(...rows.map((row) => row.subject.length));
  const lines = [
    `stdio command → ack, ${ROUND_TRIPS} sequential round trips × ${RUNS} interleaved runs (medians), µs${smoke ? ' — SMOKE SIZES' : ''}`,
    `${'subject'.padEnd(width)}  ${'p50'.padStart(8)}  ${'p99'.padStart(8)}`,
    ...rows.map((row) => `${row.subject.padEnd(width)}  ${row.metrics.p50.toFixed(1).padStart(8)}  ${row.metrics.p99.toFixed(1).padStart(8)}`),
    ...Object.entries(ratios).map(([name, value]) => `${name}: ${value.toFixed(2)}`),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  const result = {
    scenario: 'stdio round trip',
    description: `Command → ack over stdio pipes to a child process, one in flight: ${ROUND_TRIPS} round trips × ${RUNS} interleaved runs. Seed 004's goal for local IPC is under 10 ms.`,
    units: { p50: 'µs', p99: 'µs' },
    rows,
    ratios,
    notes: [
      'The lockstep client row includes the client store: the dispatch resolves once its events have arrived and are applied (they stand for the ack: eventAcks); the raw rows wait for the ack.',
    ],
  };
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
