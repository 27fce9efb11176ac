/**
 * The server side of bench/throughputProcesses.bench.ts: one process per subject, pinned to core 0
 * by the benchmark. On `start` it starts a fresh server of the kind asked (`lockstep`, `raw` or
 * `logux`) and answers its URL; on `stop` it answers the CPU time it used since `start` and closes
 * it. (A smoke run uses one such process for every subject, to start faster.)
 *
 * - lockstep: a hub (bench/harness.ts `lockstepServer`, the built-in tasks domain, memory store).
 * - raw: the hand-written relay of the in-process scenario, plus an ack per command to the writer
 *   (`{id, stream, version}`, its own frame), as the hub acks each command of a writer that is not
 *   subscribed.
 * - logux: `@logux/server` 0.14 as set up in bench/logux.ts.
 */
import type WebSocket from 'ws';
import { lockstepServer, rawEvent, rawWsServer } from './harness.js';
import { loguxServer } from './logux.js';

export type ServerKind = 'lockstep' | 'raw' | 'logux';
export type ServerRequest = { type: 'start'; kind: ServerKind } | { type: 'stop' } | { type: 'exit' };
export type ServerReply = { type: 'ready' } | { type: 'listening'; url: string } | { type: 'stopped'; cpuSeconds: number };

async function rawRelay(): Promise<{ url: string; close(): Promise<void> }> {
  const server = await rawWsServer();
  let reader: WebSocket | undefined;
  let version = 1;
  server.wss.on('connection', (socket, request) => {
    if (request.url === '/reader') {
      reader = socket;
      return;
    }
    socket.on('message', (data) => {
      const command = JSON.parse((data as Buffer).toString()) as { id: string; stream: string; payload: { id: string; title: string } };
      const at = ++version;
      reader?.send(JSON.stringify(rawEvent(command.stream, at, command.payload, command.id)));
      socket.send(JSON.stringify({ id: command.id, stream: command.stream, version: at }));
    });
  });
  return server;
}

let current: { url: string; close(): Promise<void> } | undefined;
let cpu: NodeJS.CpuUsage | undefined;

process.on('message', (message: ServerRequest) => {
  void (async () => {
    if (message.type === 'exit') process.exit(0);
    if (message.type === 'start') {
      const { kind } = message;
      current = kind === 'lockstep' ? await lockstepServer() : kind === 'raw' ? await rawRelay() : await loguxServer();
      cpu = process.cpuUsage();
      reply({ type: 'listening', url: current.url });
    } else {
      const used = process.cpuUsage(cpu);
      await current?.close();
      current = undefined;
      reply({ type: 'stopped', cpuSeconds: (used.user + used.system) / 1e6 });
    }
  })().catch((error: unknown) => {
    console.error('throughput server:', error);
    process.exit(1);
  });
});

function reply(message: ServerReply): void {
  process.send!(message);
}
reply({ type: 'ready' });
