/**
 * The orchestrator process of seed 004: a Lockstep hub over the built-in domains, serving the
 * `orchestrate` service, on a durable file store.
 *
 *   orchestrator.ts --data DIR            sidecar mode: lockstep/1 on stdin/stdout (the manager spawned us)
 *   orchestrator.ts --data DIR --ws [--port N]
 *                                         service mode: a WebSocket server on 127.0.0.1 that requires a
 *                                         token (LOCKSTEP_TOKEN, else DIR/token, generated on first use)
 *   orchestrator.ts --memory              sidecar mode on a memory store (nothing survives a restart)
 *
 * Either way it stops on SIGTERM, and when its stdin closes — the manager went away — so it never
 * outlives the manager. Logs go to stderr (in sidecar mode stdout carries frames only).
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { builtInDomains } from '@lockstep/core';
import { FileEventStore, Hub, MemoryEventStore, loadServerToken, tokenAuthenticator, type EventStore } from '@lockstep/server';
import { serveStdio } from '@lockstep/stdio';
import { HostCheck, createWebSocketServer } from '@lockstep/ws/server';
import { serveOrchestrate } from './orchestrateService.js';
import { ORCHESTRATOR_APP } from './services.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    memory: { type: 'boolean', default: false },
    ws: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    'think-ms': { type: 'string' },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);
if (values.data === undefined && !values.memory) {
  log('orchestrator: --data DIR (a file store) or --memory is required');
  process.exit(2);
}
if (values.ws && values.data === undefined) {
  log('orchestrator: --ws needs --data DIR (the token is kept there)');
  process.exit(2);
}

const store = await openStore();
const storeName = values.data === undefined ? 'memory' : `file:${values.data}`;
// Stopping: asked to (SIGTERM), or the manager went away (stdin ended). Set up before anything slow.
const stop = new Promise<string>((resolve) => {
  process.once('SIGTERM', () => resolve('SIGTERM'));
  if (values.ws) {
    process.stdin.once('end', () => resolve('the manager went away (stdin closed)'));
    process.stdin.resume();
  }
});

// Service mode is a network entry: it requires a token, like `lockstep serve` (docs/security.md).
// Sidecar mode is not authenticated: the manager that spawned us owns our stdin and stdout.
const token = values.ws ? await loadServerToken({ env: process.env, defaultFile: join(values.data!, 'token') }) : undefined;
const hub = new Hub({
  domains: builtInDomains,
  store,
  app: ORCHESTRATOR_APP,
  ...(token ? { authenticate: tokenAuthenticator(token.token) } : { rateLimit: false as const }),
  onError: (error, context) => log(`error ${context}: ${error instanceof Error ? error.message : String(error)}`),
});
await serveOrchestrate(hub, { store: storeName, log, ...(values['think-ms'] !== undefined && { thinkMs: Number(values['think-ms']) }) });

let reason: string;
if (token) {
  const hosts = new HostCheck('127.0.0.1');
  const server = createWebSocketServer(hub, {
    port: Number(values.port),
    host: '127.0.0.1',
    authenticate: tokenAuthenticator(token.token),
    allowedHosts: (host) => hosts.allowsHost(host),
    allowedOrigins: (origin) => hosts.allowsOrigin(origin),
    closeTimeoutMs: 500,
  });
  await server.ready;
  const { port } = server.address();
  hosts.listening(port);
  const where = token.source === 'environment' ? '$LOCKSTEP_TOKEN' : token.file!;
  // The line the manager waits for.
  log(`orchestrator ${process.pid} listening on ws://127.0.0.1:${port} (token from ${where}; store ${storeName})`);
  reason = await stop;
  await hub.close();
  await server.close();
} else {
  const session = serveStdio(hub);
  log(`orchestrator ${process.pid} serving on stdio (store ${storeName})`);
  reason = await Promise.race([stop, session.closed.then((why) => `connection over: ${why}`)]);
  await hub.close();
  session.close();
}
await store.close();
// Nothing may keep the process alive now: in service mode stdin was being watched.
process.stdin.destroy();
log(`orchestrator ${process.pid} stopped (${reason})`);

async function openStore(): Promise<EventStore> {
  if (values.data === undefined) return new MemoryEventStore();
  const opened = await FileEventStore.open(values.data);
  const { records, tornTail, epochRotated } = opened.recovery;
  const what = records === 0 ? 'a new store' : `${records} records replayed`;
  log(
    `orchestrator ${process.pid} opened file:${values.data} (${what}, epoch ${opened.epoch.slice(0, 8)})${tornTail ? `, cut a torn tail of ${tornTail.bytes} bytes` : ''}${epochRotated ? `, new epoch: ${epochRotated}` : ''}`,
  );
  return opened;
}
